package stateapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func str(s string) *string { return &s }

// cluster is what the handler gathers from node agents and the head: rows
// of every kind, as the agents' NodeState carries them.
func cluster() map[string][]any {
	out := map[string][]any{}
	for _, a := range []Actor{
		{ActorID: "a3", ClassName: "Counter", State: "ALIVE", Name: "c1", PID: 300, RayNamespace: "ns", JobID: "01000000"},
		{ActorID: "a1", ClassName: "Counter", State: "DEAD", Name: "c2", PID: 100, RayNamespace: "ns", JobID: "01000000", DeathCause: str("killed")},
		{ActorID: "a2", ClassName: "Keeper", State: "ALIVE", Name: "", PID: 200, RayNamespace: "other", JobID: "02000000", IsDetached: true},
	} {
		out["actors"] = append(out["actors"], a)
	}
	for _, t := range []Task{
		{TaskID: "t1", Name: "square", State: "FINISHED", Type: "NORMAL_TASK", FuncOrClassName: "square", AttemptNumber: 0, Language: "PYTHON"},
		{TaskID: "t2", Name: "square", State: "FAILED", Type: "NORMAL_TASK", FuncOrClassName: "square", AttemptNumber: 1, ErrorType: str("TASK_EXECUTION_EXCEPTION")},
		{TaskID: "t3", Name: "slow", State: "RUNNING", Type: "NORMAL_TASK", FuncOrClassName: "slow"},
	} {
		out["tasks"] = append(out["tasks"], t)
	}
	out["objects"] = []any{Object{ObjectID: "o1", ObjectSize: 2048, TaskStatus: "FINISHED", Type: "DRIVER", IP: "127.0.0.1", JobID: "01000000"}}
	out["jobs"] = []any{
		dashboard.JobDetails{Type: dashboard.JobTypeSubmission, SubmissionID: "raysubmit_1", Status: dashboard.JobStatusSucceeded},
		dashboard.JobDetails{Type: dashboard.JobTypeDriver, JobID: str("01000000"), Status: dashboard.JobStatusRunning},
	}
	return out
}

// list answers a query for kind over rows as the handler does once it has
// gathered them; a refused query comes back as its message.
func list(t *testing.T, kind string, rows []any, rawQuery string) (ListResult, string) {
	t.Helper()
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := ParseListOptions(q)
	if err != nil {
		return ListResult{}, err.Error()
	}
	sch := schemas[kind]
	filters, err := compile(kind, sch, opts.Filters)
	if err != nil {
		return ListResult{}, err.Error()
	}
	maps, err := asMaps(rows)
	if err != nil {
		t.Fatal(err)
	}
	return *selectRows(sch, maps, filters, opts), ""
}

// headHandler lists nodes and placement groups, which come from the head
// itself rather than from node agents.
func headHandler() *Handler {
	nodes := []*gcsv1.Node{
		{NodeId: "n1", NodeIpAddress: "10.0.0.1", IsHead: true, State: gcsv1.NodeState_NODE_STATE_ALIVE},
		{NodeId: "n0", NodeIpAddress: "10.0.0.9", State: gcsv1.NodeState_NODE_STATE_DEAD},
	}
	groups := []*corev1.PlacementGroup{
		{PlacementGroupId: "pg2", Name: "train", JobId: "01000000", State: corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED,
			Bundles: []*corev1.Bundle{{Resources: map[string]float64{"CPU": 1}, NodeId: "n1"}}},
		{PlacementGroupId: "pg1", State: corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING, Detached: true,
			Bundles: []*corev1.Bundle{{Resources: map[string]float64{"GPU": 8}}}},
	}
	return NewHandler(Options{
		Nodes:           func() []*gcsv1.Node { return nodes },
		PlacementGroups: func() []*corev1.PlacementGroup { return groups },
		Logger:          logr.Discard(),
	})
}

func ids(res ListResult, col string) string {
	var out []string
	for _, r := range res.Result {
		out = append(out, r.(map[string]any)[col].(string))
	}
	return strings.Join(out, ",")
}

func filterQuery(triples ...string) string {
	q := url.Values{}
	for i := 0; i+2 < len(triples); i += 3 {
		q.Add("filter_keys", triples[i])
		q.Add("filter_predicates", triples[i+1])
		q.Add("filter_values", triples[i+2])
	}
	return q.Encode()
}

func filterURL(kind string, triples ...string) string {
	return "/api/v0/" + kind + "?" + filterQuery(triples...)
}

func TestFiltersSelectRowsAsRayDoes(t *testing.T) {
	rows := cluster()
	for _, c := range []struct {
		name, kind, query, col, want string
		filtered                     int
	}{
		{"equal", "actors", filterQuery("state", "=", "ALIVE"), "actor_id", "a2,a3", 2},
		{"text ignores case", "actors", filterQuery("state", "=", "alive"), "actor_id", "a2,a3", 2},
		{"key ignores case", "actors", filterQuery("STATE", "=", "dead"), "actor_id", "a1", 1},
		{"not equal", "actors", filterQuery("state", "!=", "ALIVE"), "actor_id", "a1", 1},
		{"not equal ignores case", "actors", filterQuery("state", "!=", "alive"), "actor_id", "a1", 1},
		{"and of two", "actors", filterQuery("state", "=", "ALIVE", "class_name", "=", "counter"), "actor_id", "a3", 1},
		{"integer column", "actors", filterQuery("pid", "=", "200"), "actor_id", "a2", 1},
		{"integer not equal", "actors", filterQuery("pid", "!=", "200"), "actor_id", "a1,a3", 2},
		{"empty name", "actors", filterQuery("name", "=", ""), "actor_id", "a2", 1},
		{"none match", "actors", filterQuery("name", "=", "nobody"), "actor_id", "", 0},
		{"null equals nothing", "tasks", filterQuery("error_type", "=", "task_execution_exception"), "task_id", "t2", 1},
		{"null differs from a value", "tasks", filterQuery("error_type", "!=", "TASK_EXECUTION_EXCEPTION"), "task_id", "t1,t3", 2},
		{"task name and state", "tasks", filterQuery("name", "=", "square", "state", "!=", "FINISHED"), "task_id", "t2", 1},
		{"attempt", "tasks", filterQuery("attempt_number", "=", "1"), "task_id", "t2", 1},
		{"detail column that filters", "tasks", filterQuery("language", "=", "python"), "task_id", "t1", 1},
		{"object size", "objects", filterQuery("object_size", "=", "2048"), "object_id", "o1", 1},
		{"job type", "jobs", filterQuery("type", "=", "submission"), "submission_id", "raysubmit_1", 1},
		{"job status", "jobs", filterQuery("status", "!=", "SUCCEEDED", "job_id", "=", "01000000"), "job_id", "01000000", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, refused := list(t, c.kind, rows[c.kind], c.query)
			if refused != "" {
				t.Fatalf("%s?%s refused: %s", c.kind, c.query, refused)
			}
			if got := ids(res, c.col); got != c.want || res.NumFiltered != c.filtered {
				t.Errorf("%s?%s: %s = %q, num_filtered %d; want %q, %d", c.kind, c.query, c.col, got, res.NumFiltered, c.want, c.filtered)
			}
			if all := len(rows[c.kind]); res.Total != all || res.NumAfterTruncation != all {
				t.Errorf("%s?%s: total %d, num_after_truncation %d; want both %d", c.kind, c.query, res.Total, res.NumAfterTruncation, all)
			}
		})
	}
}

func TestFiltersOnHeadResources(t *testing.T) {
	h := headHandler()
	for _, c := range []struct {
		name, url, col, want string
	}{
		{"boolean column", filterURL("nodes", "is_head_node", "=", "True"), "node_id", "n1"},
		{"boolean as 0", filterURL("nodes", "is_head_node", "=", "0"), "node_id", "n0"},
		{"node state", filterURL("nodes", "state", "=", "dead"), "node_id", "n0"},
		{"placement group state", filterURL("placement_groups", "state", "=", "created"), "placement_group_id", "pg2"},
		{"placement groups sorted by id", filterURL("placement_groups"), "placement_group_id", "pg1,pg2"},
		{"detached placement group", filterURL("placement_groups", "is_detached", "=", "true"), "placement_group_id", "pg1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, r, res := get(t, h, c.url)
			if code != http.StatusOK || !r.Result {
				t.Fatalf("GET %s: HTTP %d %+v", c.url, code, r)
			}
			if got := ids(res, c.col); got != c.want || res.Total != 2 {
				t.Errorf("GET %s: %s = %q of %d; want %q of 2", c.url, c.col, got, res.Total, c.want)
			}
		})
	}
}

// Ray's Python client sends every field of its ListApiOptions, booleans
// as Python spells them.
func TestRayClientQueryIsAccepted(t *testing.T) {
	q := "limit=100&timeout=24&detail=False&exclude_driver=True&server_timeout_multiplier=0.8&" + filterQuery("state", "=", "ALIVE")
	res, refused := list(t, "actors", cluster()["actors"], q)
	if refused != "" || res.NumFiltered != 2 {
		t.Errorf("Ray's client query: refused %q, %+v; want the two alive actors", refused, res)
	}
}

func TestLimitCutsTheFilteredRows(t *testing.T) {
	res, refused := list(t, "actors", cluster()["actors"], filterQuery("state", "=", "ALIVE")+"&limit=1")
	if refused != "" {
		t.Fatal(refused)
	}
	if res.Total != 3 || res.NumAfterTruncation != 3 || res.NumFiltered != 2 || ids(res, "actor_id") != "a2" {
		t.Errorf("actors state=ALIVE limit=1: %+v, want total 3, num_filtered 2, result [a2]", res)
	}
}

func TestDetailAddsColumns(t *testing.T) {
	actors := cluster()["actors"]
	plain, _ := list(t, "actors", actors, "")
	row := plain.Result[0].(map[string]any)
	for _, col := range []string{"actor_id", "class_name", "state", "job_id", "name", "node_id", "pid", "ray_namespace"} {
		if _, ok := row[col]; !ok {
			t.Errorf("actor row without detail lacks %s: %v", col, row)
		}
	}
	for _, col := range []string{"death_cause", "is_detached", "num_restarts", "required_resources"} {
		if _, ok := row[col]; ok {
			t.Errorf("actor row without detail has the detail column %s: %v", col, row)
		}
	}
	detailed, _ := list(t, "actors", actors, filterQuery("actor_id", "=", "a1")+"&detail=true")
	if len(detailed.Result) != 1 {
		t.Fatalf("actor a1 with detail: %+v", detailed)
	}
	if d := detailed.Result[0].(map[string]any); d["death_cause"] != "killed" || d["is_detached"] != false {
		t.Errorf("actor a1 with detail = %v, want death_cause killed and is_detached false", d)
	}
	_, _, pgs := get(t, headHandler(), filterURL("placement_groups", "placement_group_id", "=", "pg2")+"&detail=1")
	if len(pgs.Result) != 1 {
		t.Fatalf("pg2 with detail: %+v", pgs)
	}
	bundles, _ := pgs.Result[0].(map[string]any)["bundles"].([]any)
	if len(bundles) != 1 || bundles[0].(map[string]any)["node_id"] != "n1" {
		t.Errorf("pg2 with detail = %v, want one bundle on n1", pgs.Result)
	}
}

func TestBadFiltersNameTheirReason(t *testing.T) {
	h := headHandler()
	rows := cluster()
	for _, c := range []struct {
		name, kind, query string
		want              []string
	}{
		{"unknown column", "actors", filterQuery("colour", "=", "red"),
			[]string{`filter column "colour" is not a filter column of actors`, "actor_id, class_name, state"}},
		{"column that is not filterable", "nodes", filterQuery("resources_total", "=", "x"),
			[]string{`"resources_total"`, "node_id, node_ip, is_head_node, state, node_name"}},
		{"column Ray has and this runtime does not fill", "tasks", filterQuery("worker_id", "=", "w"),
			[]string{`filter column "worker_id": this runtime does not report tasks' worker_id`, "task_id, attempt_number"}},
		{"predicate", "actors", filterQuery("state", ">", "ALIVE"), []string{`predicate ">" is not supported; use = or !=`}},
		{"integer", "actors", filterQuery("pid", "=", "abc"), []string{`filter on pid: "abc" is not an integer`}},
		{"boolean", "nodes", filterQuery("is_head_node", "=", "yes"), []string{`filter on is_head_node: "yes" is not a boolean`}},
		{"a value missing", "actors", "filter_keys=state&filter_predicates=%3D", []string{"1 filter_keys, 1 filter_predicates and 0 filter_values"}},
		{"a predicate missing", "actors", "filter_keys=state&filter_keys=name&filter_predicates=%3D&filter_values=a&filter_values=b",
			[]string{"2 filter_keys, 1 filter_predicates and 2 filter_values"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, refused := list(t, c.kind, rows[c.kind], c.query)
			for _, w := range c.want {
				if !strings.Contains(refused, w) {
					t.Errorf("%s?%s: refusal %q lacks %q", c.kind, c.query, refused, w)
				}
			}
			// The handler answers the same refusal as a 400, before asking
			// any node agent.
			u := "/api/v0/" + c.kind + "?" + c.query
			code, r, _ := get(t, h, u)
			if code != http.StatusBadRequest || r.Result || r.Msg != refused {
				t.Errorf("GET %s: HTTP %d %+v, want 400 %q", u, code, r, refused)
			}
		})
	}
}
