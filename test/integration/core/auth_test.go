package core_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// TestTwoNodesWithTokenAuthentication: a head and a worker started with RAY_AUTH_MODE=token, as
// KubeRay configures them, refuse calls without the token on their agent ports, yet tasks,
// objects and actor calls still cross between the nodes, and a Serve request that reaches the
// head's proxy is served by the replica on the worker.
func TestTwoNodesWithTokenAuthentication(t *testing.T) {
	const token = "agent-port-token-0123456789"
	auth := []string{"RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN=" + token}
	// Each node binds its Serve proxy to its own address, so both share one port number.
	h := startHeadWithEnv(t, 1, "127.0.0.1", append(auth, "RAY_SERVE_DEFAULT_HTTP_HOST=127.0.0.1")...)
	workerAgent := rayproc.FreePort(t)
	rayproc.Start(t, rayBin, append(append([]string{}, h.env...), "RAY_SERVE_DEFAULT_HTTP_HOST=127.0.0.2"), "start", "--block",
		"--address="+h.gcsAddr,
		"--node-ip-address=127.0.0.2",
		"--num-cpus=2",
		`--resources={"big": 4}`,
		"--dashboard-agent-listen-port="+strconv.Itoa(workerAgent),
		"--metrics-export-port="+strconv.Itoa(rayproc.FreePort(t)),
	)
	eventually(t, "the worker node recorded", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(h.tmp, "ray", "rayk8s-core-nodes", "*.json"))
		return len(files) == 2
	})

	agent := "http://127.0.0.2:" + strconv.Itoa(workerAgent)
	if code, body := authCall(t, "GET", agent+"/api/rayk8s/core/state", "", ""); code != http.StatusUnauthorized {
		t.Errorf("the worker's agent port without the token = %d %q, want 401", code, body)
	}
	if code, body := authCall(t, "GET", agent+"/api/rayk8s/core/state", "", "wrong"); code != http.StatusForbidden {
		t.Errorf("the worker's agent port with a wrong token = %d %q, want 403", code, body)
	}
	if code, body := authCall(t, "GET", agent+"/api/local_raylet_healthz", "", ""); code != http.StatusOK {
		t.Errorf("the worker's raylet health check without the token = %d %q, want 200 for probes", code, body)
	}

	wantLines(t, runPython(t, append(h.env, "RAY_DASHBOARD_ADDRESS="+h.dashURL), false, "tokenauth.py"),
		"task on the other node True 2",
		"object argument across nodes 499500",
		"fetched from the worker made on the worker",
		"actor on the other node True",
		"remote actor calls [1, 2, 3, 4, 5]",
		"serve status reachable with the token True",
	)

	httpPort := rayproc.FreePort(t)
	app := fmt.Sprintf(`{"http_options": {"port": %d}, "applications": [{"name": "echo", "import_path": "builtin:echo", "route_prefix": "/echo",
	  "deployments": [{"name": "echo", "num_replicas": 1, "user_config": {"message": "from the worker"}, "ray_actor_options": {"num_cpus": 0.1, "resources": {"big": 1}}}]}]}`, httpPort)
	if code, body := authCall(t, "PUT", h.dashURL+"/api/serve/applications/", app, token); code != http.StatusOK {
		t.Fatalf("deploy with the token = %d %s", code, body)
	}
	eventually(t, "the echo app RUNNING on the worker", 60*time.Second, func() bool {
		_, body := authCall(t, "GET", h.dashURL+"/api/serve/applications/", "", token)
		var details struct {
			Applications map[string]struct {
				Status      string `json:"status"`
				Deployments map[string]struct {
					Replicas []struct {
						NodeIP string `json:"node_ip"`
						State  string `json:"state"`
					} `json:"replicas"`
				} `json:"deployments"`
			} `json:"applications"`
		}
		if json.Unmarshal([]byte(body), &details) != nil {
			return false
		}
		a := details.Applications["echo"]
		rs := a.Deployments["echo"].Replicas
		return a.Status == "RUNNING" && len(rs) == 1 && rs[0].NodeIP == "127.0.0.2" && rs[0].State == "RUNNING"
	})
	headProxy := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	eventually(t, "the head's proxy routes /echo", 20*time.Second, func() bool {
		code, _ := authCall(t, "GET", headProxy+"/-/routes", "", "")
		return code == http.StatusOK
	})
	for i := range 5 {
		code, body := authCall(t, "POST", headProxy+"/echo", "hello "+strconv.Itoa(i), "")
		if code != http.StatusOK || !strings.Contains(body, "from the worker") || !strings.Contains(body, "hello "+strconv.Itoa(i)) {
			t.Errorf("POST /echo through the head's proxy = %d %s, want the worker replica's echo", code, body)
		}
	}
}

// authCall makes one HTTP call, with "Authorization: Bearer token" unless token is empty.
func authCall(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}
