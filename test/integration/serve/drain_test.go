package serve_test

import (
	"fmt"
	"testing"
	"time"
)

// TestStoppingWorkerHandsOverItsReplicas deletes a worker "pod" (SIGTERM) under load. The
// worker tells the head it is going away before its proxy's 5 s drain, so the Serve controller
// starts its replica's replacement on the other worker while the leaving replica still serves:
// the replacement runs while the leaving worker's proxy is still up (draining). Without the move
// it could only start after that proxy had closed, since a node stops its replicas after its
// proxy. No request through the remaining proxies fails.
func TestStoppingWorkerHandsOverItsReplicas(t *testing.T) {
	const drain = 5 * time.Second
	// The head offers no CPU: with 1 CPU each, one replica lands on each worker.
	c := startClusterWithHeadCPUs(t, 0, fmt.Sprintf("RAYK8S_SERVE_DRAIN_PERIOD_S=%d", int(drain.Seconds())))
	app := `{"name": "echo", "import_path": "builtin:echo", "route_prefix": "/echo",
	  "deployments": [{"name": "echo", "num_replicas": 2, "user_config": {"message": "moving"}, "ray_actor_options": {"num_cpus": 1}}]}`
	c.mustPut(t, c.config(app))
	const leaving, staying = "127.0.0.2", "127.0.0.3"
	perNode := func(a appDetails) map[string]int {
		n := map[string]int{}
		for _, r := range a.Deployments["echo"].Replicas {
			if r.State == "RUNNING" {
				n[r.NodeIP]++
			}
		}
		return n
	}
	if got := perNode(c.waitRunning(t, "echo")["echo"]); got[leaving] != 1 || got[staying] != 1 {
		t.Fatalf("RUNNING replicas per node %v, want one on each worker", got)
	}

	// Load through the head's and the staying worker's proxies.
	remaining := *c
	remaining.proxies = []string{c.proxies[0], c.proxies[2]}
	l := startLoad(&remaining, 4, "/echo", "x", nil)
	time.Sleep(300 * time.Millisecond)

	stopped := make(chan struct{})
	sigterm := time.Now()
	go func() {
		c.workers[0].Stop()
		close(stopped)
	}()
	var handedOver time.Duration
	leavingProxyUp := false
	eventually(t, "a second RUNNING replica on the staying worker", 30*time.Second, func() bool {
		if perNode(c.apps(t)["echo"])[staying] == 2 {
			handedOver = time.Since(sigterm)
			// Any answer (a draining proxy's health is 503) means the proxy is still up.
			code, _ := c.do(t, "GET", c.proxies[1]+"/-/healthz", "")
			leavingProxyUp = code != 0
			return true
		}
		return false
	})
	<-stopped
	ok, failures := l.finish()

	if !leavingProxyUp {
		t.Error("the replacement ran only after the leaving worker's proxy had closed: it was started once the leaving replica stopped, not while it served")
	}
	if got := perNode(c.waitRunning(t, "echo")["echo"]); got[staying] != 2 || len(got) != 1 {
		t.Errorf("RUNNING replicas per node after the worker stopped: %v, want both on %s", got, staying)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed while the worker stopped; first: %q", len(failures), ok+len(failures), failures[0])
	}
	if ok == 0 {
		t.Error("no request succeeded while the worker stopped")
	}
	t.Logf("replacement running %s after SIGTERM; %d requests, none failed", handedOver.Round(time.Millisecond), ok)
}
