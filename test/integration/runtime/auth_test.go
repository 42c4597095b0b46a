package runtime_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestTokenAuthentication starts a cluster with RAY_AUTH_MODE=token as KubeRay configures it:
// the worker joins with the token, `ray status` and `ray job` work with it, the dashboard
// refuses calls without it or with a wrong one, and the health checks stay open.
func TestTokenAuthentication(t *testing.T) {
	const token = "cluster-token-42"
	c := startClusterWithEnv(t, []string{"RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN=" + token}, []string{"--num-cpus=1"})

	dash := "--address=" + c.dashURL
	if out, code := runRay(t, c.env, "job", "submit", dash, "--submission-id=authed", "--", "echo", "hello"); code != 0 || !strings.Contains(out, "hello") {
		t.Fatalf("submit with the token exit %d:\n%s", code, out)
	}

	// The GCS address resolves to the dashboard through the KV, with the token.
	if out, code := runRay(t, c.env, "job", "status", "--address="+c.gcsAddr, "authed"); code != 0 || !strings.Contains(out, "SUCCEEDED") {
		t.Errorf("job status via the GCS address exit %d:\n%s", code, out)
	}

	var anon []string
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "RAY_AUTH_") {
			anon = append(anon, kv)
		}
	}
	out, code := runRay(t, anon, "job", "submit", dash, "--submission-id=anonymous", "--", "echo", "hello")
	if code == 0 || !strings.Contains(out, "401") {
		t.Errorf("submit without the token exit %d, want a failure naming HTTP 401:\n%s", code, out)
	}
	if code, _, body := httpDo(t, "GET", c.dashURL+"/api/jobs/anonymous", ""); code != 401 || !strings.Contains(body, "missing authentication token") {
		t.Errorf("GET a job without the token = %d %q, want 401", code, body)
	}
	if j := getJobWithToken(t, c, token, "anonymous"); j != 404 {
		t.Errorf("the refused submission exists: GET = %d, want 404", j)
	}
	if out, code := runRay(t, anon, "status", "--address="+c.gcsAddr); code == 0 {
		t.Errorf("ray status without the token exit 0:\n%s", out)
	}

	// A wrong token is refused the same way, and its submission leaves nothing behind either.
	wrong := append(append([]string{}, anon...), "RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN=not-"+token)
	out, code = runRay(t, wrong, "job", "submit", dash, "--submission-id=impostor", "--", "echo", "hello")
	if code == 0 || !strings.Contains(out, "403") {
		t.Errorf("submit with a wrong token exit %d, want a failure naming HTTP 403:\n%s", code, out)
	}
	if j := getJobWithToken(t, c, token, "impostor"); j != 404 {
		t.Errorf("the submission with a wrong token exists: GET = %d, want 404", j)
	}
	if j := getJobWithToken(t, c, "not-"+token, "authed"); j != 403 {
		t.Errorf("GET a job with a wrong token = %d, want 403", j)
	}
	if out, code := runRay(t, wrong, "status", "--address="+c.gcsAddr); code == 0 {
		t.Errorf("ray status with a wrong token exit 0:\n%s", out)
	}
	if out, code := runRay(t, anon, "health-check", "--address", c.gcsAddr); code != 0 {
		t.Errorf("ray health-check without the token exit %d, want 0 (probes carry no token): %s", code, out)
	}
	if !gcsHealthy(t, c) {
		t.Error("/api/gcs_healthz without the token is not open")
	}
}

func getJobWithToken(t *testing.T, c *cluster, token, id string) int {
	t.Helper()
	req, err := http.NewRequest("GET", c.dashURL+"/api/jobs/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
