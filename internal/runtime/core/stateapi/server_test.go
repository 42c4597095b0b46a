package stateapi

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func get(t *testing.T, h http.Handler, url string) (int, Reply, ListResult) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	var raw struct {
		Result bool   `json:"result"`
		Msg    string `json:"msg"`
		Data   struct {
			Result ListResult `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("GET %s: %v; body %s", url, err, rec.Body.String())
	}
	return rec.Code, Reply{Result: raw.Result, Msg: raw.Msg}, raw.Data.Result
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return int32(port)
}

func TestListNodesTruncatesAndCounts(t *testing.T) {
	nodes := []*gcsv1.Node{
		{NodeId: "b", NodeIpAddress: "10.0.0.2", State: gcsv1.NodeState_NODE_STATE_ALIVE},
		{NodeId: "a", NodeIpAddress: "10.0.0.1", IsHead: true, State: gcsv1.NodeState_NODE_STATE_ALIVE, ResourcesTotal: map[string]float64{"CPU": 2}},
		{NodeId: "c", NodeIpAddress: "10.0.0.3", State: gcsv1.NodeState_NODE_STATE_DEAD},
	}
	h := NewHandler(Options{Nodes: func() []*gcsv1.Node { return nodes }, Logger: logr.Discard()})
	code, r, res := get(t, h, "/api/v0/nodes?limit=2")
	// num_after_truncation counts what the sources returned (all of it);
	// only the result is cut to the limit, as Ray's.
	if code != http.StatusOK || !r.Result || res.Total != 3 || res.NumAfterTruncation != 3 || res.NumFiltered != 3 || len(res.Result) != 2 {
		t.Fatalf("nodes?limit=2: HTTP %d %+v %+v", code, r, res)
	}
	first := res.Result[0].(map[string]any)
	if first["node_id"] != "a" || first["is_head_node"] != true || first["state"] != "ALIVE" {
		t.Errorf("first node = %v, want the head a, ALIVE", first)
	}
	_, _, all := get(t, h, "/api/v0/nodes")
	if last := all.Result[2].(map[string]any); last["state"] != "DEAD" {
		t.Errorf("node c = %v, want DEAD", last)
	}
}

func TestBadRequestsNameTheirReason(t *testing.T) {
	h := NewHandler(Options{Nodes: func() []*gcsv1.Node { return nil }, Logger: logr.Discard()})
	for _, c := range []struct {
		url  string
		code int
		want string
	}{
		{"/api/v0/widgets", http.StatusNotFound, `unknown state resource "widgets"`},
		{"/api/v0/tasks?limit=-1", http.StatusBadRequest, `limit: "-1"`},
		{"/api/v0/tasks?timeout=soon", http.StatusBadRequest, `timeout: "soon"`},
		{"/api/v0/tasks?limit=10001", http.StatusBadRequest, `limit: 10001 exceeds`},
		{"/api/v0/tasks?detail=maybe", http.StatusBadRequest, `detail: "maybe" is not a boolean`},
		{"/api/v0/tasks?sort=name", http.StatusBadRequest, `query parameter "sort" is not supported`},
		{"/api/v0/tasks?server_timeout_multiplier=x", http.StatusBadRequest, `server_timeout_multiplier: "x"`},
		{"/api/v0/runtime_envs", http.StatusNotImplemented, `listing runtime_envs is not supported`},
		{"/api/v0/tasks/summarize", http.StatusNotImplemented, "summarizing tasks is not supported"},
		{"/api/v0/logs/file", http.StatusNotImplemented, "the log API is not supported"},
		{"/api/v0/placement_groups", http.StatusNotImplemented, `this head does not report them`},
	} {
		code, r, _ := get(t, h, c.url)
		if code != c.code || r.Result || !strings.Contains(r.Msg, c.want) {
			t.Errorf("GET %s: HTTP %d %+v, want %d with a message containing %q", c.url, code, r, c.code, c.want)
		}
	}
}

func TestUnreachableAgentIsAPartialFailure(t *testing.T) {
	nodes := []*gcsv1.Node{{NodeId: "gone", NodeIpAddress: "127.0.0.1", AgentPort: closedPort(t), State: gcsv1.NodeState_NODE_STATE_ALIVE}}
	h := NewHandler(Options{Nodes: func() []*gcsv1.Node { return nodes }, Logger: logr.Discard()})
	code, r, res := get(t, h, "/api/v0/actors")
	if code != http.StatusOK || !r.Result || res.Total != 0 || !strings.Contains(res.PartialFailure, "node gone") {
		t.Fatalf("actors with an unreachable agent: HTTP %d %+v %+v, want an empty list and a warning naming node gone", code, r, res)
	}
}
