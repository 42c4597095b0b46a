package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// autoscaledSleep is builtin:sleep (0.2 s a call) autoscaled with short
// delays; the policy's timing itself is proven by the clock-injected tables
// of internal/serve/autoscaling.
func autoscaledSleep(minReplicas int) string {
	return fmt.Sprintf(`{"name": "sleep", "import_path": "builtin:sleep", "route_prefix": "/sleep",
	  "deployments": [{"name": "sleep", "user_config": {"sleep_s": 0.2}, "ray_actor_options": {"num_cpus": 0.5},
	    "autoscaling_config": {"min_replicas": %d, "initial_replicas": 1, "max_replicas": 6, "target_ongoing_requests": 2,
	      "metrics_interval_s": 0.5, "look_back_period_s": 2, "upscale_delay_s": 0.5, "downscale_delay_s": 3,
	      "downscale_to_zero_delay_s": 2}}]}`, minReplicas)
}

type autoscaledDeployment struct {
	Status            string `json:"status"`
	StatusTrigger     string `json:"status_trigger"`
	TargetNumReplicas int    `json:"target_num_replicas"`
	Replicas          []struct {
		State string `json:"state"`
	} `json:"replicas"`
	AutoscalingDetail *struct {
		ScalingStatus string `json:"scaling_status"`
		Decisions     []struct {
			Prev int `json:"prev_num_replicas"`
			Curr int `json:"curr_num_replicas"`
		} `json:"decisions"`
		MetricsHealth string `json:"metrics_health"`
	} `json:"autoscaling_detail"`
}

// sleepState reads the sleep deployment and its application's status.
func (c *cluster) sleepState(t testing.TB) (string, autoscaledDeployment) {
	t.Helper()
	code, body := c.do(t, "GET", c.dashURL+"/api/serve/applications/", "")
	if code != 200 {
		t.Fatalf("GET applications = %d %s", code, body)
	}
	var d struct {
		Applications map[string]struct {
			Status      string                          `json:"status"`
			Deployments map[string]autoscaledDeployment `json:"deployments"`
		} `json:"applications"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	a := d.Applications["sleep"]
	return a.Status, a.Deployments["sleep"]
}

func running(d autoscaledDeployment) int {
	n := 0
	for _, r := range d.Replicas {
		if r.State == "RUNNING" {
			n++
		}
	}
	return n
}

// watcher records every application status and the largest target seen
// while it runs.
type watcher struct {
	stop      chan struct{}
	done      chan struct{}
	mu        sync.Mutex
	statuses  map[string]int
	maxTarget int
}

func (c *cluster) watchSleep(t *testing.T) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{}), statuses: map[string]int{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			st, d := c.sleepState(t)
			w.mu.Lock()
			w.statuses[st]++
			w.maxTarget = max(w.maxTarget, d.TargetNumReplicas)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) finish() (map[string]int, int) {
	close(w.stop)
	<-w.done
	return w.statuses, w.maxTarget
}

func TestAutoscaling(t *testing.T) {
	c := startCluster(t)
	c.mustPut(t, c.config(autoscaledSleep(1)))
	c.waitRunning(t, "sleep")

	t.Run("a step in load raises replicas to ceil(load/target), and they fall after it stops, failing nothing", func(t *testing.T) {
		w := c.watchSleep(t)
		// 8 callers, each with one call in flight at a time, over every
		// node's proxy: 8 ongoing requests at a target of 2 per replica.
		l := startLoad(c, 8, "/sleep", "", nil)
		eventually(t, "4 running replicas under the load", 60*time.Second, func() bool {
			_, d := c.sleepState(t)
			return d.TargetNumReplicas == 4 && running(d) == 4 && d.Status == "HEALTHY" && d.StatusTrigger == "UPSCALE_COMPLETED"
		})
		if n := c.metricSum(t, 0, "ray_serve_autoscaling_target_replicas", `application="sleep"`, `deployment="sleep"`); n != 4 {
			t.Errorf("head: ray_serve_autoscaling_target_replicas = %v, want 4", n)
		}
		code, body := c.do(t, "GET", c.dashURL+"/api/serve/autoscaling/observability", "")
		if code != 200 || !strings.Contains(body, `"sleep":{"sleep":{"scaling_status":"STABLE"`) {
			t.Errorf("GET /api/serve/autoscaling/observability = %d %s", code, body)
		}
		// The load holds: the count stays.
		l.mu.Lock()
		held := l.ok + 40
		l.mu.Unlock()
		eventually(t, "40 more requests at 4 replicas", 30*time.Second, func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.ok >= held
		})
		if _, d := c.sleepState(t); d.TargetNumReplicas != 4 {
			t.Errorf("target %d while the load held, want 4", d.TargetNumReplicas)
		}
		// Step down to one caller: replicas drain while calls keep flowing.
		trickle := startLoad(c, 1, "/sleep", "", nil)
		ok, failures := l.finish()
		if len(failures) > 0 {
			t.Fatalf("%d of %d requests failed while scaling up: %v", len(failures), ok+len(failures), failures[:min(5, len(failures))])
		}
		eventually(t, "back to 1 replica after the load stepped down", 60*time.Second, func() bool {
			_, d := c.sleepState(t)
			return d.TargetNumReplicas == 1 && len(d.Replicas) == 1 && running(d) == 1 && d.Status == "HEALTHY" && d.StatusTrigger == "DOWNSCALE_COMPLETED"
		})
		tok, tfailures := trickle.finish()
		if len(tfailures) > 0 {
			t.Fatalf("%d of %d requests failed while scaling down: %v", len(tfailures), tok+len(tfailures), tfailures[:min(5, len(tfailures))])
		}
		ok += tok
		statuses, maxTarget := w.finish()
		if len(statuses) != 1 || statuses["RUNNING"] == 0 {
			t.Errorf("application statuses while autoscaling: %v, want RUNNING only", statuses)
		}
		if maxTarget != 4 {
			t.Errorf("largest target while 8 calls were in flight: %d, want 4", maxTarget)
		}
		_, d := c.sleepState(t)
		if d.AutoscalingDetail == nil || len(d.AutoscalingDetail.Decisions) < 2 || d.AutoscalingDetail.MetricsHealth != "healthy" {
			t.Errorf("autoscaling_detail = %+v", d.AutoscalingDetail)
		}
		t.Logf("%d requests, 0 failed, while scaling 1 → 4 → 1", ok)
	})

	t.Run("an idle deployment scales to zero and a cold first request is served", func(t *testing.T) {
		// min_replicas 0 applies in place.
		c.mustPut(t, c.config(autoscaledSleep(0)))
		for i, p := range []string{c.proxies[0], c.proxies[1]} {
			eventually(t, "zero replicas", 60*time.Second, func() bool {
				st, d := c.sleepState(t)
				return st == "RUNNING" && d.TargetNumReplicas == 0 && len(d.Replicas) == 0 && d.Status == "HEALTHY"
			})
			code, body := c.do(t, "POST", p+"/sleep", "")
			if code != 200 {
				t.Fatalf("cold request %d through %s = %d %q", i, p, code, body)
			}
			_, d := c.sleepState(t)
			if d.TargetNumReplicas < 1 {
				t.Fatalf("target %d after a cold request was served", d.TargetNumReplicas)
			}
		}
	})

	t.Run("a replica with no room stays STARTING as pending demand and starts when a node joins", func(t *testing.T) {
		// Three nodes of 2 CPUs hold three replicas of 1.5 CPUs; the fourth waits.
		big := `{"name": "big", "import_path": "builtin:noop", "route_prefix": "/big",
		  "deployments": [{"name": "noop", "num_replicas": 4, "ray_actor_options": {"num_cpus": 1.5}}]}`
		c.mustPut(t, c.config(big))
		eventually(t, "3 running replicas and 1 waiting for room", 60*time.Second, func() bool {
			d := c.apps(t)["big"].Deployments["noop"]
			states := map[string]int{}
			for _, r := range d.Replicas {
				states[r.State]++
			}
			return states["RUNNING"] == 3 && states["STARTING"] == 1 && len(d.Replicas) == 4 &&
				strings.Contains(d.Message, "1 replica(s) wait for a node with room: each needs {CPU: 1.5}")
		})
		conn, err := gcs.Dial(c.gcsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		pendingReplicas := func() []map[string]float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := gcsv1.NewAutoscalerStateServiceClient(conn).GetClusterState(ctx, &gcsv1.GetClusterStateRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var out []map[string]float64
			for _, p := range st.GetPending() {
				if p.GetKind() == "serve_replica" {
					out = append(out, p.GetResources())
				}
			}
			return out
		}
		if p := pendingReplicas(); len(p) != 1 || p[0]["CPU"] != 1.5 {
			t.Fatalf("pending serve_replica demand for the cluster autoscaler = %v, want one of CPU 1.5", p)
		}
		c.addWorker(t, "127.0.0.4")
		c.waitRunning(t, "big")
		if d := c.apps(t)["big"].Deployments["noop"]; len(d.Replicas) != 4 || strings.Contains(d.Message, "wait for a node") {
			t.Fatalf("after a node joined: %d replicas, message %q", len(d.Replicas), d.Message)
		}
		if p := pendingReplicas(); len(p) != 0 {
			t.Fatalf("pending serve_replica demand after the replica was placed: %v", p)
		}
	})
}
