package serve_test

import (
	"sort"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/redisproc"
)

// TestServeSurvivesAHeadRestart (GCS fault tolerance): with the head's tables in Redis, a
// SIGKILLed and restarted head re-adopts the replicas running on the workers instead of
// replacing them, and the workers' proxies answer every request meanwhile.
func TestServeSurvivesAHeadRestart(t *testing.T) {
	srv := redisproc.Start(t, redisproc.Options{Persist: true})
	c := startCluster(t, "RAY_REDIS_ADDRESS="+srv.Addr(), "RAY_external_storage_namespace=serve-ft")
	c.mustPut(t, c.config(echo("ft", "0.1")))
	before := workerReplicas(c.waitRunning(t, "echo")["echo"])
	if len(before) == 0 {
		t.Fatal("no echo replica runs on a worker")
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

	if len(after) != len(before) {
		t.Errorf("worker replicas before the restart %v, after %v: want the same processes", before, after)
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
