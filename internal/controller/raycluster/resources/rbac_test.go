package resources

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/utils/ptr"
)

func TestAutoscalerRBAC(t *testing.T) {
	c := testCluster()
	if BuildAutoscalerServiceAccount(c) != nil || BuildAutoscalerRole(c) != nil || BuildAutoscalerRoleBinding(c) != nil {
		t.Fatalf("RBAC built with autoscaling off")
	}
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)
	wantLabels := map[string]string{"ray.io/cluster": "rc", "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"}

	sa := BuildAutoscalerServiceAccount(c)
	if sa == nil || sa.Name != "rc" || sa.Namespace != "ns" || len(sa.OwnerReferences) != 1 {
		t.Fatalf("service account = %+v", sa)
	}
	if diff := cmp.Diff(wantLabels, sa.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	role := BuildAutoscalerRole(c)
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/resize"}, Verbs: []string{"patch"}},
		{APIGroups: []string{"ray.io"}, Resources: []string{"rayclusters"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if diff := cmp.Diff(wantRules, role.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if role.Name != "rc" || role.Namespace != "ns" {
		t.Errorf("role = %s/%s", role.Namespace, role.Name)
	}

	rb := BuildAutoscalerRoleBinding(c)
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "rc", Namespace: "ns"}}
	if diff := cmp.Diff(wantSubjects, rb.Subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "rc"}, rb.RoleRef); diff != "" {
		t.Errorf("roleRef (-want +got):\n%s", diff)
	}

	// A service account named in the head template is the user's: not built, but bound.
	c.Spec.HeadGroupSpec.Template.Spec.ServiceAccountName = "user-sa"
	if sa := BuildAutoscalerServiceAccount(c); sa != nil {
		t.Errorf("service account built although the template names one: %+v", sa)
	}
	if got := BuildAutoscalerRoleBinding(c).Subjects[0].Name; got != "user-sa" {
		t.Errorf("subject = %q, want user-sa", got)
	}

	// Long names are clipped to 50 characters, keeping the end.
	c = testCluster()
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)
	c.Name = "a" + strings.Repeat("b", 52)
	if got := BuildAutoscalerRole(c).Name; got != strings.Repeat("b", 50) {
		t.Errorf("clipped name = %q", got)
	}
	if got := BuildHeadPod(c, testOptions()).Spec.ServiceAccountName; got != BuildAutoscalerServiceAccount(c).Name {
		t.Errorf("head SA %q does not match the built SA", got)
	}
}
