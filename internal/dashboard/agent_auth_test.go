package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	coreagent "github.com/rayk8s/rayk8s/internal/runtime/core/agent"
	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
)

// startAuthNode starts a node with the test token in tmp: the head when gcsAddress is empty,
// else a worker, with the custom resource "worker", joining it.
func startAuthNode(t *testing.T, tmp, gcsAddress string) *node.Node {
	t.Helper()
	resources := map[string]float64{"CPU": 1}
	if gcsAddress != "" {
		resources["worker"] = 1
	}
	n, err := node.Start(context.Background(), node.Config{
		Head:             gcsAddress == "",
		GCSAddress:       gcsAddress,
		NodeIP:           "127.0.0.1",
		IncludeDashboard: gcsAddress == "",
		DashboardHost:    "127.0.0.1",
		Resources:        resources,
		TempDir:          tmp,
		HeartbeatPeriod:  100 * time.Millisecond,
		FailureThreshold: 100,
		AuthToken:        rightToken,
		Logger:           logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

// coreMessage is a well-formed agent-to-agent message for op.
func coreMessage(t *testing.T, op string) string {
	t.Helper()
	var b bytes.Buffer
	if err := corewire.Write(&b, &corewire.Message{Header: corewire.Header{ID: 1, Op: op}}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestTokenAuthOnTheAgentPort tries every endpoint of a node's agent port without a token and
// with wrong ones: each is refused before its handler runs, with the dashboard's codes and
// one-line reasons, and the node's state does not change; the right token is let through; the
// health checks KubeRay's probes call stay open.
func TestTokenAuthOnTheAgentPort(t *testing.T) {
	tmp := t.TempDir()
	n := startAuthNode(t, tmp, "")
	base := "http://127.0.0.1:" + strconv.Itoa(n.AgentPort())
	logs, err := filepath.Glob(filepath.Join(tmp, "session_2*", "logs"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("the session's logs dir: %v %v", logs, err)
	}
	if err := os.WriteFile(filepath.Join(logs[0], "secret.log"), []byte("private output\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	routes := []struct{ method, path, body string }{
		{"GET", "/api/local_logs/secret.log", ""},
		{"GET", "/api/local_logs/secret.log?offset=3", ""},
		{"POST", "/api/serve/replicas/app%23dep%23r1/call", "frames"},
		{"GET", coreagent.HTTPPath + "object_data?id=00ff", ""},
		{"GET", coreagent.HTTPPath + "state", ""},
		{"GET", "/no/such/route", ""},
	}
	for _, op := range []string{"execute_task", "start_actor", "actor_call", "kill_actor", "job_end", "cancel",
		"interrupt_task", "cancel_actor_call", "group_removed", "log", "no_such_op"} {
		routes = append(routes, struct{ method, path, body string }{"POST", coreagent.HTTPPath + op, coreMessage(t, op)})
	}

	authedState := func() string {
		t.Helper()
		code, body := call(t, "GET", base+coreagent.HTTPPath+"state", "", rightBearer)
		if code != http.StatusOK {
			t.Fatalf("GET the core state with the right token = %d %q", code, body)
		}
		return body
	}
	before := authedState()

	for _, c := range []credential{noToken, wrongBearer, wrongRay, wrongScheme, wrongCookie} {
		want, reason := http.StatusForbidden, "Forbidden: invalid authentication token"
		if c == noToken {
			want, reason = http.StatusUnauthorized, "Unauthorized: missing authentication token"
		}
		for _, r := range routes {
			code, body := call(t, r.method, base+r.path, r.body, c)
			if code != want || !strings.HasPrefix(body, reason) || strings.Contains(body, "\n") {
				t.Errorf("%s %s with %s = %d %q, want %d with the one-line reason %q", r.method, r.path, c.name, code, body, want, reason)
			}
		}
	}
	if after := authedState(); after != before {
		t.Errorf("refused calls changed the node's core state:\nbefore %s\nafter  %s", before, after)
	}

	for _, c := range []credential{rightBearer, rightRay, rightCookie} {
		if code, body := call(t, "GET", base+"/api/local_logs/secret.log?offset=8", "", c); code != http.StatusOK || body != "output\n" {
			t.Errorf("GET a log with %s = %d %q, want its bytes", c.name, code, body)
		}
		// Through to the core handler: its reply is a message, here naming the unknown op.
		code, body := call(t, "POST", base+coreagent.HTTPPath+"no_such_op", coreMessage(t, "no_such_op"), c)
		m, err := corewire.Read(bufio.NewReader(strings.NewReader(body)))
		if code != http.StatusOK || err != nil || m.ErrorType != "RaySystemError" || !strings.Contains(m.Error, "no_such_op") {
			t.Errorf("POST no_such_op with %s = %d %q (%v), want the agent's RaySystemError reply naming the op", c.name, code, body, err)
		}
		// Through to the Serve agent, which has no such replica.
		if code, body := call(t, "POST", base+"/api/serve/replicas/app%23dep%23r1/call", "", c); code != http.StatusServiceUnavailable {
			t.Errorf("POST a replica call with %s = %d %q, want 503 from the Serve agent", c.name, code, body)
		}
	}

	for _, path := range []string{"/api/local_raylet_healthz", "/api/healthz"} {
		if code, body := call(t, "GET", base+path, "", noToken); code != http.StatusOK {
			t.Errorf("GET %s without a token = %d %q, want 200: Kubernetes probes carry no token", path, code, body)
		}
	}
}

// TestNodesSendTheTokenToAgentPorts: with token authentication on every agent port, the head's
// state API still reads each node's agent and the Jobs API a worker's job log, so their calls
// carry the token; a call that did not would show as a partial failure or a failed log read.
func TestNodesSendTheTokenToAgentPorts(t *testing.T) {
	head := startAuthNode(t, t.TempDir(), "")
	worker := startAuthNode(t, t.TempDir(), head.GCSAddress())
	g := gomega.NewWithT(t)
	g.Eventually(func() string {
		_, body := call(t, "GET", head.DashboardURL()+"/api/v0/nodes", "", rightBearer)
		return body
	}).WithTimeout(20*time.Second).WithPolling(50*time.Millisecond).Should(gomega.And(
		gomega.ContainSubstring(worker.NodeID()), gomega.ContainSubstring(head.NodeID())), "both nodes registered")
	for _, kind := range []string{"tasks", "actors", "objects"} {
		code, body := call(t, "GET", head.DashboardURL()+"/api/v0/"+kind, "", rightBearer)
		if code != http.StatusOK || strings.Contains(body, "incomplete result") || !strings.Contains(body, `"result":true`) {
			t.Errorf("GET /api/v0/%s = %d %s, want every node's agent to answer the head", kind, code, body)
		}
	}

	ctx := context.Background()
	jobs, err := dashboard.NewClient(head.DashboardURL(), dashboard.WithAuthToken(rightToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.SubmitJob(ctx, &dashboard.JobSubmitRequest{Entrypoint: "echo hello from the worker", SubmissionID: "on-worker",
		EntrypointResources: map[string]float64{"worker": 1}}); err != nil {
		t.Fatal(err)
	}
	g.Eventually(func() dashboard.JobStatus {
		j, err := jobs.GetJob(ctx, "on-worker")
		if err != nil {
			return ""
		}
		return j.Status
	}).WithTimeout(30 * time.Second).WithPolling(50 * time.Millisecond).Should(gomega.Equal(dashboard.JobStatusSucceeded))
	j, err := jobs.GetJob(ctx, "on-worker")
	if err != nil || j.DriverNodeID == nil || *j.DriverNodeID != worker.NodeID() {
		t.Fatalf("job = %+v, %v; want its driver on the worker %s", j, err, worker.NodeID())
	}
	if logs, err := jobs.GetJobLogs(ctx, "on-worker"); err != nil || logs != "hello from the worker\n" {
		t.Errorf("the worker's job log through the head = %q, %v; want the driver's output", logs, err)
	}
}

// TestClientWithToken: the client nodes use for each other's agent ports adds the token to
// requests without credentials of their own, leaves the caller's request untouched and never
// overrides an Authorization the caller set.
func TestClientWithToken(t *testing.T) {
	n := startAuthNode(t, t.TempDir(), "")
	url := "http://127.0.0.1:" + strconv.Itoa(n.AgentPort()) + coreagent.HTTPPath + "state"
	do := func(c *http.Client, authorization string) (int, *http.Request) {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, req
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	if got := dashboard.ClientWithToken(plain, ""); got != plain {
		t.Error("ClientWithToken without a token changed the client")
	}
	authed := dashboard.ClientWithToken(plain, rightToken)
	code, req := do(authed, "")
	if code != http.StatusOK || req.Header.Get("Authorization") != "" {
		t.Errorf("GET with the token client = %d, request header %q; want 200 and the caller's request unchanged", code, req.Header.Get("Authorization"))
	}
	if code, _ := do(authed, "Bearer wrong"); code != http.StatusForbidden {
		t.Errorf("GET with the caller's wrong Authorization through the token client = %d, want 403", code)
	}
	if code, _ := do(plain, ""); code != http.StatusUnauthorized {
		t.Errorf("GET with the original client = %d, want 401: ClientWithToken must not change it", code)
	}
	authed.CloseIdleConnections()
}
