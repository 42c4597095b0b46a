package rayservice

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// suspendState is where the RayService is in KubeRay's two-phase suspend (Suspending, then
// Suspended once its RayClusters and Services are gone).
type suspendState int

const (
	suspendNone suspendState = iota
	// suspendRequested: spec.suspend just became true; the status is cleared and persisted first.
	suspendRequested
	// suspendInProgress: every cluster and Service is being deleted.
	suspendInProgress
	// suspendComplete: everything is gone.
	suspendComplete
	// suspendResumed: spec.suspend went back to false after a completed suspension.
	suspendResumed
)

// reconcileSuspend runs the suspend state machine. While suspending or suspended, nothing else
// runs. Once deletion started it finishes even if spec.suspend is set back to false, so the
// suspension is atomic.
func (r *Reconciler) reconcileSuspend(ctx context.Context, s *scope) (bool, error) {
	conds := s.rs.Status.Conditions
	switch {
	case isTrue(conds, rayv1.RayServiceSuspending):
		done, err := r.deleteEverything(ctx, s)
		if err != nil {
			s.suspend = suspendInProgress
			return true, err
		}
		if done {
			s.suspend = suspendComplete
		} else {
			s.suspend = suspendInProgress
		}
		return true, nil
	case isTrue(conds, rayv1.RayServiceSuspended):
		if s.rs.Spec.Suspend {
			s.suspend = suspendComplete
			return true, nil
		}
		s.suspend = suspendResumed
		return false, nil
	case s.rs.Spec.Suspend:
		s.suspend = suspendRequested
		s.activeName, s.pendingName = "", ""
		return true, nil
	}
	return false, nil
}

// deleteEverything deletes the RayService's clusters and Services. It reports whether none is
// left.
func (r *Reconciler) deleteEverything(ctx context.Context, s *scope) (bool, error) {
	var errs []error
	left := 0
	for _, rc := range s.owned {
		left++
		if rc.DeletionTimestamp.IsZero() {
			errs = append(errs, r.deleteCluster(ctx, s, rc, "the RayService is suspended"))
		}
	}
	for _, name := range []string{resources.OwnerHeadServiceName(s.rs.Name), serveServiceName(s.rs)} {
		svc := &corev1.Service{}
		err := r.client.Get(ctx, client.ObjectKey{Namespace: s.rs.Namespace, Name: name}, svc)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("getting Service %s: %w", name, err))
			continue
		}
		if !metav1.IsControlledBy(svc, s.rs) {
			continue
		}
		left++
		if !svc.DeletionTimestamp.IsZero() {
			continue
		}
		if err := r.client.Delete(ctx, svc); err != nil && !apierrors.IsNotFound(err) {
			s.events.Add(corev1.EventTypeWarning, EventFailedToDeleteService, eventActionDelete, "Failed to delete Service %s: %v", name, err)
			errs = append(errs, fmt.Errorf("deleting Service %s: %w", name, err))
			continue
		}
		s.events.Add(corev1.EventTypeNormal, EventDeletedService, eventActionDelete, "Deleted Service %s (the RayService is suspended)", name)
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	if left > 0 {
		// Deletion events of the clusters and Services bring the RayService back.
		return false, nil
	}
	return true, nil
}

// isTrue reports whether the condition is True.
func isTrue(conds []metav1.Condition, t rayv1.RayServiceConditionType) bool {
	return meta.IsStatusConditionTrue(conds, string(t))
}
