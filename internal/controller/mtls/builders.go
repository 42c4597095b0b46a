package mtls

import (
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Lifetimes, KubeRay's: the CA lives about ten years, leaf certificates 90 days and are renewed
// 15 days before they expire. Ray reads its certificates once at start, so a renewed leaf takes
// effect when a pod restarts.
const (
	caDuration      = 3650 * 24 * time.Hour
	caRenewBefore   = 30 * 24 * time.Hour
	leafDuration    = 2160 * time.Hour
	leafRenewBefore = 360 * time.Hour
	caKeySize       = 4096
	loopbackIP      = "127.0.0.1"
)

// Chain is every cert-manager object of one cluster, in the order they depend on each other.
type Chain struct {
	SelfSignedIssuer  *unstructured.Unstructured
	CACertificate     *unstructured.Unstructured
	CAIssuer          *unstructured.Unstructured
	HeadCertificate   *unstructured.Unstructured
	WorkerCertificate *unstructured.Unstructured
}

// Objects lists the chain in creation order.
func (ch Chain) Objects() []*unstructured.Unstructured {
	return []*unstructured.Unstructured{ch.SelfSignedIssuer, ch.CACertificate, ch.CAIssuer, ch.HeadCertificate, ch.WorkerCertificate}
}

// PodIPs are the IPs the leaf certificates must list, by role (pods that are not terminating and
// have an IP).
type PodIPs struct {
	Head    []string
	Workers []string
}

// BuildChain returns the cert-manager objects of c. The head certificate names localhost and the
// head Service's FQDN and lists the head pods' IPs; the worker certificate, shared by every
// worker, names localhost and lists the workers' IPs; both always list 127.0.0.1. Workers dial
// the head by its Service name, the head dials workers by pod IP.
func BuildChain(c *rayv1.RayCluster, ips PodIPs, o resources.Options) Chain {
	return Chain{
		SelfSignedIssuer: issuer(c, SelfSignedIssuerName(c.Name), "selfsigned-issuer", map[string]any{"selfSigned": map[string]any{}}),
		CACertificate: certificate(c, CACertificateName(c.Name), "ca-certificate", map[string]any{
			"secretName":  CASecretName(c.Name, c.UID),
			"isCA":        true,
			"commonName":  "ray-ca-" + c.Name,
			"privateKey":  map[string]any{"algorithm": "RSA", "size": int64(caKeySize)},
			"duration":    duration(caDuration),
			"renewBefore": duration(caRenewBefore),
			"usages":      []any{"cert sign", "crl sign"},
			"issuerRef":   issuerRef(SelfSignedIssuerName(c.Name)),
		}),
		CAIssuer:          issuer(c, CAIssuerName(c.Name), "ca-issuer", map[string]any{"ca": map[string]any{"secretName": CASecretName(c.Name, c.UID)}}),
		HeadCertificate:   leaf(c, rayv1.HeadNode, "head-certificate", []string{"localhost", resources.HeadServiceFQDN(c, o)}, ips.Head),
		WorkerCertificate: leaf(c, rayv1.WorkerNode, "worker-certificate", []string{"localhost"}, ips.Workers),
	}
}

func leaf(c *rayv1.RayCluster, nodeType rayv1.RayNodeType, component string, dnsNames, ips []string) *unstructured.Unstructured {
	return certificate(c, CertificateName(c.Name, nodeType), component, map[string]any{
		"secretName":  SecretName(c, nodeType),
		"duration":    duration(leafDuration),
		"renewBefore": duration(leafRenewBefore),
		"dnsNames":    strings(sets.List(sets.New(dnsNames...))),
		"ipAddresses": strings(NormalizeIPs(ips)),
		"usages":      []any{"digital signature", "key encipherment", "server auth", "client auth"},
		"issuerRef":   issuerRef(CAIssuerName(c.Name)),
	})
}

// NormalizeIPs returns ips sorted, without duplicates and empties, with 127.0.0.1 added: what
// a leaf certificate lists.
func NormalizeIPs(ips []string) []string {
	s := sets.New(ips...)
	s.Delete("")
	s.Insert(loopbackIP)
	return sets.List(s)
}

func issuer(c *rayv1.RayCluster, name, component string, spec map[string]any) *unstructured.Unstructured {
	u := object(c, IssuerKind.Kind, name, component)
	u.Object["spec"] = spec
	return u
}

func certificate(c *rayv1.RayCluster, name, component string, spec map[string]any) *unstructured.Unstructured {
	u := object(c, CertificateKind.Kind, name, component)
	u.Object["spec"] = spec
	return u
}

func object(c *rayv1.RayCluster, kind, name, component string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(GroupVersion.String())
	u.SetKind(kind)
	u.SetName(name)
	u.SetNamespace(c.Namespace)
	u.SetLabels(Labels(c.Name, component))
	u.SetOwnerReferences([]metav1.OwnerReference{resources.OwnerReference(c)})
	return u
}

// Labels are the labels of the chain's objects, KubeRay's.
func Labels(cluster, component string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "kuberay",
		"app.kubernetes.io/created-by": "kuberay-operator",
		"app.kubernetes.io/component":  component,
		rayv1.RayClusterLabelKey:       cluster,
	}
}

func issuerRef(name string) map[string]any {
	return map[string]any{"name": name, "kind": IssuerKind.Kind, "group": GroupVersion.Group}
}

func duration(d time.Duration) string { return metav1.Duration{Duration: d}.Duration.String() }

func strings(s []string) []any {
	out := make([]any, len(s))
	for i, v := range slices.Clone(s) {
		out[i] = v
	}
	return out
}
