package core_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// stateReply is Ray's state API envelope.
type stateReply struct {
	Result bool   `json:"result"`
	Msg    string `json:"msg"`
	Data   struct {
		Result struct {
			Total              int              `json:"total"`
			NumAfterTruncation int              `json:"num_after_truncation"`
			NumFiltered        int              `json:"num_filtered"`
			Result             []map[string]any `json:"result"`
		} `json:"result"`
	} `json:"data"`
}

func getState(t *testing.T, url string) (int, stateReply) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r stateReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("GET %s: %v; body %s", url, err, body)
	}
	return resp.StatusCode, r
}

// The dashboard's state API, `ray list|get|summary` and ray.util.state show
// a driver's actors, tasks, object, placement group and job, and the nodes,
// with Ray's filters.
func TestStateAPIAndRayList(t *testing.T) {
	h := startHead(t, 4)
	cmd := exec.Command(python, "state.py")
	cmd.Env = h.env
	cmd.Dir = "testdata"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewReader(stdout)
	var objectID, pgID string
	for _, want := range []string{"actor pong pong", "task 49", "pg ", "object "} {
		line, err := lines.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("driver said %q, %v; want %q", line, err, want)
		}
		switch want {
		case "pg ":
			pgID = strings.TrimSpace(strings.TrimPrefix(line, want))
		case "object ":
			objectID = strings.TrimSpace(strings.TrimPrefix(line, want))
		}
	}

	byField := func(rows []map[string]any, field string, value any) map[string]any {
		for _, r := range rows {
			if r[field] == value {
				return r
			}
		}
		return nil
	}
	code, r := getState(t, h.dashURL+"/api/v0/actors")
	if code != http.StatusOK || !r.Result || r.Data.Result.Total != 2 || r.Data.Result.NumAfterTruncation != 2 || r.Data.Result.NumFiltered != 2 {
		t.Fatalf("actors: HTTP %d %+v", code, r)
	}
	code, r = getState(t, h.dashURL+"/api/v0/actors?filter_keys=class_name&filter_predicates=%3D&filter_values=keeper&filter_keys=state&filter_predicates=%3D&filter_values=alive")
	if code != http.StatusOK || r.Data.Result.Total != 2 || r.Data.Result.NumFiltered != 1 || len(r.Data.Result.Result) != 1 {
		t.Fatalf("actors class_name=keeper state=alive: HTTP %d %+v, want one of two", code, r)
	}
	if a := r.Data.Result.Result[0]; a["class_name"] != "Keeper" || a["name"] != "keeper" || a["state"] != "ALIVE" {
		t.Errorf("actor row = %v, want the ALIVE Keeper named keeper", a)
	}
	if _, ok := r.Data.Result.Result[0]["is_detached"]; ok {
		t.Errorf("actor row without detail = %v, want no detail columns", r.Data.Result.Result[0])
	}
	_, r = getState(t, h.dashURL+"/api/v0/tasks")
	if task := byField(r.Data.Result.Result, "name", "square"); task == nil || task["state"] != "FINISHED" || task["type"] != "NORMAL_TASK" {
		t.Errorf("tasks = %v, want square FINISHED", r.Data.Result.Result)
	}
	if call := byField(r.Data.Result.Result, "name", "Keeper.ping"); call == nil || call["state"] != "FINISHED" || call["type"] != "ACTOR_TASK" || call["actor_id"] == nil {
		t.Errorf("tasks = %v, want the actor call Keeper.ping FINISHED as an ACTOR_TASK", r.Data.Result.Result)
	}
	_, r = getState(t, h.dashURL+"/api/v0/tasks?filter_keys=state&filter_predicates=!%3D&filter_values=FINISHED")
	if len(r.Data.Result.Result) != 1 || r.Data.Result.Result[0]["name"] != "boom" || r.Data.Result.Result[0]["error_type"] != "TASK_EXECUTION_EXCEPTION" {
		t.Errorf("tasks state!=FINISHED = %v, want only boom, failed", r.Data.Result.Result)
	}
	_, r = getState(t, h.dashURL+"/api/v0/placement_groups?detail=true")
	if len(r.Data.Result.Result) != 1 || r.Data.Result.Result[0]["placement_group_id"] != pgID || r.Data.Result.Result[0]["state"] != "CREATED" {
		t.Errorf("placement_groups = %v, want %s CREATED", r.Data.Result.Result, pgID)
	}
	_, r = getState(t, h.dashURL+"/api/v0/objects")
	if o := byField(r.Data.Result.Result, "object_id", objectID); o == nil || o["object_size"].(float64) <= 1000 {
		t.Errorf("objects = %v, want %s of more than 1000 bytes", r.Data.Result.Result, objectID)
	}
	_, r = getState(t, h.dashURL+"/api/v0/actors?filter_keys=name&filter_predicates=%3D&filter_values=keeper")
	keeperPID := r.Data.Result.Result[0]["pid"]
	_, r = getState(t, h.dashURL+"/api/v0/workers?detail=true")
	if w := byField(r.Data.Result.Result, "pid", keeperPID); w == nil || w["is_alive"] != true || w["worker_type"] != "WORKER" ||
		w["node_id"] == "" || w["start_time_ms"].(float64) <= 0 {
		t.Errorf("workers = %v, want the keeper actor's process (pid %v), alive, with its start time", r.Data.Result.Result, keeperPID)
	}
	_, r = getState(t, h.dashURL+"/api/v0/nodes")
	if len(r.Data.Result.Result) != 1 || r.Data.Result.Result[0]["is_head_node"] != true || r.Data.Result.Result[0]["state"] != "ALIVE" {
		t.Errorf("nodes = %v, want the alive head", r.Data.Result.Result)
	}
	_, r = getState(t, h.dashURL+"/api/v0/jobs")
	if j := byField(r.Data.Result.Result, "type", "DRIVER"); j == nil || j["status"] != "RUNNING" {
		t.Errorf("jobs = %v, want the running driver", r.Data.Result.Result)
	}
	if code, r := getState(t, h.dashURL+"/api/v0/tasks?limit=0"); code != http.StatusBadRequest || r.Result || !strings.Contains(r.Msg, "limit") {
		t.Errorf("limit=0: HTTP %d %+v, want 400 naming limit", code, r)
	}
	if code, r := getState(t, h.dashURL+"/api/v0/tasks?filter_keys=state"); code != http.StatusBadRequest || !strings.Contains(r.Msg, "1 filter_keys, 0 filter_predicates and 0 filter_values") {
		t.Errorf("a filter key alone: HTTP %d %+v, want 400 naming the triples", code, r)
	}
	if code, r := getState(t, h.dashURL+"/api/v0/actors?filter_keys=colour&filter_predicates=%3D&filter_values=red"); code != http.StatusBadRequest ||
		!strings.Contains(r.Msg, `"colour"`) || !strings.Contains(r.Msg, "actor_id, class_name") {
		t.Errorf("an unknown filter column: HTTP %d %+v, want 400 naming it and the filter columns", code, r)
	}

	out, _ := rayproc.Run(t, rayBin, h.env, "list", "actors", "--address="+h.dashURL, "--filter", "name=keeper")
	wantLines(t, out, "Total: 1")
	if !strings.Contains(out, "CLASS_NAME") || !strings.Contains(out, "Keeper") || !strings.Contains(out, "ALIVE") || strings.Contains(out, "Spare") {
		t.Errorf("ray list actors --filter name=keeper:\n%s", out)
	}
	out, _ = rayproc.Run(t, rayBin, h.env, "list", "tasks", "-f", "state!=finished", "-f", "name=boom", "--detail", "--format=json")
	var failed []map[string]any
	if err := json.Unmarshal([]byte(out), &failed); err != nil || len(failed) != 1 || failed[0]["state"] != "FAILED" || failed[0]["language"] != "PYTHON" {
		t.Errorf("ray list tasks -f state!=finished -f name=boom --detail = %s (%v), want boom FAILED with its detail columns", out, err)
	}
	out, _ = rayproc.Run(t, rayBin, h.env, "list", "workers", "--address="+h.dashURL, "-f", "is_alive=true")
	if !strings.Contains(out, "WORKER_TYPE") || !strings.Contains(out, fmt.Sprint(keeperPID)) {
		t.Errorf("ray list workers -f is_alive=true:\n%s", out)
	}
	out, _ = rayproc.Run(t, rayBin, h.env, "get", "placement-groups", pgID)
	if !strings.HasPrefix(out, "---\n") || !strings.Contains(out, "name: statepg") || !strings.Contains(out, "unit_resources:") {
		t.Errorf("ray get placement-groups %s:\n%s", pgID, out)
	}
	out, _ = rayproc.Run(t, rayBin, h.env, "summary", "tasks")
	wantLines(t, out, "total_tasks: 2", "total_actor_tasks: 2")
	if !strings.Contains(out, "square") || !strings.Contains(out, "FINISHED: 1") || !strings.Contains(out, "FAILED: 1") {
		t.Errorf("ray summary tasks:\n%s", out)
	}
	out, _ = rayproc.Run(t, rayBin, h.env, "summary", "actors")
	wantLines(t, out, "total_actors: 2")
	if !strings.Contains(out, "Keeper") || !strings.Contains(out, "ALIVE: 1") {
		t.Errorf("ray summary actors:\n%s", out)
	}
	// No address: the head started on this machine.
	out, _ = rayproc.Run(t, rayBin, h.env, "list", "nodes")
	wantLines(t, out, "Total: 1")
	out, _ = rayproc.Run(t, rayBin, h.env, "list", "tasks", "--format=json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || byField(rows, "name", "square") == nil {
		t.Errorf("ray list tasks --format=json = %s (%v), want the square task", out, err)
	}

	// The Python SDK, against the same cluster.
	sdkOut := runPython(t, append(append([]string{}, h.env...), "RAY_API_SERVER_ADDRESS="+h.dashURL), false, "state_sdk.py", pgID)
	wantLines(t, sdkOut, "state sdk ok")
	_ = stdin.Close()
}
