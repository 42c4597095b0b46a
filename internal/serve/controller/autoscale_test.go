package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// autoApp is a builtin:echo deployment autoscaled with short delays; %s adds
// to its autoscaling_config.
const autoApp = `{"applications": [{"name": "app", "import_path": "builtin:echo", "route_prefix": "/e",
  "deployments": [{"name": "echo", "ray_actor_options": {"num_cpus": 0.5},
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 2, "metrics_interval_s": 1,
      "look_back_period_s": 2, "upscale_delay_s": 0, "downscale_delay_s": 5%s}}]}]}`

// load reports, as node's agent would, calls in flight and queued for the
// echo deployment, as one sample taken now.
func (h *harness) load(node string, ongoing, queued float64) {
	h.c.ReportMetrics(&servev1.ReportMetricsRequest{NodeId: node, Routers: []*servev1.DeploymentLoad{{
		App: "app", Deployment: "echo", Samples: []*servev1.LoadSample{{Ongoing: ongoing, Queued: queued}},
	}}})
}

func (h *harness) echo() dashboard.DeploymentDetails {
	return h.c.Details().Applications["app"].Deployments["echo"]
}

// exitStopped reports every replica the controller asked to stop as exited.
func (h *harness) exitStopped() {
	h.cluster.mu.Lock()
	stopped := h.cluster.stopped
	h.cluster.stopped = nil
	h.cluster.mu.Unlock()
	for _, id := range stopped {
		h.cluster.report(id, gcsv1.ProcessState_PROCESS_STATE_EXITED, "")
	}
	h.pass()
}

func (h *harness) wantStatus(status dashboard.DeploymentStatus, trigger dashboard.DeploymentStatusTrigger, target int) {
	h.t.Helper()
	d := h.echo()
	if d.Status != status || d.StatusTrigger != trigger || d.TargetNumReplicas != target {
		h.t.Fatalf("deployment %s/%s target %d, want %s/%s target %d (message %q)", d.Status, d.StatusTrigger, d.TargetNumReplicas, status, trigger, target, d.Message)
	}
	if st, msg := h.appStatus("app"); st != dashboard.ApplicationStatusRunning {
		h.t.Fatalf("application %s (%q) while autoscaling, want RUNNING", st, msg)
	}
}

func TestAutoscalingFollowsLoadUpAndDown(t *testing.T) {
	h := newHarness(t, nil, "head", "w1")
	h.deploy(fmt.Sprintf(autoApp, ""))
	h.pass()
	h.startAll()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerConfigUpdateCompleted, 1)

	// 8 calls over one replica with a target of 2 per replica: 4 replicas.
	h.load("head", 2, 4)
	h.load("w1", 1, 1)
	h.pass()
	h.wantStatus(dashboard.DeploymentStatusUpscaling, dashboard.TriggerAutoscaling, 4)
	h.startAll()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerUpscaleCompleted, 4)
	if n := len(h.replicas("app", "echo")[dashboard.ReplicaStateRunning]); n != 4 {
		t.Fatalf("%d replicas running, want 4", n)
	}

	// The load stops: after downscale_delay_s of fresh reports, one replica.
	for range 6 {
		h.clock.Step(time.Second)
		h.load("head", 0, 0)
		h.load("w1", 0, 0)
		h.pass()
		if d := h.echo(); d.TargetNumReplicas != 4 {
			if d.TargetNumReplicas != 1 {
				t.Fatalf("target %d, want 4 or 1", d.TargetNumReplicas)
			}
			break
		}
	}
	h.wantStatus(dashboard.DeploymentStatusDownscaling, dashboard.TriggerAutoscaling, 1)
	h.exitStopped()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerDownscaleCompleted, 1)

	detail := h.echo().AutoscalingDetail
	if detail == nil || len(detail.Decisions) != 2 || detail.Decisions[0].CurrNumReplicas != 4 || detail.Decisions[1].CurrNumReplicas != 1 ||
		detail.ScalingStatus != dashboard.AutoscalingStatusStable || detail.MetricsHealth != "healthy" {
		t.Fatalf("autoscaling_detail = %+v", detail)
	}
}

func TestAutoscalingWithoutReportsNeverScalesDown(t *testing.T) {
	h := newHarness(t, nil, "head")
	h.deploy(fmt.Sprintf(autoApp, `, "initial_replicas": 3`))
	h.pass()
	h.startAll()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerConfigUpdateCompleted, 3)
	for range 20 {
		h.clock.Step(time.Second)
		h.pass()
	}
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerConfigUpdateCompleted, 3)
	if got := h.echo().AutoscalingDetail.MetricsHealth; got != "unavailable" {
		t.Fatalf("metrics_health = %q, want unavailable", got)
	}
	// A node that stops reporting leaves delayed metrics: still no downscale.
	h.deploy(strings.Replace(fmt.Sprintf(autoApp, `, "initial_replicas": 3`), `"look_back_period_s": 2`, `"look_back_period_s": 30`, 1))
	h.pass()
	h.load("head", 0, 0)
	h.pass()
	for range 4 {
		h.clock.Step(time.Second)
		h.pass()
	}
	if got := h.echo().AutoscalingDetail.MetricsHealth; got != "delayed" {
		t.Fatalf("metrics_health = %q, want delayed", got)
	}
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerConfigUpdateCompleted, 3)
}

func TestAutoscalingConfigChangeAppliesInPlace(t *testing.T) {
	h := newHarness(t, nil, "head", "w1")
	h.deploy(fmt.Sprintf(autoApp, ""))
	h.pass()
	h.startAll()
	h.load("head", 8, 0)
	h.pass()
	h.startAll()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerUpscaleCompleted, 4)
	before := h.replicas("app", "echo")[dashboard.ReplicaStateRunning]

	// A new target per replica changes no replica and no count.
	h.deploy(strings.Replace(fmt.Sprintf(autoApp, ""), `"target_ongoing_requests": 2`, `"target_ongoing_requests": 1`, 1))
	h.pass()
	h.startAll()
	after := h.replicas("app", "echo")[dashboard.ReplicaStateRunning]
	sort.Strings(before)
	sort.Strings(after)
	if strings.Join(before, ",") != strings.Join(after, ",") {
		t.Fatalf("replicas changed on an autoscaling_config change: %v → %v", before, after)
	}
	h.reps.mu.Lock()
	reconfigured := len(h.reps.reconfigure)
	h.reps.mu.Unlock()
	if reconfigured != 0 || h.echo().TargetNumReplicas != 4 {
		t.Fatalf("reconfigure calls %d, target %d; want none and 4", reconfigured, h.echo().TargetNumReplicas)
	}

	// Lower bounds take effect at once, stopping only what is above them.
	h.deploy(strings.Replace(fmt.Sprintf(autoApp, ""), `"max_replicas": 4`, `"max_replicas": 2`, 1))
	h.pass()
	if d := h.echo(); d.TargetNumReplicas != 2 {
		t.Fatalf("target %d after max_replicas 2, want 2", d.TargetNumReplicas)
	}
	h.exitStopped()
	if n := len(h.replicas("app", "echo")[dashboard.ReplicaStateRunning]); n != 2 {
		t.Fatalf("%d replicas running, want 2", n)
	}
}

func TestAutoscalingToZeroAndColdStart(t *testing.T) {
	h := newHarness(t, nil, "head")
	h.deploy(fmt.Sprintf(autoApp, `, "min_replicas": 0, "initial_replicas": 1, "downscale_to_zero_delay_s": 2`))
	h.pass()
	h.startAll()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerConfigUpdateCompleted, 1)
	for i := 0; h.echo().TargetNumReplicas != 0; i++ {
		if i > 10 {
			t.Fatalf("an idle deployment with min_replicas 0 kept %d replicas", h.echo().TargetNumReplicas)
		}
		h.clock.Step(time.Second)
		h.load("head", 0, 0)
		h.pass()
	}
	h.exitStopped()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerDownscaleCompleted, 0)
	if reps := h.echo().Replicas; len(reps) != 0 {
		t.Fatalf("replicas at zero: %+v", reps)
	}
	// A call waits in a proxy's queue: one replica at once, no delay.
	h.load("head", 0, 1)
	h.pass()
	h.wantStatus(dashboard.DeploymentStatusUpscaling, dashboard.TriggerAutoscaling, 1)
	h.startAll()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerUpscaleCompleted, 1)
}

// fakeDemand records the pending demand the controller reports.
type fakeDemand struct {
	mu      sync.Mutex
	pending map[string]map[string]float64
}

func (f *fakeDemand) SetPending(id, kind string, res map[string]float64, _ bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kind == ReplicaKind {
		f.pending[id] = res
	}
}

func (f *fakeDemand) Withdraw(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pending, id)
}

func (f *fakeDemand) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

func TestUnplacedReplicasArePendingDemandAndStartWhenANodeJoins(t *testing.T) {
	cluster := newFakeCluster("head")
	demand := &fakeDemand{pending: map[string]map[string]float64{}}
	h := newHarnessOn(t, nil, cluster)
	h.c = New(Options{Cluster: cluster, Store: h.store, Replicas: h.reps, Clock: h.clock, Logger: logr.Discard(), Demand: demand,
		Async: func(f func()) { h.pending = append(h.pending, f) }})
	h.deploy(strings.Replace(fmt.Sprintf(autoApp, `, "initial_replicas": 3`), `"num_cpus": 0.5`, `"num_cpus": 1`, 1))
	h.pass()
	h.startAll()
	reps := h.replicas("app", "echo")
	if len(reps[dashboard.ReplicaStateRunning]) != 2 || len(reps[dashboard.ReplicaStateStarting]) != 1 {
		t.Fatalf("replicas %v, want 2 running (the head's 2 CPUs) and 1 starting", reps)
	}
	if msg := h.echo().Message; !strings.Contains(msg, "1 replica(s) wait for a node with room: each needs {CPU: 1}") {
		t.Fatalf("message %q does not name the resources the replica waits for", msg)
	}
	if demand.count() != 1 {
		t.Fatalf("%d replicas pending demand, want 1", demand.count())
	}
	// A node joins: the waiting replica is placed and starts.
	cluster.mu.Lock()
	cluster.nodes = append(cluster.nodes, &gcsv1.Node{NodeId: "w1", NodeIpAddress: "127.0.0.9", AgentPort: 5000,
		State: gcsv1.NodeState_NODE_STATE_ALIVE, ResourcesTotal: map[string]float64{"CPU": 2}})
	cluster.mu.Unlock()
	h.pass()
	h.startAll()
	if n := len(h.replicas("app", "echo")[dashboard.ReplicaStateRunning]); n != 3 {
		t.Fatalf("%d replicas running after a node joined, want 3", n)
	}
	if msg := h.echo().Message; strings.Contains(msg, "wait for a node") || demand.count() != 0 {
		t.Fatalf("message %q, %d pending after the replica was placed", msg, demand.count())
	}
}

func TestUnplacedReplicaNoLongerWantedWithdrawsItsDemand(t *testing.T) {
	cluster := newFakeCluster("head")
	demand := &fakeDemand{pending: map[string]map[string]float64{}}
	h := newHarnessOn(t, nil, cluster)
	h.c = New(Options{Cluster: cluster, Store: h.store, Replicas: h.reps, Clock: h.clock, Logger: logr.Discard(), Demand: demand,
		Async: func(f func()) { h.pending = append(h.pending, f) }})
	app := strings.Replace(fmt.Sprintf(autoApp, `, "initial_replicas": 3`), `"num_cpus": 0.5`, `"num_cpus": 1`, 1)
	h.deploy(app)
	h.pass()
	h.startAll()
	if demand.count() != 1 {
		t.Fatalf("%d replicas pending, want 1", demand.count())
	}
	h.deploy(strings.Replace(strings.Replace(app, `"max_replicas": 4`, `"max_replicas": 2`, 1), `, "initial_replicas": 3`, "", 1))
	h.pass()
	reps := h.replicas("app", "echo")
	if demand.count() != 0 || len(reps[dashboard.ReplicaStateRunning]) != 2 || len(reps) != 1 {
		t.Fatalf("after max_replicas 2: %d pending, replicas %v; want none pending and the 2 running kept", demand.count(), reps)
	}
}

func TestAutoscaledTargetSurvivesControllerRestart(t *testing.T) {
	h := newHarness(t, nil, "head", "w1")
	h.deploy(fmt.Sprintf(autoApp, ""))
	h.pass()
	h.startAll()
	h.load("head", 6, 0)
	h.pass()
	h.startAll()
	h.wantStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerUpscaleCompleted, 3)

	h2 := newHarnessOn(t, h.store, h.cluster)
	if err := h2.c.restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	h2.pass()
	if d := h2.echo(); d.TargetNumReplicas != 3 {
		t.Fatalf("restored target %d, want 3", d.TargetNumReplicas)
	}
}

func TestAutoscalingObservabilityEndpoint(t *testing.T) {
	h := newHarness(t, nil, "head")
	h.deploy(fmt.Sprintf(autoApp, ""))
	h.pass()
	h.startAll()
	h.load("head", 1, 3)
	h.pass()
	srv := httptest.NewServer(NewHandler(h.c, logr.Discard()))
	defer srv.Close()
	resp, err := http.Get(srv.URL + dashboard.ServeAutoscalingObservabilityPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]map[string]dashboard.DeploymentAutoscalingDetail
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	d, ok := got["app"]["echo"]
	if resp.StatusCode != http.StatusOK || !ok {
		t.Fatalf("status %d, body %+v", resp.StatusCode, got)
	}
	if d.ScalingStatus != dashboard.AutoscalingStatusUpscaling || d.Metrics["total_requests"] != 4.0 || d.Metrics["queued_requests"] != 3.0 ||
		len(d.Decisions) != 1 || d.Decisions[0].PrevNumReplicas != 1 || d.Decisions[0].CurrNumReplicas != 2 {
		t.Fatalf("detail = %+v", d)
	}
}
