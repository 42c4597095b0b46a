package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// BenchmarkRequestMetrics is what one proxied call records: the proxy's
// request, the router's, and the local replica's start and end.
func BenchmarkRequestMetrics(b *testing.B) {
	m := New(nil, Sources{})
	b.ReportAllocs()
	for b.Loop() {
		start := m.Now()
		m.HTTPStarted()
		m.RouterRequest("app", "Ingress", "/noop")
		m.ReplicaStarted("app", "Ingress", "replica-1")
		m.ReplicaDone("app", "Ingress", "replica-1", "/noop", start, false)
		m.HTTPDone("app", "/noop", "Ingress", "GET", 200, start)
	}
}

// A replica forgotten and then serving again (same id) gets fresh series:
// the cached ones of the deleted series are not reused.
func TestForgottenReplicaSeriesComeBack(t *testing.T) {
	m := New(nil, Sources{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	start := m.Now()
	m.ReplicaStarted("a", "d", "r1")
	m.ReplicaDone("a", "d", "r1", "/", start, false)
	m.Forget("r1")
	m.ReplicaStarted("a", "d", "r1")
	m.ReplicaDone("a", "d", "r1", "/", start, false)
	m.ReplicaStarted("a", "d", "r1")
	want := `
# HELP ray_serve_deployment_request_counter_total Calls this node's replicas processed (labels: application, deployment, replica, route).
# TYPE ray_serve_deployment_request_counter_total counter
ray_serve_deployment_request_counter_total{application="a",deployment="d",replica="r1",route="/"} 1
# HELP ray_serve_replica_processing_queries Calls this node's replicas are processing (labels: application, deployment, replica).
# TYPE ray_serve_replica_processing_queries gauge
ray_serve_replica_processing_queries{application="a",deployment="d",replica="r1"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_serve_deployment_request_counter_total", "ray_serve_replica_processing_queries"); err != nil {
		t.Error(err)
	}
}
