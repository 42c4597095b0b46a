package raycluster

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// The kuberay_cluster_* metrics keep KubeRay's names but not its per-object labels: KubeRay
// labels every series with the cluster's name, namespace and UID, so the number of series grows
// with every RayCluster ever created (RayJobs create one per run). Here the only labels are the
// namespace (bounded by the administrator, not by workload churn) and small enums, and the
// gauges count clusters instead of being one series per cluster.
var (
	provisionedDurationDesc = prometheus.HistogramOpts{
		Name:    "kuberay_cluster_provisioned_duration_seconds",
		Help:    "Seconds from a RayCluster's creation until all its pods were first running and ready, by namespace.",
		Buckets: []float64{5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600},
	}
	clusterInfoDesc = prometheus.NewDesc("kuberay_cluster_info",
		"Number of RayClusters, by namespace and owner_kind (None, RayJob or RayService).",
		[]string{"namespace", "owner_kind"}, nil)
	conditionProvisionedDesc = prometheus.NewDesc("kuberay_cluster_condition_provisioned",
		"Number of RayClusters whose RayClusterProvisioned condition is true or false, by namespace.",
		[]string{"namespace", "condition"}, nil)
)

type clusterMetrics struct {
	provisioned *prometheus.HistogramVec // nil when metrics are off
}

// newClusterMetrics registers the metrics on reg (nothing when reg is nil). The gauges are
// computed on scrape from the informer cache through reader, so a deleted cluster never leaves a
// stale series behind.
func newClusterMetrics(reg prometheus.Registerer, reader client.Reader) (*clusterMetrics, error) {
	m := &clusterMetrics{}
	if reg == nil {
		return m, nil
	}
	h, err := reconcilekit.Register(reg, prometheus.NewHistogramVec(provisionedDurationDesc, []string{"namespace"}))
	if err != nil {
		return nil, err
	}
	if _, err := reconcilekit.Register(reg, &stateCollector{reader: reader}); err != nil {
		return nil, err
	}
	m.provisioned = h
	return m, nil
}

// observe records the transitions of one reconcile.
func (m *clusterMetrics) observe(c *rayv1.RayCluster, t statusTransitions) {
	if m.provisioned == nil || !t.provisioned {
		return
	}
	cond := meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterProvisioned))
	if cond == nil {
		return
	}
	d := cond.LastTransitionTime.Sub(c.CreationTimestamp.Time)
	m.provisioned.WithLabelValues(c.Namespace).Observe(max(d, 0).Seconds())
}

// stateCollector counts RayClusters on scrape.
type stateCollector struct {
	reader client.Reader
}

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clusterInfoDesc
	ch <- conditionProvisionedDesc
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list rayv1.RayClusterList
	if err := s.reader.List(ctx, &list); err != nil {
		return
	}
	type nsKey struct{ ns, v string }
	info, prov := map[nsKey]int{}, map[nsKey]int{}
	for i := range list.Items {
		c := &list.Items[i]
		owner := c.Labels[rayv1.RayOriginatedFromCRDLabelKey]
		if owner == "" || owner == string(rayv1.RayClusterCRD) {
			owner = "None"
		}
		info[nsKey{c.Namespace, owner}]++
		v := "false"
		if meta.IsStatusConditionTrue(c.Status.Conditions, string(rayv1.RayClusterProvisioned)) {
			v = "true"
		}
		prov[nsKey{c.Namespace, v}]++
	}
	for k, n := range info {
		ch <- prometheus.MustNewConstMetric(clusterInfoDesc, prometheus.GaugeValue, float64(n), k.ns, k.v)
	}
	for k, n := range prov {
		ch <- prometheus.MustNewConstMetric(conditionProvisionedDesc, prometheus.GaugeValue, float64(n), k.ns, k.v)
	}
}
