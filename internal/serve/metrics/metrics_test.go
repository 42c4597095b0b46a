package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.HTTPStarted()
	m.HTTPDone("a", "/", "d", "GET", 200, m.Now())
	m.RouterRequest("a", "d", "/")
	m.ReplicaStarted("a", "d", "r")
	m.ReplicaDone("a", "d", "r", "/", m.Now(), false)
	m.Forget("r")
}

func TestMethodAndStatusLabelsAreBounded(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "PATCH": "PATCH", "get": "OTHER", "BREW": "OTHER", strings.Repeat("X", 100): "OTHER"} {
		if got := Method(in); got != want {
			t.Errorf("Method(%q) = %q, want %q", in, got, want)
		}
	}
	if statusCode(42) != "other" || statusCode(503) != "503" {
		t.Errorf("statusCode: %q %q", statusCode(42), statusCode(503))
	}
}

// A replica forgotten while calls still run on it keeps its series until
// the last one ends, and no negative gauge is left behind.
func TestForgetWaitsForCallsInFlight(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
	m := New(clk, Sources{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	start := m.Now()
	m.ReplicaStarted("a", "d", "r1")
	m.ReplicaStarted("a", "d", "r1")
	m.ReplicaStarted("a", "d", "r2")
	m.Forget("r1")
	clk.SetTime(start.Add(5 * time.Millisecond))
	m.ReplicaDone("a", "d", "r1", "/", start, true)
	want := `
# HELP ray_serve_deployment_error_counter_total Calls this node's replicas failed (labels: application, deployment, replica, route).
# TYPE ray_serve_deployment_error_counter_total counter
ray_serve_deployment_error_counter_total{application="a",deployment="d",replica="r1",route="/"} 1
# HELP ray_serve_replica_processing_queries Calls this node's replicas are processing (labels: application, deployment, replica).
# TYPE ray_serve_replica_processing_queries gauge
ray_serve_replica_processing_queries{application="a",deployment="d",replica="r1"} 1
ray_serve_replica_processing_queries{application="a",deployment="d",replica="r2"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_serve_deployment_error_counter_total", "ray_serve_replica_processing_queries"); err != nil {
		t.Error(err)
	}
	m.ReplicaDone("a", "d", "r1", "/", start, false)
	want = `
# HELP ray_serve_replica_processing_queries Calls this node's replicas are processing (labels: application, deployment, replica).
# TYPE ray_serve_replica_processing_queries gauge
ray_serve_replica_processing_queries{application="a",deployment="d",replica="r2"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_serve_deployment_error_counter_total", "ray_serve_replica_processing_queries"); err != nil {
		t.Error(err)
	}
}

func TestReplicaStatesOnTheHead(t *testing.T) {
	m := New(nil, Sources{Replicas: func() []ReplicaStat {
		return []ReplicaStat{
			{App: "a", Deployment: "d", Replica: "r1", State: "RUNNING", Healthy: true},
			{App: "a", Deployment: "d", Replica: "r2", State: "RUNNING", Healthy: true},
			{App: "a", Deployment: "d", Replica: "r3", State: "STARTING"},
		}
	}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	want := `
# HELP ray_serve_deployment_replica_healthy 1 for a replica that serves, 0 for one starting, recovering or stopping (head; labels: application, deployment, replica).
# TYPE ray_serve_deployment_replica_healthy gauge
ray_serve_deployment_replica_healthy{application="a",deployment="d",replica="r1"} 1
ray_serve_deployment_replica_healthy{application="a",deployment="d",replica="r2"} 1
ray_serve_deployment_replica_healthy{application="a",deployment="d",replica="r3"} 0
# HELP rayk8s_serve_deployment_replicas Replicas by state (head; labels: application, deployment, state). Not a Ray metric.
# TYPE rayk8s_serve_deployment_replicas gauge
rayk8s_serve_deployment_replicas{application="a",deployment="d",state="RUNNING"} 2
rayk8s_serve_deployment_replicas{application="a",deployment="d",state="STARTING"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_serve_deployment_replica_healthy", "rayk8s_serve_deployment_replicas"); err != nil {
		t.Error(err)
	}
}

func TestAutoscalingOnTheHead(t *testing.T) {
	m := New(nil, Sources{Autoscaling: func() []AutoscalingStat {
		return []AutoscalingStat{{App: "a", Deployment: "d", Target: 4, Desired: 6, TotalRequests: 11.5, TargetOngoingRequests: 2, Upscales: 3, Downscales: 1}}
	}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	want := `
# HELP ray_serve_autoscaling_desired_replicas The replica count the load asks for, before the policy's delays (head; labels: application, deployment).
# TYPE ray_serve_autoscaling_desired_replicas gauge
ray_serve_autoscaling_desired_replicas{application="a",deployment="d"} 6
# HELP ray_serve_autoscaling_target_ongoing_requests The deployment's target_ongoing_requests (head; labels: application, deployment).
# TYPE ray_serve_autoscaling_target_ongoing_requests gauge
ray_serve_autoscaling_target_ongoing_requests{application="a",deployment="d"} 2
# HELP ray_serve_autoscaling_target_replicas The replica count the autoscaler works toward (head; labels: application, deployment).
# TYPE ray_serve_autoscaling_target_replicas gauge
ray_serve_autoscaling_target_replicas{application="a",deployment="d"} 4
# HELP ray_serve_autoscaling_total_requests Ongoing and queued requests the autoscaler aggregated over the look-back period (head; labels: application, deployment).
# TYPE ray_serve_autoscaling_total_requests gauge
ray_serve_autoscaling_total_requests{application="a",deployment="d"} 11.5
# HELP rayk8s_serve_autoscaling_decisions_total Autoscaling decisions since the controller started (head; labels: application, deployment, direction up|down). Not a Ray metric.
# TYPE rayk8s_serve_autoscaling_decisions_total counter
rayk8s_serve_autoscaling_decisions_total{application="a",deployment="d",direction="down"} 1
rayk8s_serve_autoscaling_decisions_total{application="a",deployment="d",direction="up"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_serve_autoscaling_desired_replicas", "ray_serve_autoscaling_target_replicas",
		"ray_serve_autoscaling_target_ongoing_requests",
		"ray_serve_autoscaling_total_requests", "rayk8s_serve_autoscaling_decisions_total"); err != nil {
		t.Error(err)
	}
}

func TestReplicasProcessing(t *testing.T) {
	m := New(nil, Sources{})
	start := m.Now()
	m.ReplicaStarted("a", "d", "r1")
	m.ReplicaStarted("a", "d", "r1")
	m.ReplicaStarted("a", "d", "r2")
	m.ReplicaDone("a", "d", "r2", "/", start, false)
	if got := m.ReplicasProcessing(); len(got) != 1 || got["r1"] != 2 {
		t.Fatalf("ReplicasProcessing() = %v, want r1: 2", got)
	}
}
