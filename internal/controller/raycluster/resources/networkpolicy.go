package resources

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// NetworkPolicies of a RayCluster (spec.networkPolicy, KubeRay's RayClusterNetworkPolicy feature):
// one policy for the head and one per worker group, each allowing all traffic between the
// cluster's own pods and denying the rest in the directions the mode names. User rules are
// appended; DNS egress is not added (KubeRay does not assume how DNS is deployed), so a cluster
// that denies egress must allow it itself. See
// https://docs.ray.io/en/latest/cluster/kubernetes/user-guides/network-policy.html

// HeadNetworkPolicyName is the name of the head pod's NetworkPolicy: "<cluster>-head".
func HeadNetworkPolicyName(c *rayv1.RayCluster) string { return c.Name + "-head" }

// WorkerNetworkPolicyName is the name of a worker group's NetworkPolicy:
// "<cluster>-workers-<group>" (which is why the group name must then be a DNS-1123 label).
func WorkerNetworkPolicyName(c *rayv1.RayCluster, group string) string {
	return c.Name + "-workers-" + group
}

// NetworkPolicyLabels are the labels of every NetworkPolicy of the cluster; the controller finds
// the policies to delete by them.
func NetworkPolicyLabels(c *rayv1.RayCluster) map[string]string {
	return map[string]string{
		rayv1.RayClusterLabelKey:                c.Name,
		rayv1.KubernetesApplicationNameLabelKey: rayv1.ApplicationName,
		rayv1.KubernetesCreatedByLabelKey:       rayv1.ComponentName,
	}
}

// BuildNetworkPolicies returns the head policy followed by one policy per worker group, in spec
// order, each controlled by the cluster; nil when spec.networkPolicy is unset.
func BuildNetworkPolicies(c *rayv1.RayCluster) []*networkingv1.NetworkPolicy {
	np := c.Spec.NetworkPolicy
	if np == nil {
		return nil
	}
	mode := np.Mode
	if mode == "" {
		mode = rayv1.NetworkPolicyDenyAll
	}
	out := []*networkingv1.NetworkPolicy{
		networkPolicy(c, HeadNetworkPolicyName(c), rayv1.HeadNode, "", mode, headIngressRules(c), np.Head),
	}
	for i := range c.Spec.WorkerGroupSpecs {
		g := c.Spec.WorkerGroupSpecs[i].GroupName
		out = append(out, networkPolicy(c, WorkerNetworkPolicyName(c, g), rayv1.WorkerNode, g, mode, sameClusterIngress(c), workerRules(np, g)))
	}
	return out
}

// workerRules are the user rules of one group: its workerGroups entry when there is one, else
// the rules for every worker.
func workerRules(np *rayv1.NetworkPolicyConfig, group string) *rayv1.RayNodeNetworkPolicy {
	for i := range np.WorkerGroups {
		if np.WorkerGroups[i].GroupName == group {
			return &rayv1.RayNodeNetworkPolicy{IngressRules: np.WorkerGroups[i].IngressRules, EgressRules: np.WorkerGroups[i].EgressRules}
		}
	}
	return np.Worker
}

func networkPolicy(c *rayv1.RayCluster, name string, nodeType rayv1.RayNodeType, group string, mode rayv1.NetworkPolicyMode,
	baseIngress []networkingv1.NetworkPolicyIngressRule, user *rayv1.RayNodeNetworkPolicy) *networkingv1.NetworkPolicy {
	selector := map[string]string{rayv1.RayClusterLabelKey: c.Name, rayv1.RayNodeTypeLabelKey: string(nodeType)}
	if group != "" {
		selector[rayv1.RayNodeGroupLabelKey] = group
	}
	p := &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: c.Namespace, Labels: NetworkPolicyLabels(c), OwnerReferences: ownerRefs(c),
		},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: selector}},
	}
	// Listing a policy type makes Kubernetes deny whatever no rule of that direction allows, so
	// a direction the mode leaves open gets neither the type nor rules.
	if mode != rayv1.NetworkPolicyDenyAllEgress {
		p.Spec.PolicyTypes = append(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		p.Spec.Ingress = baseIngress
		if user != nil {
			p.Spec.Ingress = append(p.Spec.Ingress, user.IngressRules...)
		}
	}
	if mode != rayv1.NetworkPolicyDenyAllIngress {
		p.Spec.PolicyTypes = append(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{sameClusterPeer(c)}}}
		if user != nil {
			p.Spec.Egress = append(p.Spec.Egress, user.EgressRules...)
		}
	}
	return p
}

// sameClusterPeer selects every pod of the cluster.
func sameClusterPeer(c *rayv1.RayCluster) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{rayv1.RayClusterLabelKey: c.Name}}}
}

// sameClusterIngress allows every port from the cluster's own pods.
func sameClusterIngress(c *rayv1.RayCluster) []networkingv1.NetworkPolicyIngressRule {
	return []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{sameClusterPeer(c)}}}
}

// headIngressRules are the worker rules plus, for a cluster a RayJob made for K8sJobMode, the
// job's submitter pod on the dashboard port: it runs outside the cluster and submits through
// the dashboard. Other modes have no such pod (the sidecar submitter runs inside the head pod).
// The operator itself is not allowed in: platforms that need it add a head ingress rule.
func headIngressRules(c *rayv1.RayCluster) []networkingv1.NetworkPolicyIngressRule {
	rules := sameClusterIngress(c)
	job := owningRayJob(c)
	if job == "" || c.Labels[rayv1.RayJobSubmissionModeLabelKey] != string(rayv1.K8sJobMode) {
		return rules
	}
	tcp := corev1.ProtocolTCP
	port := intstr.FromInt32(paramPortOr(c.Spec.HeadGroupSpec.RayStartParams, paramDashboardPort, DefaultDashboardPort))
	return append(rules, networkingv1.NetworkPolicyIngressRule{
		From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
			rayv1.RayOriginatedFromCRNameLabelKey: job,
			rayv1.RayOriginatedFromCRDLabelKey:    string(rayv1.RayJobCRD),
		}}}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
	})
}

// owningRayJob returns the name of the RayJob controlling the cluster, or "".
func owningRayJob(c *rayv1.RayCluster) string {
	ref := metav1.GetControllerOf(c)
	if ref == nil || ref.Kind != "RayJob" || ref.APIVersion != rayv1.GroupVersion.String() {
		return ""
	}
	return ref.Name
}
