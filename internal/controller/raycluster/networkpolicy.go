package raycluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// Event reasons of the NetworkPolicy phase (KubeRay's strings).
const (
	EventCreatedNetworkPolicy        = "CreatedNetworkPolicy"
	EventUpdatedNetworkPolicy        = "UpdatedNetworkPolicy"
	EventDeletedNetworkPolicy        = "DeletedNetworkPolicy"
	EventFailedToCreateNetworkPolicy = "FailedToCreateNetworkPolicy"
	EventFailedToUpdateNetworkPolicy = "FailedToUpdateNetworkPolicy"
	EventFailedToDeleteNetworkPolicy = "FailedToDeleteNetworkPolicy"
	EventNetworkPolicyNameCollision  = "NetworkPolicyNameCollision"
)

// reconcileNetworkPolicies keeps the cluster's NetworkPolicies (RayClusterNetworkPolicy gate) in
// line with spec.networkPolicy: the head's and one per worker group are server-side applied when
// the observed object lacks something the builder wants, and policies of this cluster nobody
// wants any more (the field was removed, or a group was) are deleted. A policy of the same name
// that another object controls is never taken over: that is reported and the phase fails, since
// the cluster would otherwise run without the isolation that was asked for. With the gate off
// nothing is done (validateCluster refuses spec.networkPolicy then).
func (r *Reconciler) reconcileNetworkPolicies(ctx context.Context, s *scope) error {
	if !r.cfg.Enabled(features.RayClusterNetworkPolicy) {
		return nil
	}
	c := s.cluster
	var list networkingv1.NetworkPolicyList
	if err := r.client.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{rayv1.RayClusterLabelKey: c.Name}); err != nil {
		return fmt.Errorf("listing network policies: %w", err)
	}
	observed := map[string]*networkingv1.NetworkPolicy{}
	for i := range list.Items {
		observed[list.Items[i].Name] = &list.Items[i]
	}
	// One event per reason and reconcile: the events API folds events of the same reason into
	// one series anyway, keeping only the first note.
	done := podEvents{}
	defer func() {
		for _, e := range []struct{ reason, action, verb string }{
			{EventCreatedNetworkPolicy, "Create", "Created"},
			{EventUpdatedNetworkPolicy, "Update", "Updated"},
			{EventDeletedNetworkPolicy, "Delete", "Deleted"},
		} {
			if names := done[e.reason]; len(names) > 0 {
				s.events.Add(corev1.EventTypeNormal, e.reason, e.action, "%s NetworkPolicies %s", e.verb, listNames(names))
			}
		}
	}()
	wanted := map[string]bool{}
	for _, desired := range resources.BuildNetworkPolicies(c) {
		wanted[desired.Name] = true
		reason, err := r.applyNetworkPolicy(ctx, s, desired, observed[desired.Name])
		if err != nil {
			return err
		}
		if reason != "" {
			done.add(reason, desired.Name)
		}
	}
	for _, p := range list.Items {
		if wanted[p.Name] || !metav1.IsControlledBy(&p, c) || p.DeletionTimestamp != nil {
			continue
		}
		if err := r.client.Delete(ctx, &p, client.Preconditions{UID: &p.UID}); err != nil && !apierrors.IsNotFound(err) {
			s.events.Add(corev1.EventTypeWarning, EventFailedToDeleteNetworkPolicy, "Delete", "Failed to delete NetworkPolicy %s: %v", p.Name, err)
			return fmt.Errorf("deleting network policy %s: %w", p.Name, err)
		}
		done.add(EventDeletedNetworkPolicy, p.Name)
	}
	return nil
}

// applyNetworkPolicy brings one policy in line and returns the reason of the event to report
// ("" when nothing was written).
func (r *Reconciler) applyNetworkPolicy(ctx context.Context, s *scope, desired, observed *networkingv1.NetworkPolicy) (string, error) {
	c := s.cluster
	if observed == nil {
		// The list selected by the cluster label; a policy of the same name without it is
		// found by name.
		var other networkingv1.NetworkPolicy
		err := r.client.Get(ctx, client.ObjectKeyFromObject(desired), &other)
		switch {
		case err == nil:
			observed = &other
		case !apierrors.IsNotFound(err):
			return "", fmt.Errorf("getting network policy %s: %w", desired.Name, err)
		}
	}
	if observed != nil && !metav1.IsControlledBy(observed, c) {
		s.events.Add(corev1.EventTypeWarning, EventNetworkPolicyNameCollision, "Validate",
			"NetworkPolicy %s already exists and is not controlled by this RayCluster; spec.networkPolicy is not applied until it is renamed or deleted", desired.Name)
		return "", fmt.Errorf("network policy %s exists and is controlled by another object", desired.Name)
	}
	if observed != nil && covers(observed.ObjectMeta, desired.ObjectMeta) && networkPolicySpecCovered(desired.Spec, observed.Spec) {
		return "", nil
	}
	if err := reconcilekit.Apply(ctx, r.client, FieldManager, desired); err != nil {
		reason := EventFailedToUpdateNetworkPolicy
		if observed == nil {
			reason = EventFailedToCreateNetworkPolicy
		}
		s.events.Add(corev1.EventTypeWarning, reason, "Update", "Failed to apply NetworkPolicy %s: %v", desired.Name, err)
		return "", fmt.Errorf("applying network policy %s: %w", desired.Name, err)
	}
	if observed == nil {
		return EventCreatedNetworkPolicy, nil
	}
	return EventUpdatedNetworkPolicy, nil
}

// networkPolicySpecCovered reports whether observed already is desired, up to what the API
// server defaults (a port's protocol). Rule lists must match in length: an extra rule left over
// from an earlier spec opens traffic the spec no longer allows.
func networkPolicySpecCovered(desired, observed networkingv1.NetworkPolicySpec) bool {
	return len(desired.Ingress) == len(observed.Ingress) && len(desired.Egress) == len(observed.Egress) &&
		len(desired.PolicyTypes) == len(observed.PolicyTypes) &&
		apiequality.Semantic.DeepDerivative(desired, observed)
}
