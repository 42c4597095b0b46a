package raycluster

import (
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Event reasons of the autoscaler RBAC phase.
const (
	EventCreatedServiceAccount           = "CreatedServiceAccount"
	EventFailedToCreateServiceAccount    = "FailedToCreateServiceAccount"
	EventAutoscalerServiceAccountMissing = "AutoscalerServiceAccountNotFound"
	EventCreatedRole                     = "CreatedRole"
	EventFailedToCreateRole              = "FailedToCreateRole"
	EventCreatedRoleBinding              = "CreatedRoleBinding"
	EventFailedToCreateRoleBinding       = "FailedToCreateRoleBinding"
)

// reconcileAutoscalerRBAC creates the ServiceAccount, Role and RoleBinding the autoscaler sidecar
// needs. They are created once and never updated (as in KubeRay). A ServiceAccount named in the
// head template must already exist: the operator never creates an account the user named.
func (r *Reconciler) reconcileAutoscalerRBAC(ctx context.Context, s *scope) error {
	c := s.cluster
	if !autoscalingEnabled(c) {
		return nil
	}
	if name := c.Spec.HeadGroupSpec.Template.Spec.ServiceAccountName; name != "" {
		var sa corev1.ServiceAccount
		// A user's account is outside the manager's cache (it holds only the operator's objects).
		if err := r.reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &sa); err != nil {
			if apierrors.IsNotFound(err) {
				s.events.Add(corev1.EventTypeWarning, EventAutoscalerServiceAccountMissing, "Reconcile",
					"Service account %s named by the head pod template does not exist", name)
			}
			return fmt.Errorf("getting autoscaler service account %s: %w", name, err)
		}
	} else if err := r.createOnce(ctx, s, resources.BuildAutoscalerServiceAccount(c), &corev1.ServiceAccount{},
		EventCreatedServiceAccount, EventFailedToCreateServiceAccount); err != nil {
		return err
	}
	if err := r.createOnce(ctx, s, resources.BuildAutoscalerRole(c), &rbacv1.Role{}, EventCreatedRole, EventFailedToCreateRole); err != nil {
		return err
	}
	return r.createOnce(ctx, s, resources.BuildAutoscalerRoleBinding(c), &rbacv1.RoleBinding{}, EventCreatedRoleBinding, EventFailedToCreateRoleBinding)
}

// createOnce creates desired unless an object of its name exists in the cache.
func (r *Reconciler) createOnce(ctx context.Context, s *scope, desired, observed client.Object, okReason, failReason string) error {
	if desired == nil || reflect.ValueOf(desired).IsNil() {
		return fmt.Errorf("the builder of %T returned nothing", observed)
	}
	err := r.client.Get(ctx, client.ObjectKeyFromObject(desired), observed)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting %T %s: %w", observed, desired.GetName(), err)
	}
	if err := ensureControllerRef(s.cluster, desired, r.client); err != nil {
		return err
	}
	if err := r.client.Create(ctx, desired); err != nil && !apierrors.IsAlreadyExists(err) {
		s.events.Add(corev1.EventTypeWarning, failReason, "Create", "Failed to create %s: %v", desired.GetName(), err)
		return fmt.Errorf("creating %T %s: %w", desired, desired.GetName(), err)
	}
	s.events.Add(corev1.EventTypeNormal, okReason, "Create", "Created %s", desired.GetName())
	return nil
}
