package raycronjob

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// runMetrics counts what became of each schedule time and of RayJobs deleted by policy.
type runMetrics struct {
	runs *prometheus.CounterVec
}

// newRunMetrics registers the metrics on reg; a nil reg exports none.
func newRunMetrics(reg prometheus.Registerer) (*runMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	runs, err := reconcilekit.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rayk8s_raycronjob_runs_total",
		Help: "Schedule times handled by the RayCronJob controller, by outcome (created, skipped), and RayJobs it deleted (deleted).",
	}, []string{"namespace", "outcome"}))
	if err != nil {
		return nil, err
	}
	return &runMetrics{runs: runs}, nil
}

// observe counts the decision's outcomes; a nil receiver (no registerer) does nothing.
func (m *runMetrics) observe(ns string, d *decision) {
	if m == nil {
		return
	}
	for _, e := range append(append(reconcilekit.Events{}, d.actionEvents...), d.events...) {
		switch e.Reason {
		case CreatedRayJob:
			m.runs.WithLabelValues(ns, "created").Inc()
		case SkippedRayCronJobRun:
			m.runs.WithLabelValues(ns, "skipped").Inc()
		case DeletedRayJob:
			m.runs.WithLabelValues(ns, "deleted").Inc()
		}
	}
}
