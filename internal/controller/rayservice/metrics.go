package rayservice

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// The kuberay_service_* metrics keep KubeRay's names but not its per-object labels (name, uid),
// which create one series per RayService ever created. Every label here is bounded: namespace,
// the condition status (True, False, Unknown) and the outcome of a traffic switch. The gauges are
// computed on scrape from the informer cache, so deleted RayServices leave no stale series.
var (
	serviceInfoDesc = prometheus.NewDesc("kuberay_service_info",
		"Number of RayServices, by namespace.", []string{"namespace"}, nil)
	conditionReadyDesc = prometheus.NewDesc("kuberay_service_condition_ready",
		"Number of RayServices by status of their Ready condition, by namespace.", []string{"namespace", "condition"}, nil)
	conditionUpgradeDesc = prometheus.NewDesc("kuberay_service_condition_upgrade_in_progress",
		"Number of RayServices by status of their UpgradeInProgress condition, by namespace.", []string{"namespace", "condition"}, nil)
	switchesOpts = prometheus.CounterOpts{
		Name: "kuberay_service_traffic_switches_total",
		Help: "Traffic switches from an active RayCluster to a newly ready one, by namespace.",
	}
	upgradeDurationOpts = prometheus.HistogramOpts{
		Name:    "kuberay_service_upgrade_duration_seconds",
		Help:    "Seconds from the start of a RayService upgrade (UpgradeInProgress=True) to the traffic switch, by namespace.",
		Buckets: []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600},
	}
)

type serviceMetrics struct {
	switches *prometheus.CounterVec // nil when metrics are off
	duration *prometheus.HistogramVec
}

func newServiceMetrics(reg prometheus.Registerer, reader client.Reader) (*serviceMetrics, error) {
	m := &serviceMetrics{}
	if reg == nil {
		return m, nil
	}
	c, err := reconcilekit.Register(reg, prometheus.NewCounterVec(switchesOpts, []string{"namespace"}))
	if err != nil {
		return nil, err
	}
	h, err := reconcilekit.Register(reg, prometheus.NewHistogramVec(upgradeDurationOpts, []string{"namespace"}))
	if err != nil {
		return nil, err
	}
	if _, err := reconcilekit.Register(reg, &serviceCollector{reader: reader}); err != nil {
		return nil, err
	}
	m.switches, m.duration = c, h
	return m, nil
}

// observe records a traffic switch from one cluster to another.
func (m *serviceMetrics) observe(s *scope) {
	if m.switches == nil || !s.promoted || s.before.Status.ActiveServiceStatus.RayClusterName == "" {
		return
	}
	m.switches.WithLabelValues(s.rs.Namespace).Inc()
	if c := meta.FindStatusCondition(s.before.Status.Conditions, string(rayv1.UpgradeInProgress)); c != nil && c.Status == "True" {
		m.duration.WithLabelValues(s.rs.Namespace).Observe(max(s.now.Sub(c.LastTransitionTime.Time), 0).Seconds())
	}
}

// serviceCollector counts RayServices on scrape.
type serviceCollector struct {
	reader client.Reader
}

func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- serviceInfoDesc
	ch <- conditionReadyDesc
	ch <- conditionUpgradeDesc
}

func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list rayv1.RayServiceList
	if err := c.reader.List(ctx, &list); err != nil {
		return
	}
	type key struct{ ns, v string }
	info := map[string]int{}
	ready, upgrading := map[key]int{}, map[key]int{}
	for i := range list.Items {
		rs := &list.Items[i]
		info[rs.Namespace]++
		ready[key{rs.Namespace, conditionValue(rs, rayv1.RayServiceReady)}]++
		upgrading[key{rs.Namespace, conditionValue(rs, rayv1.UpgradeInProgress)}]++
	}
	for ns, n := range info {
		ch <- prometheus.MustNewConstMetric(serviceInfoDesc, prometheus.GaugeValue, float64(n), ns)
	}
	for k, n := range ready {
		ch <- prometheus.MustNewConstMetric(conditionReadyDesc, prometheus.GaugeValue, float64(n), k.ns, k.v)
	}
	for k, n := range upgrading {
		ch <- prometheus.MustNewConstMetric(conditionUpgradeDesc, prometheus.GaugeValue, float64(n), k.ns, k.v)
	}
}

// conditionValue is "true", "false" or "unknown" (KubeRay's label values).
func conditionValue(rs *rayv1.RayService, t rayv1.RayServiceConditionType) string {
	c := meta.FindStatusCondition(rs.Status.Conditions, string(t))
	switch {
	case c == nil:
		return "unknown"
	case c.Status == "True":
		return "true"
	case c.Status == "False":
		return "false"
	}
	return "unknown"
}
