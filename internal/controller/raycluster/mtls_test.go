package raycluster

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/mtls"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"
)

// Integration tests of spec.tlsOptions (RayClusterMTLS gate) with cert-manager's CRDs installed.
// envtest runs no cert-manager: issueCertificate plays it, writing the Secret and the Ready
// condition cert-manager would.

func certManagerObject(gvk schema.GroupVersionKind, ns, name string) func() (*unstructured.Unstructured, error) {
	return func() (*unstructured.Unstructured, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, u)
		return u, err
	}
}

func certificateOf(ns, name string) func() (*unstructured.Unstructured, error) {
	return certManagerObject(mtls.CertificateKind, ns, name)
}

func specField(path ...string) func(*unstructured.Unstructured) any {
	return func(u *unstructured.Unstructured) any {
		v, _, _ := unstructured.NestedFieldCopy(u.Object, append([]string{"spec"}, path...)...)
		return v
	}
}

// issueCertificate does what cert-manager does once it signed a Certificate: it writes the key
// pair to spec.secretName and sets Ready=True at the certificate's current generation.
func issueCertificate(ns, name string) {
	GinkgoHelper()
	cert, err := certificateOf(ns, name)()
	Expect(err).NotTo(HaveOccurred(), "getting certificate %s", name)
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secretName}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("crt"), "tls.key": []byte("key"), "ca.crt": []byte("ca")}}
	if err := k8s.Create(context.Background(), secret); err != nil {
		Expect(isAlreadyExists(err)).To(BeTrue(), "creating secret %s: %v", secretName, err)
	}
	Expect(unstructured.SetNestedSlice(cert.Object, []any{map[string]any{
		"type": "Ready", "status": "True", "reason": "Ready", "message": "issued",
		"observedGeneration": cert.GetGeneration(), "lastTransitionTime": metav1.Now().UTC().Format("2006-01-02T15:04:05Z"),
	}}, "status", "conditions")).To(Succeed())
	Expect(k8s.Status().Update(context.Background(), cert)).To(Succeed(), "marking certificate %s ready", name)
}

func tlsCluster(ns, name string) *rayv1.RayCluster {
	c := builders.RayCluster(ns, name).WorkerGroup("small", 2, 0, 10).Obj()
	c.Spec.TLSOptions = &rayv1.TLSOptions{Enabled: ptr.To(true)}
	return c
}

var _ = Describe("RayCluster mTLS", func() {
	It("builds the cert-manager chain, starts pods once it is issued, and keeps the IP SANs on the pods", func() {
		ns := newNamespace()
		c := tlsCluster(ns, "mt")
		create(c)
		key := client.ObjectKeyFromObject(c)
		cluster := getCluster(key)

		By("the issuers and certificates, controlled by the cluster")
		for _, o := range []struct {
			gvk  schema.GroupVersionKind
			name string
		}{
			{mtls.IssuerKind, "ray-selfsigned-issuer-mt"}, {mtls.IssuerKind, "ray-ca-issuer-mt"},
			{mtls.CertificateKind, "ray-ca-certificate-mt"}, {mtls.CertificateKind, "ray-head-cert-mt"}, {mtls.CertificateKind, "ray-worker-cert-mt"},
		} {
			Eventually(certManagerObject(o.gvk, ns, o.name)).Should(And(BeControlledBy(cluster),
				WithTransform(func(u *unstructured.Unstructured) string { return u.GetLabels()[rayv1.RayClusterLabelKey] }, Equal("mt"))), "%s %s", o.gvk.Kind, o.name)
		}
		caSecret := "mt-ca-secret-" + string(cluster.UID)[:8]
		Expect(certificateOf(ns, "ray-ca-certificate-mt")()).To(And(
			WithTransform(specField("isCA"), BeTrue()),
			WithTransform(specField("secretName"), Equal(caSecret)),
			WithTransform(specField("issuerRef", "name"), Equal("ray-selfsigned-issuer-mt"))))
		Expect(certManagerObject(mtls.IssuerKind, ns, "ray-ca-issuer-mt")()).To(WithTransform(specField("ca", "secretName"), Equal(caSecret)))
		Expect(certificateOf(ns, "ray-head-cert-mt")()).To(And(
			WithTransform(specField("secretName"), Equal("ray-head-secret-mt")),
			WithTransform(specField("dnsNames"), ConsistOf("localhost", fmt.Sprintf("mt-head-svc.%s.svc.cluster.local", ns))),
			WithTransform(specField("ipAddresses"), ConsistOf("127.0.0.1")),
			WithTransform(specField("usages"), ConsistOf("digital signature", "key encipherment", "server auth", "client auth")),
			WithTransform(specField("issuerRef", "name"), Equal("ray-ca-issuer-mt"))))

		By("no pod before cert-manager issued the certificates")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventMTLSCertsNotReady, "ray-head-cert-mt"))
		waitReconciled(key)
		Expect(listPods(ns, "", "")).To(BeEmpty(), "pods created before their certificates were issued")
		Expect(getCluster(key).Status.Reason).To(ContainSubstring("waiting for cert-manager"))

		By("cert-manager issues them")
		for _, name := range []string{"ray-ca-certificate-mt", "ray-head-cert-mt", "ray-worker-cert-mt"} {
			issueCertificate(ns, name)
		}
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventMTLSPKIReady, "issued"))
		Eventually(podNamesOf(ns, "", "")).Should(HaveLen(3), "head and two workers")

		By("the pods mount their role's certificate and wait for their IP in it")
		for _, p := range listPods(ns, "", "") {
			role := rayv1.RayNodeType(p.Labels[rayv1.RayNodeTypeLabelKey])
			Expect(p.Spec.Volumes).To(ContainElement(And(HaveField("Name", resources.TLSVolumeName),
				HaveField("Secret.SecretName", resources.TLSSecretName(c, role)))), "pod %s", p.Name)
			Expect(p.Spec.InitContainers[0].Name).To(Equal(resources.WaitForTLSIPSANInitName), "pod %s", p.Name)
			Expect(p.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: resources.EnvUseTLS, Value: "1"}), "pod %s", p.Name)
		}

		By("the certificates list the pods' IPs")
		var headIP, workerIPs []string
		Eventually(func() ([]string, error) {
			headIP, workerIPs = nil, nil
			pods, err := activePods(ns, "", "")
			for _, p := range pods {
				if p.Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.HeadNode) {
					headIP = append(headIP, p.Status.PodIP)
				} else if p.Status.PodIP != "" {
					workerIPs = append(workerIPs, p.Status.PodIP)
				}
			}
			return append(headIP, workerIPs...), err
		}).Should(And(HaveLen(3), Not(ContainElement(""))), "the fake kubelet gave every pod an IP")
		Eventually(certificateOf(ns, "ray-head-cert-mt")).Should(WithTransform(specField("ipAddresses"), ConsistOf(toAny(append(headIP, "127.0.0.1"))...)))
		Eventually(certificateOf(ns, "ray-worker-cert-mt")).Should(WithTransform(specField("ipAddresses"), ConsistOf(toAny(append(workerIPs, "127.0.0.1"))...)))
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventMTLSCertificatesUpdated, "ray-worker-cert-mt"))

		By("cert-manager's Secrets are dependents of their Certificates")
		for _, name := range []string{"ray-head-cert-mt", "ray-worker-cert-mt", "ray-ca-certificate-mt"} {
			cert, err := certificateOf(ns, name)()
			Expect(err).NotTo(HaveOccurred())
			secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
			Eventually(func() (*corev1.Secret, error) {
				return getSecret(types.NamespacedName{Namespace: ns, Name: secretName})
			}).
				Should(BeOwnedBy(cert), "secret %s", secretName)
		}
		issueCertificate(ns, "ray-head-cert-mt")
		issueCertificate(ns, "ray-worker-cert-mt")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady))
	})

	It("refuses TLS settings the operator manages", func() {
		ns := newNamespace()
		c := tlsCluster(ns, "own")
		c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "RAY_USE_TLS", Value: "0"}}
		create(c)
		expectSpecRefused(client.ObjectKeyFromObject(c), "spec.headGroupSpec.template.spec.containers[0].env[0].name")
	})

	It("leaves a cluster with tlsOptions.enabled false alone", func() {
		ns := newNamespace()
		c := tlsCluster(ns, "off")
		c.Spec.TLSOptions.Enabled = ptr.To(false)
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady))
		certs := &unstructured.UnstructuredList{}
		certs.SetGroupVersionKind(mtls.GroupVersion.WithKind("CertificateList"))
		Expect(k8s.List(context.Background(), certs, client.InNamespace(ns))).To(Succeed())
		Expect(certs.Items).To(BeEmpty())
		Expect(listPods(ns, rayv1.HeadNode, "")[0].Spec.Volumes).NotTo(ContainElement(HaveField("Name", resources.TLSVolumeName)))
	})
})

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }
