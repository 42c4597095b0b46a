package autoscaler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
)

// metrics are the autoscaler's Prometheus metrics, set from each round's observation and decision.
type metrics struct {
	pending    prometheus.Gauge
	requested  prometheus.Gauge
	infeasible prometheus.Gauge
	decisions  *prometheus.CounterVec
	nodes      *prometheus.GaugeVec
	rounds     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rayk8s_autoscaler_pending_demand_bundles",
			Help: "Resource bundles of placements waiting for capacity, as the head reported them last round.",
		}),
		requested: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rayk8s_autoscaler_requested_bundles",
			Help: "Resource bundles standing from request_resources.",
		}),
		infeasible: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rayk8s_autoscaler_infeasible_bundles",
			Help: "Pending bundles no worker group's node shape can ever hold.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rayk8s_autoscaler_decisions_total",
			Help: "Scaling decisions written to the RayCluster (labels: group, action up|down|cleanup).",
		}, []string{"group", "action"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rayk8s_autoscaler_nodes",
			Help: "Worker pods per group by state (labels: group, state creating|running|deleting|idle).",
		}, []string{"group", "state"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rayk8s_autoscaler_rounds_total",
			Help: "Autoscaler rounds (labels: result ok|error|conflict).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.pending, m.requested, m.infeasible, m.decisions, m.nodes, m.rounds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(in plan.Input, d plan.Decision) {
	m.pending.Set(float64(len(in.Demand)))
	m.requested.Set(float64(len(in.Requests)))
	infeasible := 0
	for _, u := range d.Unmet {
		if u.Infeasible {
			infeasible++
		}
	}
	m.infeasible.Set(float64(infeasible))

	idle := map[string]bool{}
	for _, n := range in.Nodes {
		if !n.Busy && !n.IdleSince.IsZero() {
			idle[n.Pod] = true
		}
	}
	m.nodes.Reset()
	for _, g := range in.Cluster.Spec.WorkerGroupSpecs {
		for _, s := range []string{"creating", "running", "deleting", "idle"} {
			m.nodes.WithLabelValues(g.GroupName, s).Set(0)
		}
	}
	for _, p := range in.Pods {
		m.nodes.WithLabelValues(p.Group, p.State.String()).Inc()
		if idle[p.Name] && p.State == plan.PodRunning {
			m.nodes.WithLabelValues(p.Group, "idle").Inc()
		}
	}
}
