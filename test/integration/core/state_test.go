package core_test

import (
	"bufio"
	"encoding/json"
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

// The dashboard's state API and `ray list` show a driver's actor, task,
// object and job, and the nodes.
func TestStateAPIAndRayList(t *testing.T) {
	h := startHead(t, 2)
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
	var objectID string
	for _, want := range []string{"actor pong", "task 49", "object "} {
		line, err := lines.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("driver said %q, %v; want %q", line, err, want)
		}
		objectID = strings.TrimSpace(strings.TrimPrefix(line, "object "))
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
	if code != http.StatusOK || !r.Result || r.Data.Result.Total != 1 || r.Data.Result.NumAfterTruncation != 1 {
		t.Fatalf("actors: HTTP %d %+v", code, r)
	}
	if a := r.Data.Result.Result[0]; a["class_name"] != "Keeper" || a["name"] != "keeper" || a["state"] != "ALIVE" {
		t.Errorf("actor row = %v, want the ALIVE Keeper named keeper", a)
	}
	_, r = getState(t, h.dashURL+"/api/v0/tasks")
	if task := byField(r.Data.Result.Result, "name", "square"); task == nil || task["state"] != "FINISHED" || task["type"] != "NORMAL_TASK" {
		t.Errorf("tasks = %v, want square FINISHED", r.Data.Result.Result)
	}
	_, r = getState(t, h.dashURL+"/api/v0/objects")
	if o := byField(r.Data.Result.Result, "object_id", objectID); o == nil || o["object_size"].(float64) <= 1000 {
		t.Errorf("objects = %v, want %s of more than 1000 bytes", r.Data.Result.Result, objectID)
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
	if code, r := getState(t, h.dashURL+"/api/v0/tasks?filter_keys=state"); code != http.StatusBadRequest || !strings.Contains(r.Msg, "filter_keys") {
		t.Errorf("a filter: HTTP %d %+v, want 400 naming filter_keys", code, r)
	}

	out, _ := rayproc.Run(t, rayBin, h.env, "list", "actors", "--address="+h.dashURL)
	wantLines(t, out, "Total: 1")
	if !strings.Contains(out, "CLASS_NAME") || !strings.Contains(out, "Keeper") || !strings.Contains(out, "ALIVE") {
		t.Errorf("ray list actors:\n%s", out)
	}
	// No address: the head started on this machine.
	out, _ = rayproc.Run(t, rayBin, h.env, "list", "nodes")
	wantLines(t, out, "Total: 1")
	out, _ = rayproc.Run(t, rayBin, h.env, "list", "tasks", "--format=json")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || byField(rows, "name", "square") == nil {
		t.Errorf("ray list tasks --format=json = %s (%v), want the square task", out, err)
	}
	_ = stdin.Close()
}
