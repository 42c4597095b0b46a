package rayjob

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// The kuberay_job_* metrics keep KubeRay's names but not its per-object labels (name, uid): those
// create one series per RayJob ever run, which is unbounded for batch workloads. Here every label
// is bounded: namespace (set by administrators, not by workload churn), jobDeploymentStatus (10
// values) and the failure reason (the fixed JobFailedReason set). The gauges are computed on scrape
// from the informer cache, so deleted RayJobs leave no stale series.
var (
	executionDurationOpts = prometheus.HistogramOpts{
		Name:    "kuberay_job_execution_duration_seconds",
		Help:    "Seconds from a RayJob attempt's start to its end, by namespace and job_deployment_status (Complete, Failed or Retrying).",
		Buckets: []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400},
	}
	failuresOpts = prometheus.CounterOpts{
		Name: "kuberay_job_failures_total",
		Help: "RayJob attempts that failed, by namespace and reason.",
	}
	jobInfoDesc = prometheus.NewDesc("kuberay_job_info",
		"Number of RayJobs, by namespace and submission_mode.", []string{"namespace", "submission_mode"}, nil)
	deploymentStatusDesc = prometheus.NewDesc("kuberay_job_deployment_status",
		"Number of RayJobs in each jobDeploymentStatus, by namespace.", []string{"namespace", "deployment_status"}, nil)
)

type jobMetrics struct {
	duration *prometheus.HistogramVec // nil when metrics are off
	failures *prometheus.CounterVec
}

func newJobMetrics(reg prometheus.Registerer, reader client.Reader) (*jobMetrics, error) {
	m := &jobMetrics{}
	if reg == nil {
		return m, nil
	}
	h, err := reconcilekit.Register(reg, prometheus.NewHistogramVec(executionDurationOpts, []string{"namespace", "job_deployment_status"}))
	if err != nil {
		return nil, err
	}
	c, err := reconcilekit.Register(reg, prometheus.NewCounterVec(failuresOpts, []string{"namespace", "reason"}))
	if err != nil {
		return nil, err
	}
	if _, err := reconcilekit.Register(reg, &jobCollector{reader: reader}); err != nil {
		return nil, err
	}
	m.duration, m.failures = h, c
	return m, nil
}

// observe records an attempt that just ended (Complete, Failed or Retrying).
func (m *jobMetrics) observe(rj *rayv1.RayJob, before rayv1.JobDeploymentStatus, now time.Time) {
	if m.duration == nil {
		return
	}
	st := &rj.Status
	if st.JobDeploymentStatus == before {
		return
	}
	switch st.JobDeploymentStatus {
	case rayv1.JobDeploymentStatusComplete, rayv1.JobDeploymentStatusFailed, rayv1.JobDeploymentStatusRetrying:
	default:
		return
	}
	if st.StartTime != nil {
		m.duration.WithLabelValues(rj.Namespace, string(st.JobDeploymentStatus)).Observe(max(now.Sub(st.StartTime.Time), 0).Seconds())
	}
	if st.JobDeploymentStatus != rayv1.JobDeploymentStatusComplete {
		m.failures.WithLabelValues(rj.Namespace, string(st.Reason)).Inc()
	}
}

// jobCollector counts RayJobs on scrape.
type jobCollector struct {
	reader client.Reader
}

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobInfoDesc
	ch <- deploymentStatusDesc
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list rayv1.RayJobList
	if err := c.reader.List(ctx, &list); err != nil {
		return
	}
	type key struct{ ns, v string }
	info, states := map[key]int{}, map[key]int{}
	for i := range list.Items {
		rj := &list.Items[i]
		info[key{rj.Namespace, string(mode(rj))}]++
		states[key{rj.Namespace, stateName(rj.Status.JobDeploymentStatus)}]++
	}
	for k, n := range info {
		ch <- prometheus.MustNewConstMetric(jobInfoDesc, prometheus.GaugeValue, float64(n), k.ns, k.v)
	}
	for k, n := range states {
		ch <- prometheus.MustNewConstMetric(deploymentStatusDesc, prometheus.GaugeValue, float64(n), k.ns, k.v)
	}
}
