package raycluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// Event reasons of the ingress phase.
const (
	EventCreatedIngress       = "CreatedIngress"
	EventUpdatedIngress       = "UpdatedIngress"
	EventFailedToApplyIngress = "FailedToCreateIngress"
)

// reconcileIngress server-side-applies the dashboard Ingress when enableIngress is set and the
// observed Ingress lacks something the builder wants. Comparing first keeps a converged cluster
// free of API writes; an Ingress left behind after enableIngress is turned off stays (KubeRay
// does the same).
func (r *Reconciler) reconcileIngress(ctx context.Context, s *scope) error {
	desired := resources.BuildIngress(s.cluster)
	if desired == nil {
		return nil
	}
	if err := ensureControllerRef(s.cluster, desired, r.client); err != nil {
		return err
	}
	var observed *networkingv1.Ingress
	for i := range s.ingresses {
		if s.ingresses[i].Name == desired.Name {
			observed = &s.ingresses[i]
		}
	}
	if observed != nil && covers(observed.ObjectMeta, desired.ObjectMeta) && apiequality.Semantic.DeepDerivative(desired.Spec, observed.Spec) {
		return nil
	}
	if err := reconcilekit.Apply(ctx, r.client, FieldManager, desired); err != nil {
		s.events.Add(corev1.EventTypeWarning, EventFailedToApplyIngress, "Update", "Failed to apply ingress %s: %v", desired.Name, err)
		return fmt.Errorf("applying ingress %s: %w", desired.Name, err)
	}
	if observed == nil {
		s.events.Add(corev1.EventTypeNormal, EventCreatedIngress, "Create", "Created ingress %s", desired.Name)
	} else {
		s.events.Add(corev1.EventTypeNormal, EventUpdatedIngress, "Update", "Updated ingress %s", desired.Name)
	}
	return nil
}

// covers reports whether observed carries every label and annotation desired sets.
func covers(observed, desired metav1.ObjectMeta) bool {
	for k, v := range desired.Labels {
		if observed.Labels[k] != v {
			return false
		}
	}
	for k, v := range desired.Annotations {
		if observed.Annotations[k] != v {
			return false
		}
	}
	return true
}
