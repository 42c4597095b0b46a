package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

type jobDetails struct {
	Status                 string  `json:"status"`
	Message                string  `json:"message"`
	DriverAgentHTTPAddress *string `json:"driver_agent_http_address"`
	DriverExitCode         *int    `json:"driver_exit_code"`
}

func getJob(t *testing.T, c *cluster, id string) jobDetails {
	t.Helper()
	code, _, body := httpDo(t, "GET", c.dashURL+"/api/jobs/"+id, "")
	if code != 200 {
		t.Fatalf("GET job %s = %d %s", id, code, body)
	}
	var j jobDetails
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// waitJob polls until the job exists with the given status; a job that
// does not exist yet (a submit still in flight) is polled too.
func waitJob(t *testing.T, c *cluster, id, status string) jobDetails {
	t.Helper()
	var j jobDetails
	eventually(t, "job "+id+" to be "+status, 20*time.Second, func() bool {
		code, _, body := httpDo(t, "GET", c.dashURL+"/api/jobs/"+id, "")
		if code != 200 {
			return false
		}
		j = jobDetails{}
		return json.Unmarshal([]byte(body), &j) == nil && j.Status == status
	})
	return j
}

func TestClusterRunsJobs(t *testing.T) {
	c := startCluster(t,
		[]string{"--num-cpus=1", `--resources={"special": 1}`, "--labels=zone=a"},
		[]string{"--num-cpus=2"},
	)
	dash := "--address=" + c.dashURL

	t.Run("nodes show in ray status", func(t *testing.T) {
		out, code := runRay(t, c.env, "status", "--address="+c.gcsAddr)
		if code != 0 {
			t.Fatalf("ray status exit %d: %s", code, out)
		}
		for _, want := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "Idle:\n 1 head\n 2 worker\n", "0.0/4.0 CPU", "0.0/1.0 special"} {
			if !strings.Contains(out, want) {
				t.Errorf("ray status output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("health-check", func(t *testing.T) {
		if out, code := runRay(t, c.env, "health-check", "--address", c.gcsAddr); code != 0 {
			t.Errorf("health-check of a live head exit %d: %s", code, out)
		}
		if _, code := runRay(t, c.env, "health-check", "--address=127.0.0.1:"+strconv.Itoa(rayproc.FreePort(t))); code == 0 {
			t.Error("health-check of a closed port exit 0")
		}
	})

	t.Run("job runs on the node with the requested resources", func(t *testing.T) {
		out, code := runRay(t, c.env, "job", "submit", dash, "--submission-id=special",
			`--entrypoint-resources={"special": 1}`, "--runtime-env-json", `{"env_vars": {"GREETING": "hi"}}`,
			"--", "echo", "$GREETING", "from", "$RAY_JOB_SUBMISSION_ID")
		if code != 0 {
			t.Fatalf("submit exit %d:\n%s", code, out)
		}
		for _, want := range []string{"Job 'special' submitted successfully", "hi from special", "Job 'special' succeeded"} {
			if !strings.Contains(out, want) {
				t.Errorf("submit output lacks %q:\n%s", want, out)
			}
		}
		j := getJob(t, c, "special")
		if j.DriverAgentHTTPAddress == nil || !strings.Contains(*j.DriverAgentHTTPAddress, "127.0.0.2:") {
			t.Errorf("job ran at %v, want the 127.0.0.2 worker that has the special resource", j.DriverAgentHTTPAddress)
		}
		j2out, code := runRay(t, c.env, "job", "submit", dash, "--submission-id=cpus", "--entrypoint-num-cpus=2", "--", "true")
		if code != 0 {
			t.Fatalf("submit exit %d:\n%s", code, j2out)
		}
		if j := getJob(t, c, "cpus"); j.DriverAgentHTTPAddress == nil || !strings.Contains(*j.DriverAgentHTTPAddress, "127.0.0.3:") {
			t.Errorf("2-CPU job ran at %v, want the 127.0.0.3 worker, the only node with 2 CPUs", j.DriverAgentHTTPAddress)
		}
		if j := getJob(t, c, "special"); j.DriverExitCode == nil || *j.DriverExitCode != 0 {
			t.Errorf("exit code = %v, want 0", j.DriverExitCode)
		}
	})

	t.Run("failed job exits 1", func(t *testing.T) {
		out, code := runRay(t, c.env, "job", "submit", dash, "--submission-id=fails", "--", "echo", "broken;", "exit", "3")
		if code != 1 {
			t.Fatalf("submit of a failing job exit %d, want 1:\n%s", code, out)
		}
		for _, want := range []string{"Job 'fails' failed", "Status message: Job entrypoint command failed with exit code 3", "broken"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		out, code = runRay(t, c.env, "job", "status", dash, "fails")
		if code != 0 || !strings.Contains(out, "Status for job 'fails': FAILED") {
			t.Errorf("status of a failed job exit %d, want 0:\n%s", code, out)
		}
	})

	t.Run("stop kills the whole process group", func(t *testing.T) {
		pidFile := filepath.Join(c.tmp, "child.pid")
		// The child ignores SIGTERM: only the group SIGKILL after the grace
		// period ends it.
		script := filepath.Join(c.tmp, "stopme.sh")
		body := fmt.Sprintf("sh -c 'trap \"\" TERM; echo $$ > %s; sleep 300' &\nsleep 300\n", pidFile)
		if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		submit := startRay(t, c.env, "job", "submit", dash, "--submission-id=stopme", "--", "sh", script)
		waitJob(t, c, "stopme", "RUNNING")
		var child int
		eventually(t, "the child to write its pid", 10*time.Second, func() bool {
			raw, _ := os.ReadFile(pidFile)
			child, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
			return child > 0
		})
		out, code := runRay(t, c.env, "job", "stop", dash, "stopme")
		if code != 0 || !strings.Contains(out, "Job 'stopme' was stopped") {
			t.Fatalf("job stop exit %d:\n%s", code, out)
		}
		eventually(t, "the TERM-ignoring child to be killed", 10*time.Second, func() bool { return !alive(child) })
		<-submit.Done()
		if submit.Cmd.ProcessState.ExitCode() != 0 || !strings.Contains(submit.Out.String(), "Job 'stopme' was stopped") {
			t.Errorf("submit of a stopped job exit %d, want 0 and the stopped message:\n%s", submit.Cmd.ProcessState.ExitCode(), submit.Out.String())
		}
	})

	t.Run("logs and tail", func(t *testing.T) {
		if out, code := runRay(t, c.env, "job", "submit", dash, "--no-wait", "--submission-id=logs", "--", "echo", "one;", "sleep", "0.3;", "echo", "two"); code != 0 {
			t.Fatalf("submit --no-wait exit %d:\n%s", code, out)
		}
		out, code := runRay(t, c.env, "job", "logs", dash, "--follow", "logs")
		if code != 0 || !strings.Contains(out, "one\ntwo\n") {
			t.Errorf("logs --follow exit %d:\n%s", code, out)
		}
		out, code = runRay(t, c.env, "job", "logs", dash, "logs")
		if code != 0 || out != "one\ntwo\n" {
			t.Errorf("logs exit %d: %q", code, out)
		}
	})

	t.Run("RAY_ADDRESS as a GCS address", func(t *testing.T) {
		env := append(append([]string{}, c.env...), "RAY_ADDRESS="+c.gcsAddr)
		out, code := runRay(t, env, "job", "list")
		if code != 0 || !strings.Contains(out, "special") {
			t.Errorf("job list via RAY_ADDRESS=%s exit %d:\n%s", c.gcsAddr, code, out)
		}
	})

	t.Run("status of a missing job exits 1", func(t *testing.T) {
		if out, code := runRay(t, c.env, "job", "status", dash, "nope"); code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if out, code := runRay(t, c.env, "job", "delete", dash, "fails"); code != 0 || !strings.Contains(out, "deleted successfully") {
			t.Errorf("delete exit %d:\n%s", code, out)
		}
		if _, code := runRay(t, c.env, "job", "status", dash, "fails"); code != 1 {
			t.Errorf("status after delete exit %d, want 1", code)
		}
	})

	t.Run("duplicate submission id is a 500 with Ray's message", func(t *testing.T) {
		code, ctype, body := httpDo(t, "POST", c.dashURL+"/api/jobs/", `{"entrypoint":"true","submission_id":"special"}`)
		if code != 500 || !strings.Contains(body, "Please use a different submission_id") || !strings.HasPrefix(ctype, "text/plain") {
			t.Errorf("duplicate submit = %d %q %q", code, ctype, body)
		}
	})

	t.Run("bad bodies are 400s naming the field", func(t *testing.T) {
		for field, body := range map[string]string{
			"entrypoint":           `{"entrypoint": 1}`,
			"'entrypoint'":         `{}`,
			"submission_id":        `{"entrypoint":"x","submission_id":2}`,
			"runtime_env":          `{"entrypoint":"x","runtime_env":[]}`,
			"metadata":             `{"entrypoint":"x","metadata":{"a":1}}`,
			"entrypoint_num_cpus":  `{"entrypoint":"x","entrypoint_num_cpus":"a"}`,
			"entrypoint_num_gpus":  `{"entrypoint":"x","entrypoint_num_gpus":"a"}`,
			"entrypoint_memory":    `{"entrypoint":"x","entrypoint_memory":0.5}`,
			"entrypoint_resources": `{"entrypoint":"x","entrypoint_resources":{"a":"b"}}`,
			"'unknown_field'":      `{"entrypoint":"x","unknown_field":1}`,
		} {
			code, ctype, resp := httpDo(t, "POST", c.dashURL+"/api/jobs/", body)
			if code != 400 || !strings.Contains(resp, field) || !strings.HasPrefix(ctype, "text/plain") {
				t.Errorf("POST %s = %d %q %q, want 400 naming %s", body, code, ctype, resp, field)
			}
		}
	})

	t.Run("health and metrics endpoints", func(t *testing.T) {
		for _, u := range []string{c.dashURL + "/api/gcs_healthz", fmt.Sprintf("http://127.0.0.1:%d/api/local_raylet_healthz", c.agentPort), fmt.Sprintf("http://127.0.0.1:%d/api/healthz", c.agentPort)} {
			if code, _, body := httpDo(t, "GET", u, ""); code != 200 || !strings.Contains(body, "success") {
				t.Errorf("GET %s = %d %q", u, code, body)
			}
		}
		_, _, body := httpDo(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/metrics", c.metricsPort), "")
		for _, want := range []string{`ray_cluster_nodes{state="ALIVE"} 3`, `ray_cluster_resources{Name="CPU",State="total"} 4`, `ray_cluster_jobs{status="SUCCEEDED"}`, `ray_cluster_jobs{status="STOPPED"} 1`} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestHeadRestartAgentsReregister(t *testing.T) {
	c := startCluster(t, []string{"--num-cpus=1"})
	c.head.Stop()
	if code := c.head.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("head exit code after SIGTERM = %d, want 0", code)
	}
	c.head = startRay(t, c.env, headArgs(c)...)
	eventually(t, "the worker to re-register with the restarted head", 20*time.Second, func() bool {
		return c.nodeStates(t)["127.0.0.2"] == "ALIVE"
	})
}

func TestKilledAgentIsMarkedDead(t *testing.T) {
	c := startCluster(t, []string{"--num-cpus=1"})
	if err := c.workers[0].Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// 100ms heartbeats × 10 missed = dead after about a second.
	eventually(t, "the killed worker to be marked dead", 20*time.Second, func() bool {
		return c.nodeStates(t)["127.0.0.2"] == "DEAD"
	})
	if s := c.nodeStates(t)["127.0.0.1"]; s != "ALIVE" {
		t.Errorf("head state = %q, want ALIVE", s)
	}
}

func TestBlockExitsNonZeroWhenAComponentDies(t *testing.T) {
	tmp := t.TempDir()
	env := baseEnv(tmp)
	// A worker whose head never answers gives up after the reconnect timeout.
	env = append(env, "RAY_gcs_rpc_server_reconnect_timeout_s=1")
	w := startRay(t, env, "start", "--block", "--address=127.0.0.1:"+strconv.Itoa(rayproc.FreePort(t)), "--node-ip-address=127.0.0.2",
		"--dashboard-agent-listen-port=0", "--metrics-export-port=0", "--temp-dir="+tmp)
	select {
	case <-w.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("worker without a head did not exit")
	}
	if code := w.Cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(w.Out.String(), "component raylet died") {
		t.Errorf("exit code %d, want 1 naming the dead component:\n%s", code, w.Out.String())
	}
}

func TestStartWithoutBlockAndStop(t *testing.T) {
	tmp := t.TempDir()
	env := baseEnv(tmp)
	gcsPort := rayproc.FreePort(t)
	out, code := runRay(t, env, "start", "--head", "--port="+strconv.Itoa(gcsPort), "--node-ip-address=127.0.0.1",
		"--dashboard-host=127.0.0.1", "--dashboard-port=0", "--dashboard-agent-listen-port=0", "--metrics-export-port=0")
	if code != 0 || !strings.Contains(out, "Ray runtime started.") {
		t.Fatalf("ray start exit %d:\n%s", code, out)
	}
	t.Cleanup(func() { runRay(t, env, "stop", "--force") })
	addr := "127.0.0.1:" + strconv.Itoa(gcsPort)
	if out, code := runRay(t, env, "health-check", "--address="+addr); code != 0 {
		t.Fatalf("health-check of the daemonized head exit %d: %s", code, out)
	}
	// Without --address, status finds the local head through the temp dir.
	if out, code := runRay(t, env, "status"); code != 0 || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("status without address exit %d:\n%s", code, out)
	}
	out, code = runRay(t, env, "stop")
	if code != 0 || !strings.Contains(out, "Stopped all 1 Ray processes") {
		t.Fatalf("ray stop exit %d:\n%s", code, out)
	}
	if _, code := runRay(t, env, "health-check", "--address="+addr); code == 0 {
		t.Error("health-check after ray stop exit 0")
	}
}
