package raycluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
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
	if err := apply(ctx, r.client, desired); err != nil {
		s.event(corev1.EventTypeWarning, EventFailedToApplyIngress, "Update", "Failed to apply ingress %s: %v", desired.Name, err)
		return fmt.Errorf("applying ingress %s: %w", desired.Name, err)
	}
	if observed == nil {
		s.event(corev1.EventTypeNormal, EventCreatedIngress, "Create", "Created ingress %s", desired.Name)
	} else {
		s.event(corev1.EventTypeNormal, EventUpdatedIngress, "Update", "Updated ingress %s", desired.Name)
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

// apply server-side-applies a typed object with the controller's field manager, taking over
// fields other managers set.
func apply(ctx context.Context, c client.Client, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Errorf("looking up kind of %T: %w", obj, err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "metadata", "resourceVersion")
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership)
}
