package rayjob

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// ClusterNameIndex indexes RayJobs by status.rayClusterName, so that events of a RayCluster and of
// its head pod reach the RayJob using it: the one that created it and any that selected it with
// clusterSelector.
const ClusterNameIndex = ".status.rayClusterName"

// SetupIndexes registers ClusterNameIndex.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &rayv1.RayJob{}, ClusterNameIndex, func(o client.Object) []string {
		rj, ok := o.(*rayv1.RayJob)
		if !ok || rj.Status.RayClusterName == "" {
			return nil
		}
		return []string{rj.Status.RayClusterName}
	}); err != nil {
		return fmt.Errorf("indexing RayJobs by cluster name: %w", err)
	}
	return nil
}

// rayJobsUsingCluster maps a RayCluster (or one of its pods, through its ray.io/cluster label) to
// the RayJobs whose current attempt uses it.
func (r *Reconciler) rayJobsUsingCluster(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetName()
	if _, isPod := o.(*corev1.Pod); isPod {
		if o.GetLabels()[rayv1.RayNodeTypeLabelKey] != string(rayv1.HeadNode) {
			return nil
		}
		name = o.GetLabels()[rayv1.RayClusterLabelKey]
	}
	if name == "" {
		return nil
	}
	return reconcilekit.RequestsByIndex(ctx, r.client, &rayv1.RayJobList{}, o.GetNamespace(), ClusterNameIndex, name)
}
