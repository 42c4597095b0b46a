package raycluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/kuberneteswas"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// setupWorkloadScheduling registers the scheduling.k8s.io/v1alpha3 types and watches the
// Workloads and PodGroups of gang-scheduled clusters (KubernetesWAS gate). An API server that
// does not serve the API fails the start with a message saying how to enable it: every
// gang-scheduled pod would otherwise wait for a PodGroup that cannot exist.
func (r *Reconciler) setupWorkloadScheduling(mgr ctrl.Manager, b *builder.Builder) (*builder.Builder, error) {
	if !r.cfg.Enabled(features.KubernetesWAS) {
		return b, nil
	}
	if err := schedulingv1alpha3.AddToScheme(mgr.GetScheme()); err != nil {
		return nil, fmt.Errorf("registering scheduling.k8s.io/v1alpha3: %w", err)
	}
	gvk := schedulingv1alpha3.SchemeGroupVersion.WithKind("PodGroup")
	if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
		return nil, fmt.Errorf("the KubernetesWAS feature gate needs the scheduling.k8s.io/v1alpha3 API (kube-apiserver --feature-gates=GenericWorkload=true --runtime-config=scheduling.k8s.io/v1alpha3=true): %w", err)
	}
	return b.Owns(&schedulingv1alpha3.Workload{}).Owns(&schedulingv1alpha3.PodGroup{}), nil
}

// reconcileWorkloadScheduling keeps the Workload and PodGroup of a gang-scheduled cluster
// (KubernetesWAS gate, label ray.io/gang-scheduling-enabled=true, no autoscaler) in line, as
// KubeRay does: the Workload is immutable, so a resized cluster gets new ones (the PodGroup is
// deleted first, then the Workload; they are created again on the next pass), and a cluster that
// stops asking loses them. Objects of the same names that the cluster does not control are
// never touched: that is an error naming them.
func (r *Reconciler) reconcileWorkloadScheduling(ctx context.Context, s *scope) error {
	if !r.cfg.Enabled(features.KubernetesWAS) {
		return nil
	}
	c := s.cluster
	owner := resources.OwnerReference(c)
	wl := &schedulingv1alpha3.Workload{}
	wlFound, err := r.getOwned(ctx, s, client.ObjectKey{Namespace: c.Namespace, Name: kuberneteswas.WorkloadName(c)}, wl)
	if err != nil {
		return err
	}
	pg := &schedulingv1alpha3.PodGroup{}
	pgFound, err := r.getOwned(ctx, s, client.ObjectKey{Namespace: c.Namespace, Name: kuberneteswas.PodGroupName(c)}, pg)
	if err != nil {
		return err
	}
	if !kuberneteswas.Applies(c) {
		if pgFound {
			return r.deletePodGroup(ctx, s, pg)
		}
		if wlFound && wl.DeletionTimestamp == nil {
			return r.deleteScheduling(ctx, s, wl)
		}
		return nil
	}
	switch {
	case wlFound && wl.DeletionTimestamp != nil:
		// The owned Workload's deletion wakes the cluster through the watch.
		s.blockPods(fmt.Sprintf("waiting for the old Workload %s to be deleted", wl.Name))
		return nil
	case wlFound && kuberneteswas.WorkloadStale(c, wl):
		s.blockPods(fmt.Sprintf("replacing the Workload %s and PodGroup %s of the resized cluster", wl.Name, kuberneteswas.PodGroupName(c)))
		if pgFound {
			return r.deletePodGroup(ctx, s, pg)
		}
		return r.deleteScheduling(ctx, s, wl)
	case !wlFound:
		if err := r.client.Create(ctx, kuberneteswas.BuildWorkload(c, owner)); err != nil {
			return fmt.Errorf("creating Workload %s: %w", kuberneteswas.WorkloadName(c), err)
		}
	}
	switch {
	case pgFound && (pg.DeletionTimestamp != nil || kuberneteswas.PodGroupStale(c, pg)):
		s.blockPods(fmt.Sprintf("replacing the PodGroup %s of the resized cluster", pg.Name))
		return r.deletePodGroup(ctx, s, pg)
	case !pgFound:
		if err := r.client.Create(ctx, kuberneteswas.BuildPodGroup(c, owner)); err != nil {
			return fmt.Errorf("creating PodGroup %s: %w", kuberneteswas.PodGroupName(c), err)
		}
	}
	return nil
}

// getOwned reads obj and reports whether it exists; one the cluster does not control is an
// error.
func (r *Reconciler) getOwned(ctx context.Context, s *scope, key client.ObjectKey, obj client.Object) (bool, error) {
	if err := r.client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("getting %T %s: %w", obj, key.Name, err)
	}
	if !metav1.IsControlledBy(obj, s.cluster) {
		return false, fmt.Errorf("%T %s exists and is not controlled by this RayCluster; rename or delete it", obj, key.Name)
	}
	return true, nil
}

// deletePodGroup removes the protection finalizer (pods of the old group may still exist) and
// deletes the PodGroup; the cluster is looked at again once it is gone.
func (r *Reconciler) deletePodGroup(ctx context.Context, s *scope, pg *schedulingv1alpha3.PodGroup) error {
	if controllerutil.RemoveFinalizer(pg, kuberneteswas.PodGroupProtectionFinalizer) {
		if err := r.client.Update(ctx, pg); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("removing the finalizer of PodGroup %s: %w", pg.Name, err)
		}
	}
	if pg.DeletionTimestamp != nil {
		return nil
	}
	return r.deleteScheduling(ctx, s, pg)
}

func (r *Reconciler) deleteScheduling(ctx context.Context, s *scope, obj client.Object) error {
	uid := obj.GetUID()
	if err := r.client.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
	}
	// The replacement waits until the owned object's deletion is seen through the watch.
	return nil
}

// addWorkloadSchedulingMetadata makes a pod of a gang-scheduled cluster a member of its PodGroup.
func (r *Reconciler) addWorkloadSchedulingMetadata(s *scope, pod *corev1.Pod) {
	if r.cfg.Enabled(features.KubernetesWAS) && kuberneteswas.Applies(s.cluster) {
		kuberneteswas.AddMetadata(s.cluster, pod)
	}
}
