package dashboard_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
)

// startHead runs a real head (control service, agent, job manager,
// dashboard) in-process on free loopback ports.
func startHead(t *testing.T) *dashboard.Client {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{
		Head:               true,
		NodeIP:             "127.0.0.1",
		IncludeDashboard:   true,
		DashboardHost:      "127.0.0.1",
		Resources:          map[string]float64{"CPU": 2},
		TempDir:            t.TempDir(),
		HeartbeatPeriod:    100 * time.Millisecond,
		JobStopGracePeriod: 500 * time.Millisecond,
		Logger:             logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	c, err := dashboard.NewClient(n.DashboardURL())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitStatus(t *testing.T, c *dashboard.Client, id string, want dashboard.JobStatus) *dashboard.JobDetails {
	t.Helper()
	ctx := context.Background()
	var last *dashboard.JobDetails
	gomega.NewWithT(t).Eventually(func() (dashboard.JobStatus, error) {
		job, err := c.GetJob(ctx, id)
		if err != nil {
			// The job exists from its submission on: a failed read is an error, not a state to wait out.
			return "", gomega.StopTrying("GetJob " + id).Wrap(err)
		}
		last = job
		return job.Status, nil
	}).WithTimeout(10*time.Second).WithPolling(25*time.Millisecond).Should(gomega.Equal(want), func() string {
		if last == nil {
			return "job " + id + " status"
		}
		return "job " + id + " status (" + last.Message + ")"
	})
	return last
}

func TestClientAgainstRealServer(t *testing.T) {
	c := startHead(t)
	ctx := context.Background()

	v, err := c.Version(ctx)
	if err != nil || v.Version != "4" || v.RayVersion == "" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	if err := c.GCSHealthz(ctx); err != nil {
		t.Fatalf("GCSHealthz: %v", err)
	}

	resp, err := c.SubmitJob(ctx, &dashboard.JobSubmitRequest{
		Entrypoint:   `echo "start $RAY_JOB_SUBMISSION_ID $FOO"; sleep 0.2; echo done`,
		SubmissionID: "ok-job",
		RuntimeEnv:   map[string]any{"env_vars": map[string]any{"FOO": "bar"}},
		Metadata:     map[string]string{"owner": "test"},
	})
	if err != nil || resp.SubmissionID != "ok-job" || resp.JobID != "ok-job" {
		t.Fatalf("SubmitJob = %+v, %v", resp, err)
	}
	var tailed strings.Builder
	if err := c.TailJobLogs(ctx, "ok-job", func(s string) error { tailed.WriteString(s); return nil }); err != nil {
		t.Fatalf("TailJobLogs: %v", err)
	}
	if tailed.String() != "start ok-job bar\ndone\n" {
		t.Errorf("tailed logs = %q", tailed.String())
	}
	job := waitStatus(t, c, "ok-job", dashboard.JobStatusSucceeded)
	if job.Message != "Job finished successfully." || job.EndTime == nil || *job.EndTime < job.StartTime ||
		job.DriverExitCode == nil || *job.DriverExitCode != 0 || job.Metadata["owner"] != "test" || job.Type != dashboard.JobTypeSubmission {
		t.Errorf("job = %+v", job)
	}
	logs, err := c.GetJobLogs(ctx, "ok-job")
	if err != nil || logs != "start ok-job bar\ndone\n" {
		t.Errorf("GetJobLogs = %q, %v", logs, err)
	}

	_, err = c.SubmitJob(ctx, &dashboard.JobSubmitRequest{Entrypoint: "true", SubmissionID: "ok-job"})
	if !dashboard.IsDuplicateSubmission(err) {
		t.Errorf("duplicate submit err = %v, want the duplicate-id 500", err)
	}
	if _, err := c.GetJob(ctx, "missing"); !dashboard.IsNotFound(err) {
		t.Errorf("GetJob(missing) err = %v, want 404", err)
	}

	if _, err := c.SubmitJob(ctx, &dashboard.JobSubmitRequest{Entrypoint: "sleep 60", SubmissionID: "long"}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "long", dashboard.JobStatusRunning)
	var he *dashboard.HTTPError
	if _, err := c.DeleteJob(ctx, "long"); !errors.As(err, &he) || he.StatusCode != http.StatusInternalServerError || !strings.Contains(he.Body, "non-terminal state RUNNING") {
		t.Errorf("DeleteJob(running) err = %v, want 500 naming the state", err)
	}
	stopped, err := c.StopJob(ctx, "long")
	if err != nil || !stopped {
		t.Fatalf("StopJob = %v, %v", stopped, err)
	}
	waitStatus(t, c, "long", dashboard.JobStatusStopped)
	if stopped, err := c.StopJob(ctx, "long"); err != nil || stopped {
		t.Errorf("StopJob of a stopped job = %v, %v; want false", stopped, err)
	}
	if deleted, err := c.DeleteJob(ctx, "long"); err != nil || !deleted {
		t.Errorf("DeleteJob = %v, %v", deleted, err)
	}
	jobs, err := c.ListJobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].SubmissionID != "ok-job" {
		t.Errorf("ListJobs = %+v, %v; want only ok-job", jobs, err)
	}

	// The auth header option reaches the server without breaking anything.
	authed, _ := dashboard.NewClient(c.BaseURL(), dashboard.WithAuthToken("t"), dashboard.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if _, err := authed.Version(ctx); err != nil {
		t.Errorf("Version with auth header: %v", err)
	}
}

func TestClientFailedJob(t *testing.T) {
	c := startHead(t)
	ctx := context.Background()
	if _, err := c.SubmitJob(ctx, &dashboard.JobSubmitRequest{Entrypoint: "echo bad; exit 7", SubmissionID: "bad"}); err != nil {
		t.Fatal(err)
	}
	job := waitStatus(t, c, "bad", dashboard.JobStatusFailed)
	if job.ErrorType == nil || *job.ErrorType != dashboard.ErrorTypeEntrypointCommand || job.DriverExitCode == nil || *job.DriverExitCode != 7 ||
		!strings.HasPrefix(job.Message, "Job entrypoint command failed with exit code 7, last available logs") || !strings.Contains(job.Message, "bad\n") {
		t.Errorf("job = %+v", job)
	}
}
