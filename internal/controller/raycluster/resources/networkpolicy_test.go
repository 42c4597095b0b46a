package resources

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// dnsEgress is the rule a DenyAll cluster has to add itself to resolve the head Service.
func dnsEgress() networkingv1.NetworkPolicyEgressRule {
	udp, port := corev1.ProtocolUDP, intstr.FromInt32(53)
	return networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}}}
}

func fromNamespace(ns string) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}}}}
}

// networkPolicyCluster has two worker groups; "gpu" has its own rules.
func networkPolicyCluster(mode rayv1.NetworkPolicyMode) *rayv1.RayCluster {
	c := testCluster()
	gpu := *c.Spec.WorkerGroupSpecs[0].DeepCopy()
	gpu.GroupName = "gpu"
	c.Spec.WorkerGroupSpecs = append(c.Spec.WorkerGroupSpecs, gpu)
	c.Spec.NetworkPolicy = &rayv1.NetworkPolicyConfig{Mode: mode}
	return c
}

func TestNetworkPoliciesUnset(t *testing.T) {
	if got := BuildNetworkPolicies(testCluster()); got != nil {
		t.Fatalf("policies without spec.networkPolicy: %v", got)
	}
}

func TestNetworkPolicyNamesSelectorsAndModes(t *testing.T) {
	for _, tt := range []struct {
		mode        rayv1.NetworkPolicyMode
		wantTypes   []networkingv1.PolicyType
		ingress     bool
		egress      bool
		description string
	}{
		{"", []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, true, true, "unset means DenyAll"},
		{rayv1.NetworkPolicyDenyAll, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, true, true, "DenyAll"},
		{rayv1.NetworkPolicyDenyAllIngress, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, true, false, "DenyAllIngress"},
		{rayv1.NetworkPolicyDenyAllEgress, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, false, true, "DenyAllEgress"},
	} {
		t.Run(tt.description, func(t *testing.T) {
			c := networkPolicyCluster(tt.mode)
			got := BuildNetworkPolicies(c)
			wantNames := []string{"rc-head", "rc-workers-small", "rc-workers-gpu"}
			wantSelectors := []map[string]string{
				{"ray.io/cluster": "rc", "ray.io/node-type": "head"},
				{"ray.io/cluster": "rc", "ray.io/node-type": "worker", "ray.io/group": "small"},
				{"ray.io/cluster": "rc", "ray.io/node-type": "worker", "ray.io/group": "gpu"},
			}
			if len(got) != len(wantNames) {
				t.Fatalf("got %d policies, want %d", len(got), len(wantNames))
			}
			sameCluster := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ray.io/cluster": "rc"}}}
			for i, p := range got {
				if p.Name != wantNames[i] || p.Namespace != "ns" {
					t.Errorf("policy %d is %s/%s, want ns/%s", i, p.Namespace, p.Name, wantNames[i])
				}
				if diff := cmp.Diff(wantSelectors[i], p.Spec.PodSelector.MatchLabels); diff != "" {
					t.Errorf("%s podSelector (-want +got):\n%s", p.Name, diff)
				}
				if diff := cmp.Diff(map[string]string{"ray.io/cluster": "rc", "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"}, p.Labels); diff != "" {
					t.Errorf("%s labels (-want +got):\n%s", p.Name, diff)
				}
				if !metav1.IsControlledBy(p, c) {
					t.Errorf("%s is not controlled by the cluster", p.Name)
				}
				if diff := cmp.Diff(tt.wantTypes, p.Spec.PolicyTypes); diff != "" {
					t.Errorf("%s policyTypes (-want +got):\n%s", p.Name, diff)
				}
				wantIngress := []networkingv1.NetworkPolicyIngressRule(nil)
				if tt.ingress {
					wantIngress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{sameCluster}}}
				}
				if diff := cmp.Diff(wantIngress, p.Spec.Ingress); diff != "" {
					t.Errorf("%s ingress (-want +got):\n%s", p.Name, diff)
				}
				wantEgress := []networkingv1.NetworkPolicyEgressRule(nil)
				if tt.egress {
					wantEgress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{sameCluster}}}
				}
				if diff := cmp.Diff(wantEgress, p.Spec.Egress); diff != "" {
					t.Errorf("%s egress (-want +got):\n%s", p.Name, diff)
				}
			}
		})
	}
}

func TestNetworkPolicyUserRules(t *testing.T) {
	c := networkPolicyCluster(rayv1.NetworkPolicyDenyAll)
	c.Spec.NetworkPolicy.Head = &rayv1.RayNodeNetworkPolicy{IngressRules: []networkingv1.NetworkPolicyIngressRule{fromNamespace("monitoring")},
		EgressRules: []networkingv1.NetworkPolicyEgressRule{dnsEgress()}}
	c.Spec.NetworkPolicy.Worker = &rayv1.RayNodeNetworkPolicy{EgressRules: []networkingv1.NetworkPolicyEgressRule{dnsEgress()}}
	c.Spec.NetworkPolicy.WorkerGroups = []rayv1.WorkerGroupNetworkPolicy{{GroupName: "gpu", IngressRules: []networkingv1.NetworkPolicyIngressRule{fromNamespace("ingest")}}}
	got := BuildNetworkPolicies(c)
	counts := func(p *networkingv1.NetworkPolicy) string {
		return fmt.Sprintf("%d ingress, %d egress", len(p.Spec.Ingress), len(p.Spec.Egress))
	}
	// Head: base + monitoring in, base + DNS out. small: the worker rules. gpu: its own rules
	// replace the worker rules (so no DNS egress).
	for i, want := range []string{"2 ingress, 2 egress", "1 ingress, 2 egress", "2 ingress, 1 egress"} {
		if counts(got[i]) != want {
			t.Errorf("%s has %s, want %s", got[i].Name, counts(got[i]), want)
		}
	}
	if diff := cmp.Diff(fromNamespace("monitoring"), got[0].Spec.Ingress[1]); diff != "" {
		t.Errorf("head user ingress rule not appended after the base rule (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fromNamespace("ingest"), got[2].Spec.Ingress[1]); diff != "" {
		t.Errorf("gpu group ingress rule (-want +got):\n%s", diff)
	}
}

func TestNetworkPolicyRayJobSubmitter(t *testing.T) {
	owned := func(mode rayv1.JobSubmissionMode) *rayv1.RayCluster {
		c := networkPolicyCluster(rayv1.NetworkPolicyDenyAll)
		c.Labels = map[string]string{rayv1.RayJobSubmissionModeLabelKey: string(mode)}
		c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "ray.io/v1", Kind: "RayJob", Name: "train", UID: "u", Controller: ptr.To(true)}}
		c.Spec.HeadGroupSpec.RayStartParams["dashboard-port"] = "9265"
		return c
	}
	head := BuildNetworkPolicies(owned(rayv1.K8sJobMode))[0]
	if len(head.Spec.Ingress) != 2 {
		t.Fatalf("K8sJobMode head ingress has %d rules, want the base rule and the submitter rule", len(head.Spec.Ingress))
	}
	tcp, port := corev1.ProtocolTCP, intstr.FromInt32(9265)
	want := networkingv1.NetworkPolicyIngressRule{
		From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
			"ray.io/originated-from-cr-name": "train", "ray.io/originated-from-crd": "RayJob"}}}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
	}
	if diff := cmp.Diff(want, head.Spec.Ingress[1]); diff != "" {
		t.Errorf("submitter rule (-want +got):\n%s", diff)
	}
	for _, mode := range []rayv1.JobSubmissionMode{rayv1.HTTPMode, rayv1.SidecarMode, rayv1.InteractiveMode} {
		if n := len(BuildNetworkPolicies(owned(mode))[0].Spec.Ingress); n != 1 {
			t.Errorf("%s head ingress has %d rules, want only the base rule (no submitter pod)", mode, n)
		}
	}
	if n := len(BuildNetworkPolicies(owned(rayv1.K8sJobMode))[1].Spec.Ingress); n != 1 {
		t.Errorf("worker ingress has %d rules, want only the base rule", n)
	}
}

func TestNetworkPolicyGolden(t *testing.T) {
	c := networkPolicyCluster(rayv1.NetworkPolicyDenyAll)
	c.Labels = map[string]string{rayv1.RayJobSubmissionModeLabelKey: string(rayv1.K8sJobMode)}
	c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "ray.io/v1", Kind: "RayJob", Name: "train", UID: "u", Controller: ptr.To(true)}}
	c.Spec.NetworkPolicy.Head = &rayv1.RayNodeNetworkPolicy{IngressRules: []networkingv1.NetworkPolicyIngressRule{fromNamespace("monitoring")},
		EgressRules: []networkingv1.NetworkPolicyEgressRule{dnsEgress()}}
	c.Spec.NetworkPolicy.Worker = &rayv1.RayNodeNetworkPolicy{EgressRules: []networkingv1.NetworkPolicyEgressRule{dnsEgress()}}
	c.Spec.NetworkPolicy.WorkerGroups = []rayv1.WorkerGroupNetworkPolicy{{GroupName: "gpu", IngressRules: []networkingv1.NetworkPolicyIngressRule{fromNamespace("ingest")}}}
	var buf bytes.Buffer
	buf.WriteString("# NetworkPolicies of a DenyAll RayCluster made by a K8sJobMode RayJob, with user rules.\n")
	buf.WriteString("# Regenerate with: go test ./internal/controller/raycluster/resources/ -run TestNetworkPolicyGolden -update\n")
	for _, p := range BuildNetworkPolicies(c) {
		b, err := cleanYAML(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&buf, "---\n%s", b)
	}
	golden := filepath.Join("testdata", "networkpolicy", "deny-all-rayjob.yaml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("missing golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("NetworkPolicies differ from %s (-golden +got):\n%s", golden, diff)
	}
}
