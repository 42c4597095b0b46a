package serve_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/testsupport/redisproc"
)

// TestHeadRestartKeepsJobsAndServe (GCS fault tolerance): with the head's tables in Redis, a
// head SIGKILLed and restarted while a job runs and a Serve application takes load through
// the workers' proxies loses nothing: the job, whose driver runs on a worker, ends SUCCEEDED
// with every line of its log; the restarted head re-adopts the running replicas instead of
// replacing them; and no request through the workers' proxies fails meanwhile.
func TestHeadRestartKeepsJobsAndServe(t *testing.T) {
	srv := redisproc.Start(t, redisproc.Options{Persist: true})
	// The head offers no CPUs, as KubeRay's GCS fault-tolerance samples configure it, so every
	// replica and the job's driver run on workers, where they outlive the head.
	c := startClusterWithHeadCPUs(t, 0, "RAY_REDIS_ADDRESS="+srv.Addr(), "RAY_external_storage_namespace=serve-ft")
	ctx := context.Background()
	jobs, err := dashboard.NewClient(c.dashURL)
	if err != nil {
		t.Fatal(err)
	}

	c.mustPut(t, c.config(echo("ft", "0.1")))
	before := workerReplicas(c.waitRunning(t, "echo")["echo"])
	if len(before) != 3 {
		t.Fatalf("echo replicas on workers %v, want all 3 (the head offers no CPU)", before)
	}

	// The driver prints a numbered line every 50 ms until the test lets it finish, so its log
	// spans the head's downtime.
	dir := t.TempDir()
	marker := filepath.Join(dir, "go-on")
	script := filepath.Join(dir, "driver.sh")
	driver := fmt.Sprintf("i=0\nwhile [ ! -e %s ]; do i=$((i+1)); echo tick $i; sleep 0.05; done\necho finished after $i ticks\n", marker)
	if err := os.WriteFile(script, []byte(driver), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.SubmitJob(ctx, &dashboard.JobSubmitRequest{Entrypoint: "sh " + script, SubmissionID: "ft-job", EntrypointNumCPUs: 1}); err != nil {
		t.Fatalf("submitting the job: %v", err)
	}
	running := waitJobStatus(t, jobs, "ft-job", dashboard.JobStatusRunning)
	if running.DriverInfo == nil || running.DriverInfo.NodeIPAddress == "127.0.0.1" {
		t.Fatalf("job driver %+v, want it on a worker", running.DriverInfo)
	}

	workers := *c
	workers.proxies = c.proxies[1:]
	l := startLoad(&workers, 4, "/echo", "x", nil)

	if err := c.head.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.head.Done()
	c.head = startRay(t, c.headEnv, c.headArgs...)
	eventually(t, "the restarted head's dashboard", 20*time.Second, func() bool {
		code, _ := c.do(t, "GET", c.dashURL+"/api/version", "")
		return code == 200
	})
	after := workerReplicas(c.waitRunning(t, "echo")["echo"])
	ok, failures := l.finish()

	if j, err := jobs.GetJob(ctx, "ft-job"); err != nil || j.Status != dashboard.JobStatusRunning {
		t.Errorf("job after the head restart = %+v, %v; want still RUNNING", j, err)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := waitJobStatus(t, jobs, "ft-job", dashboard.JobStatusSucceeded)
	if done.DriverExitCode == nil || *done.DriverExitCode != 0 {
		t.Errorf("job driver exit code %v, want 0", done.DriverExitCode)
	}
	logs, err := jobs.GetJobLogs(ctx, "ft-job")
	if err != nil {
		t.Fatalf("job logs after the head restart: %v", err)
	}
	checkTicks(t, logs)

	if len(after) != len(before) {
		t.Errorf("replicas before the restart %v, after %v: want the same processes", before, after)
	}
	for id, pid := range before {
		if after[id] != pid {
			t.Errorf("replica %s was pid %d before the head restart and %d after; want it re-adopted, not replaced", id, pid, after[id])
		}
	}
	if len(failures) > 0 {
		sort.Strings(failures)
		t.Errorf("%d of %d requests through the workers' proxies failed during the head restart; first: %q", len(failures), ok+len(failures), failures[0])
	}
	if ok == 0 {
		t.Error("no request went through during the head restart")
	}
}

// waitJobStatus polls the job until it has status; a terminal other status ends the wait.
func waitJobStatus(t *testing.T, jobs *dashboard.Client, id string, status dashboard.JobStatus) *dashboard.JobDetails {
	t.Helper()
	var j *dashboard.JobDetails
	eventually(t, "job "+id+" to be "+string(status), 30*time.Second, func() bool {
		got, err := jobs.GetJob(context.Background(), id)
		if err != nil {
			return false
		}
		j = got
		if j.Status != status && j.Status.IsTerminal() {
			t.Fatalf("job %s ended %s (%s), want %s", id, j.Status, j.Message, status)
		}
		return j.Status == status
	})
	return j
}

// checkTicks asserts the driver's log is whole: "tick 1" to "tick n" in order, then the
// driver's own count n.
func checkTicks(t *testing.T, logs string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(logs, "\n"), "\n")
	last := lines[len(lines)-1]
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(last, "finished after "), " ticks"))
	if err != nil || len(lines) != n+1 {
		t.Fatalf("job log has %d lines ending %q, want %q ticks and then the count:\n%s", len(lines), last, "tick 1..n", logs)
	}
	for i, line := range lines[:n] {
		if want := "tick " + strconv.Itoa(i+1); line != want {
			t.Fatalf("job log line %d = %q, want %q: a line was lost or reordered", i+1, line, want)
		}
	}
}

// workerReplicas maps replica id to pid for the echo replicas on worker nodes.
func workerReplicas(a appDetails) map[string]int {
	out := map[string]int{}
	for _, r := range a.Deployments["echo"].Replicas {
		if r.NodeIP != "127.0.0.1" {
			out[r.ReplicaID] = r.PID
		}
	}
	return out
}
