package mtls

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

func testCluster() *rayv1.RayCluster {
	return &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: "0123456789abcdef"}}
}

func TestBuildChain(t *testing.T) {
	c := testCluster()
	ch := BuildChain(c, PodIPs{Head: []string{"10.0.0.9", ""}, Workers: []string{"10.0.0.3", "10.0.0.2", "10.0.0.3"}}, resources.DefaultOptions())
	names := []string{}
	for _, o := range ch.Objects() {
		names = append(names, o.GetKind()+"/"+o.GetName())
		if o.GetNamespace() != "ns" || len(o.GetOwnerReferences()) != 1 || o.GetOwnerReferences()[0].UID != c.UID {
			t.Errorf("%s: namespace %q, owners %v", o.GetName(), o.GetNamespace(), o.GetOwnerReferences())
		}
		if o.GetLabels()[rayv1.RayClusterLabelKey] != "rc" || o.GetAPIVersion() != "cert-manager.io/v1" {
			t.Errorf("%s: labels %v, apiVersion %s", o.GetName(), o.GetLabels(), o.GetAPIVersion())
		}
	}
	want := []string{"Issuer/ray-selfsigned-issuer-rc", "Certificate/ray-ca-certificate-rc", "Issuer/ray-ca-issuer-rc", "Certificate/ray-head-cert-rc", "Certificate/ray-worker-cert-rc"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("objects (-want,+got):\n%s", d)
	}
	get := func(u *unstructured.Unstructured, path ...string) any {
		v, _, _ := unstructured.NestedFieldCopy(u.Object, append([]string{"spec"}, path...)...)
		return v
	}
	for _, tc := range []struct {
		obj  *unstructured.Unstructured
		path []string
		want any
	}{
		{ch.SelfSignedIssuer, []string{"selfSigned"}, map[string]any{}},
		{ch.CACertificate, []string{"secretName"}, "rc-ca-secret-01234567"},
		{ch.CACertificate, []string{"isCA"}, true},
		{ch.CACertificate, []string{"duration"}, "87600h0m0s"},
		{ch.CACertificate, []string{"renewBefore"}, "720h0m0s"},
		{ch.CACertificate, []string{"privateKey"}, map[string]any{"algorithm": "RSA", "size": int64(4096)}},
		{ch.CACertificate, []string{"issuerRef"}, map[string]any{"name": "ray-selfsigned-issuer-rc", "kind": "Issuer", "group": "cert-manager.io"}},
		{ch.CAIssuer, []string{"ca", "secretName"}, "rc-ca-secret-01234567"},
		{ch.HeadCertificate, []string{"secretName"}, "ray-head-secret-rc"},
		{ch.HeadCertificate, []string{"dnsNames"}, []any{"localhost", "rc-head-svc.ns.svc.cluster.local"}},
		{ch.HeadCertificate, []string{"ipAddresses"}, []any{"10.0.0.9", "127.0.0.1"}},
		{ch.HeadCertificate, []string{"duration"}, "2160h0m0s"},
		{ch.HeadCertificate, []string{"renewBefore"}, "360h0m0s"},
		{ch.HeadCertificate, []string{"issuerRef", "name"}, "ray-ca-issuer-rc"},
		{ch.WorkerCertificate, []string{"secretName"}, "ray-worker-secret-rc"},
		{ch.WorkerCertificate, []string{"dnsNames"}, []any{"localhost"}},
		{ch.WorkerCertificate, []string{"ipAddresses"}, []any{"10.0.0.2", "10.0.0.3", "127.0.0.1"}},
		{ch.WorkerCertificate, []string{"usages"}, []any{"digital signature", "key encipherment", "server auth", "client auth"}},
	} {
		if d := cmp.Diff(tc.want, get(tc.obj, tc.path...)); d != "" {
			t.Errorf("%s spec.%v (-want,+got):\n%s", tc.obj.GetName(), tc.path, d)
		}
	}
}

func TestReady(t *testing.T) {
	cert := func(gen, observed int64, status string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": []any{
			map[string]any{"type": "Issuing", "status": "True"},
			map[string]any{"type": "Ready", "status": status, "observedGeneration": observed},
		}}}}
		u.SetGeneration(gen)
		return u
	}
	for _, tc := range []struct {
		name string
		cert *unstructured.Unstructured
		want bool
	}{
		{"issued", cert(2, 2, "True"), true},
		{"issued before the latest SAN change", cert(3, 2, "True"), false},
		{"not ready", cert(2, 2, "False"), false},
		{"no status", &unstructured.Unstructured{Object: map[string]any{}}, false},
	} {
		if got := Ready(tc.cert); got != tc.want {
			t.Errorf("%s: Ready = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSANsDiffer(t *testing.T) {
	c := testCluster()
	a := BuildChain(c, PodIPs{Workers: []string{"10.0.0.2", "10.0.0.3"}}, resources.DefaultOptions()).WorkerCertificate
	b := BuildChain(c, PodIPs{Workers: []string{"10.0.0.3", "10.0.0.2"}}, resources.DefaultOptions()).WorkerCertificate
	d := BuildChain(c, PodIPs{Workers: []string{"10.0.0.3"}}, resources.DefaultOptions()).WorkerCertificate
	if SANsDiffer(a, b) {
		t.Error("the same IPs in another order differ")
	}
	if !SANsDiffer(a, d) {
		t.Error("a removed IP does not differ")
	}
}

func TestNotAfter(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"notAfter": "2030-01-02T03:04:05Z"}}}
	if got := NotAfter(u).UTC().Format("2006-01-02T15:04:05Z"); got != "2030-01-02T03:04:05Z" {
		t.Errorf("NotAfter = %s", got)
	}
	if !NotAfter(&unstructured.Unstructured{Object: map[string]any{}}).IsZero() {
		t.Error("an unissued certificate has an expiry")
	}
}
