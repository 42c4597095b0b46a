package rayservice

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// Field indexes of this controller.
const (
	// OwnerUIDIndex holds the UID of a RayCluster's controlling RayService. Clusters are listed by
	// owner UID, never by name or label, so a RayService deleted and recreated under the same name
	// never adopts (or deletes) the previous one's clusters.
	OwnerUIDIndex = ".metadata.controller.rayserviceUID"
	// ClusterNameIndex holds the active and pending cluster names of a RayService, so that pod
	// events reach the RayService serving from them.
	ClusterNameIndex = ".status.rayClusterNames"
	// ServeServiceIndex holds the serve Service name of a RayService, so that EndpointSlice events
	// reach it.
	ServeServiceIndex = ".spec.serveServiceName"
)

// SetupIndexes registers the indexes.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &rayv1.RayCluster{}, OwnerUIDIndex, controllerUID); err != nil {
		return fmt.Errorf("indexing RayClusters by owner UID: %w", err)
	}
	if err := idx.IndexField(ctx, &rayv1.RayService{}, ClusterNameIndex, func(o client.Object) []string {
		rs, ok := o.(*rayv1.RayService)
		if !ok {
			return nil
		}
		var out []string
		for _, n := range []string{rs.Status.ActiveServiceStatus.RayClusterName, rs.Status.PendingServiceStatus.RayClusterName} {
			if n != "" {
				out = append(out, n)
			}
		}
		return out
	}); err != nil {
		return fmt.Errorf("indexing RayServices by cluster name: %w", err)
	}
	if err := idx.IndexField(ctx, &rayv1.RayService{}, ServeServiceIndex, func(o client.Object) []string {
		rs, ok := o.(*rayv1.RayService)
		if !ok {
			return nil
		}
		return []string{serveServiceName(rs)}
	}); err != nil {
		return fmt.Errorf("indexing RayServices by serve Service name: %w", err)
	}
	return nil
}

func controllerUID(obj client.Object) []string {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "RayService" || ref.APIVersion != rayv1.GroupVersion.String() {
		return nil
	}
	return []string{string(ref.UID)}
}

// rayServicesOfPod maps a pod, through its ray.io/cluster label, to the RayServices whose active
// or pending cluster it belongs to.
func (r *Reconciler) rayServicesOfPod(ctx context.Context, o client.Object) []reconcile.Request {
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return nil
	}
	name := pod.Labels[rayv1.RayClusterLabelKey]
	if name == "" {
		return nil
	}
	return reconcilekit.RequestsByIndex(ctx, r.client, &rayv1.RayServiceList{}, pod.Namespace, ClusterNameIndex, name)
}

// rayServicesOfEndpointSlice maps an EndpointSlice to the RayService whose serve Service it
// belongs to.
func (r *Reconciler) rayServicesOfEndpointSlice(ctx context.Context, o client.Object) []reconcile.Request {
	es, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil
	}
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil
	}
	return reconcilekit.RequestsByIndex(ctx, r.client, &rayv1.RayServiceList{}, es.Namespace, ServeServiceIndex, svc)
}
