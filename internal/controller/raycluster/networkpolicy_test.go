package raycluster

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"context"

	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// Integration tests of spec.networkPolicy (RayClusterNetworkPolicy gate) and of the alpha fields
// refused without their gate (spec.tlsOptions, spec.historyServerOptions) or in this build (the
// history collector). envtest has no network-policy
// agent: these specs prove the objects, not their enforcement.

// networkPolicyNames returns a function listing the names of the NetworkPolicies in ns, for
// Eventually.
func networkPolicyNames(ns string) func() ([]string, error) {
	return func() ([]string, error) {
		var list networkingv1.NetworkPolicyList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		var out []string
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				out = append(out, p.Name)
			}
		}
		return out, nil
	}
}

func networkPolicyOf(key types.NamespacedName) func() (*networkingv1.NetworkPolicy, error) {
	return func() (*networkingv1.NetworkPolicy, error) {
		var p networkingv1.NetworkPolicy
		err := k8s.Get(context.Background(), key, &p)
		return &p, err
	}
}

// expectSpecRefused waits for RayClusterSpecValid=False and its Warning event, both naming field,
// and checks that no pod was created.
func expectSpecRefused(key types.NamespacedName, field string) {
	GinkgoHelper()
	Eventually(clusterOf(key)).Should(And(
		HaveCondition(rayv1.RayClusterSpecValid, metav1.ConditionFalse, rayv1.InvalidRayClusterSpec),
		WithTransform(conditionMessage(rayv1.RayClusterSpecValid), ContainSubstring(field))),
		"RayClusterSpecValid=False naming %s", field)
	Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeWarning, rayv1.InvalidRayClusterSpec, field), "a Warning event naming %s", field)
	waitReconciled(key)
	Expect(podNames(listPods(key.Namespace, "", ""))).To(BeEmpty(), "pods created for a cluster whose %s is refused", field)
}

var _ = Describe("RayCluster NetworkPolicies", func() {
	It("follow spec.networkPolicy: created, updated, removed with a group and with the field", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "iso").WorkerGroup("small", 1, 0, 10).WorkerGroup("gpu", 1, 0, 10).Obj()
		c.Spec.NetworkPolicy = &rayv1.NetworkPolicyConfig{}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		Eventually(networkPolicyNames(ns)).Should(ConsistOf("iso-head", "iso-workers-small", "iso-workers-gpu"))
		cluster := getCluster(key)

		head, err := networkPolicyOf(types.NamespacedName{Namespace: ns, Name: "iso-head"})()
		Expect(err).NotTo(HaveOccurred())
		Expect(head).To(BeControlledBy(cluster))
		Expect(head.Labels).To(Equal(map[string]string{"ray.io/cluster": "iso", "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"}))
		Expect(head.Spec.PodSelector.MatchLabels).To(Equal(map[string]string{"ray.io/cluster": "iso", "ray.io/node-type": "head"}))
		Expect(head.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}), "the default mode is DenyAll")
		Expect(head.Spec.Ingress).To(HaveLen(1), "only the same-cluster rule")
		Expect(head.Spec.Egress).To(HaveLen(1), "only the same-cluster rule (no DNS rule, as in KubeRay)")
		gpu, err := networkPolicyOf(types.NamespacedName{Namespace: ns, Name: "iso-workers-gpu"})()
		Expect(err).NotTo(HaveOccurred())
		Expect(gpu.Spec.PodSelector.MatchLabels).To(Equal(map[string]string{"ray.io/cluster": "iso", "ray.io/node-type": "worker", "ray.io/group": "gpu"}))
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventCreatedNetworkPolicy, "iso-workers-gpu"), "CreatedNetworkPolicy event")

		// A converged cluster does not rewrite its policies.
		rv := head.ResourceVersion
		waitReconciled(key)
		Expect(networkPolicyOf(client.ObjectKeyFromObject(head))()).To(HaveField("ResourceVersion", rv), "the head policy was rewritten without a change")

		// Mode change and a user rule: the policies are updated in place.
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.NetworkPolicy.Mode = rayv1.NetworkPolicyDenyAllIngress
			c.Spec.NetworkPolicy.Head = &rayv1.RayNodeNetworkPolicy{IngressRules: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}}}},
			}}}
		})
		Eventually(networkPolicyOf(client.ObjectKeyFromObject(head))).Should(And(
			HaveField("Spec.PolicyTypes", Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress})),
			HaveField("Spec.Egress", BeEmpty()),
			HaveField("Spec.Ingress", HaveLen(2)),
		), "the head policy denies only ingress and carries the user rule")
		Eventually(networkPolicyOf(client.ObjectKeyFromObject(gpu))).Should(And(
			HaveField("Spec.PolicyTypes", Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress})),
			HaveField("Spec.Egress", BeEmpty()),
		), "the worker policy denies only ingress")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventUpdatedNetworkPolicy, "iso-head"), "UpdatedNetworkPolicy event")

		// A removed group loses its policy.
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs = c.Spec.WorkerGroupSpecs[:1] })
		Eventually(networkPolicyNames(ns)).Should(ConsistOf("iso-head", "iso-workers-small"))
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventDeletedNetworkPolicy, "iso-workers-gpu"), "DeletedNetworkPolicy event")

		// Removing the field removes every policy; a policy of the namespace the cluster does not
		// control stays.
		create(&networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users-own", Labels: map[string]string{"ray.io/cluster": "iso"}},
			Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
		})
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.NetworkPolicy = nil })
		Eventually(networkPolicyNames(ns)).Should(ConsistOf("users-own"))
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "still ready")
	})

	It("a policy of the same name the cluster does not control is reported, not taken over", func() {
		ns := newNamespace()
		foreign := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clash-head"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			},
		}
		create(foreign)
		c := builders.RayCluster(ns, "clash").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.NetworkPolicy = &rayv1.NetworkPolicyConfig{}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeWarning, EventNetworkPolicyNameCollision, "clash-head"), "a collision event naming the policy")
		waitReconciled(key)
		Expect(podNames(listPods(ns, "", ""))).To(BeEmpty(), "pods started without the isolation that was asked for")
		got, err := networkPolicyOf(client.ObjectKeyFromObject(foreign))()
		Expect(err).NotTo(HaveOccurred())
		Expect(got.OwnerReferences).To(BeEmpty(), "the foreign policy was taken over")
		Expect(got.Spec.PodSelector.MatchLabels).To(Equal(map[string]string{"app": "other"}), "the foreign policy was changed")

		// Once the foreign policy is gone, the cluster gets its own and starts.
		Expect(k8s.Delete(context.Background(), got)).To(Succeed())
		Eventually(networkPolicyOf(client.ObjectKeyFromObject(foreign))).Should(BeControlledBy(getCluster(key)))
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
	})

	It("networkPolicy requires the feature gate", func() {
		setGate(features.RayClusterNetworkPolicy, false)
		ns := newNamespace()
		c := builders.RayCluster(ns, "nogate").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.NetworkPolicy = &rayv1.NetworkPolicyConfig{}
		create(c)
		key := client.ObjectKeyFromObject(c)
		expectSpecRefused(key, "spec.networkPolicy")
		Expect(getCluster(key).Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring(string(features.RayClusterNetworkPolicy)))), "the message names the gate")
		Expect(networkPolicyNames(ns)()).To(BeEmpty(), "policies created with the gate off")
	})

	It("worker group names must be DNS-1123 labels and workerGroups must name groups", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "badgroup").WorkerGroup("Small_1", 1, 0, 10).Obj()
		c.Spec.NetworkPolicy = &rayv1.NetworkPolicyConfig{WorkerGroups: []rayv1.WorkerGroupNetworkPolicy{{GroupName: "missing"}}}
		create(c)
		key := client.ObjectKeyFromObject(c)
		expectSpecRefused(key, "spec.workerGroupSpecs[0].groupName")
		Expect(getCluster(key).Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring("spec.networkPolicy.workerGroups[0].groupName"))),
			"the message names the workerGroups entry without a group")
		Expect(networkPolicyNames(ns)()).To(BeEmpty(), "policies created for an invalid spec")
	})
})

var _ = Describe("RayCluster alpha fields refused", func() {
	It("tlsOptions requires the feature gate", func() {
		setGate(features.RayClusterMTLS, false)
		ns := newNamespace()
		c := builders.RayCluster(ns, "tls").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.TLSOptions = &rayv1.TLSOptions{}
		create(c)
		expectSpecRefused(client.ObjectKeyFromObject(c), "spec.tlsOptions")
	})

	It("historyServerOptions requires the feature gate", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "hist").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.HistoryServerOptions = &rayv1.HistoryServerOptions{CollectorOptions: &rayv1.CollectorOptions{Image: "collector:v1"}}
		create(c)
		key := client.ObjectKeyFromObject(c)
		expectSpecRefused(key, "spec.historyServerOptions")
		Expect(getCluster(key).Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring(string(features.RayClusterHistoryServer)))), "the message names the gate")
	})

	It("the history collector is reported as unsupported with the gate on", func() {
		setGate(features.RayClusterHistoryServer, true)
		ns := newNamespace()
		c := builders.RayCluster(ns, "hist").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.HistoryServerOptions = &rayv1.HistoryServerOptions{CollectorOptions: &rayv1.CollectorOptions{Image: "collector:v1"}}
		create(c)
		key := client.ObjectKeyFromObject(c)
		expectSpecRefused(key, "spec.historyServerOptions.collectorOptions")
		Expect(getCluster(key).Status.Conditions).To(ContainElement(HaveField("Message", ContainSubstring("not supported by rayk8s"))))

		// Removing the field lets the cluster start.
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.HistoryServerOptions = nil })
		Eventually(clusterOf(key)).Should(And(HaveState(rayv1.ClusterStateReady),
			HaveCondition(rayv1.RayClusterSpecValid, metav1.ConditionTrue, rayv1.ValidRayClusterSpec)), "ready once the field is gone")
	})
})
