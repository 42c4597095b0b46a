package autoscaler

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
)

func TestMetricsObserve(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	in := plan.Input{
		Cluster: &rayv1.RayCluster{Spec: rayv1.RayClusterSpec{WorkerGroupSpecs: []rayv1.WorkerGroupSpec{{GroupName: "a"}, {GroupName: "empty"}}}},
		Pods: []plan.Pod{
			{Name: "p1", Group: "a", State: plan.PodRunning},
			{Name: "p2", Group: "a", State: plan.PodRunning},
			{Name: "p3", Group: "a", State: plan.PodCreating},
		},
		Nodes:    []plan.Node{{Pod: "p1", IdleSince: time.Unix(1, 0)}, {Pod: "p2", Busy: true}},
		Demand:   []plan.Resources{{"CPU": 1}, {"GPU": 1}},
		Requests: []plan.Resources{{"CPU": 8}},
	}
	d := plan.Decision{Unmet: []plan.Unmet{{Infeasible: true}, {Infeasible: false}}}
	m.observe(in, d)
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"pending", testutil.ToFloat64(m.pending), 2},
		{"requested", testutil.ToFloat64(m.requested), 1},
		{"infeasible", testutil.ToFloat64(m.infeasible), 1},
		{"a running", testutil.ToFloat64(m.nodes.WithLabelValues("a", "running")), 2},
		{"a creating", testutil.ToFloat64(m.nodes.WithLabelValues("a", "creating")), 1},
		{"a idle", testutil.ToFloat64(m.nodes.WithLabelValues("a", "idle")), 1},
		{"empty running", testutil.ToFloat64(m.nodes.WithLabelValues("empty", "running")), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
