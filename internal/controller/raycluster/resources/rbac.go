package resources

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// BuildAutoscalerServiceAccount builds the ServiceAccount "<cluster>" the autoscaler sidecar runs
// as. It returns nil when autoscaling is off or when the head template names its own service
// account (which the user must then create).
func BuildAutoscalerServiceAccount(c *rayv1.RayCluster) *corev1.ServiceAccount {
	if !AutoscalingEnabled(c) || c.Spec.HeadGroupSpec.Template.Spec.ServiceAccountName != "" {
		return nil
	}
	return &corev1.ServiceAccount{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            HeadServiceAccountName(c),
			Namespace:       c.Namespace,
			Labels:          operatorLabels(c.Name),
			OwnerReferences: ownerRefs(c),
		},
	}
}

// BuildAutoscalerRole builds the Role that lets the autoscaler read and patch the cluster's pods and
// patch the RayCluster's replicas. It returns nil when autoscaling is off.
func BuildAutoscalerRole(c *rayv1.RayCluster) *rbacv1.Role {
	if !AutoscalingEnabled(c) {
		return nil
	}
	return &rbacv1.Role{
		TypeMeta: metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            AutoscalerRBACName(c),
			Namespace:       c.Namespace,
			Labels:          operatorLabels(c.Name),
			OwnerReferences: ownerRefs(c),
		},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods/resize"}, Verbs: []string{"patch"}},
			{APIGroups: []string{rayv1.GroupVersion.Group}, Resources: []string{"rayclusters"}, Verbs: []string{"get", "patch"}},
			// Beyond KubeRay's Role: our autoscaler reports each scaling decision as an Event.
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		},
	}
}

// BuildAutoscalerRoleBinding binds the autoscaler Role to the head's service account. It returns
// nil when autoscaling is off.
func BuildAutoscalerRoleBinding(c *rayv1.RayCluster) *rbacv1.RoleBinding {
	if !AutoscalingEnabled(c) {
		return nil
	}
	return &rbacv1.RoleBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            AutoscalerRBACName(c),
			Namespace:       c.Namespace,
			Labels:          operatorLabels(c.Name),
			OwnerReferences: ownerRefs(c),
		},
		Subjects: []rbacv1.Subject{{
			Kind:      rbacv1.ServiceAccountKind,
			Name:      HeadServiceAccountName(c),
			Namespace: c.Namespace,
		}},
		RoleRef: rbacv1.RoleRef{
			APIGroup: rbacv1.GroupName,
			Kind:     "Role",
			Name:     AutoscalerRBACName(c),
		},
	}
}

// BuildAuthSecret builds the Secret "<cluster>" holding the auth token under key "auth_token". The
// caller generates the token (builders use no randomness). It returns nil when token
// authentication is off, uses Kubernetes tokens, or names a user-provided Secret.
func BuildAuthSecret(c *rayv1.RayCluster, token string) *corev1.Secret {
	if !UsesAuthTokenSecret(c) || (c.Spec.AuthOptions.SecretName != nil && *c.Spec.AuthOptions.SecretName != "") {
		return nil
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            AuthSecretName(c),
			Namespace:       c.Namespace,
			Labels:          operatorLabels(c.Name),
			OwnerReferences: ownerRefs(c),
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{AuthTokenSecretKey: []byte(token)},
	}
}
