package mtls

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// The cert-manager API the chain is made of.
var (
	GroupVersion    = schema.GroupVersion{Group: "cert-manager.io", Version: "v1"}
	IssuerKind      = GroupVersion.WithKind("Issuer")
	CertificateKind = GroupVersion.WithKind("Certificate")
)

// Names of the chain's objects, KubeRay's.
func SelfSignedIssuerName(cluster string) string { return "ray-selfsigned-issuer-" + cluster }

// CAIssuerName names the Issuer that signs the head's and workers' certificates.
func CAIssuerName(cluster string) string { return "ray-ca-issuer-" + cluster }

// CACertificateName names the cluster's CA Certificate.
func CACertificateName(cluster string) string { return "ray-ca-certificate-" + cluster }

// CASecretName is the Secret of the CA's key pair: "<cluster>-ca-secret-<first 8 of the UID>",
// so that a cluster recreated under the same name never signs with its predecessor's CA.
func CASecretName(cluster string, uid types.UID) string {
	u := string(uid)
	if len(u) > 8 {
		u = u[:8]
	}
	return cluster + "-ca-secret-" + u
}

// CertificateName names the leaf Certificate of one node role.
func CertificateName(cluster string, nodeType rayv1.RayNodeType) string {
	if nodeType == rayv1.HeadNode {
		return "ray-head-cert-" + cluster
	}
	return "ray-worker-cert-" + cluster
}

// SecretName is the Secret cert-manager writes a node role's certificate to (mounted as ray-tls).
func SecretName(c *rayv1.RayCluster, nodeType rayv1.RayNodeType) string {
	return resources.TLSSecretName(c, nodeType)
}
