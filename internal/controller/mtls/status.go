package mtls

import (
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Ready reports whether cert-manager has issued cert as its spec stands now: the Ready condition
// is True and was observed at the current generation. A Ready condition from before the latest
// SAN change does not count, since the Secret still holds the old certificate.
func Ready(cert *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
	for _, raw := range conds {
		cond, ok := raw.(map[string]any)
		if !ok || cond["type"] != "Ready" {
			continue
		}
		gen, _, _ := unstructured.NestedInt64(cond, "observedGeneration")
		return cond["status"] == "True" && gen == cert.GetGeneration()
	}
	return false
}

// NotAfter is the expiry of the issued certificate (zero when not issued).
func NotAfter(cert *unstructured.Unstructured) time.Time {
	s, _, _ := unstructured.NestedString(cert.Object, "status", "notAfter")
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// SANsDiffer reports whether observed lists other DNS names or IP addresses than desired (as
// sets): the only leaf fields that change over a cluster's life.
func SANsDiffer(observed, desired *unstructured.Unstructured) bool {
	for _, f := range []string{"dnsNames", "ipAddresses"} {
		o, _, _ := unstructured.NestedStringSlice(observed.Object, "spec", f)
		d, _, _ := unstructured.NestedStringSlice(desired.Object, "spec", f)
		if !sets.New(o...).Equal(sets.New(d...)) {
			return true
		}
	}
	return false
}

// IPAddresses lists the IP SANs of a Certificate's spec.
func IPAddresses(cert *unstructured.Unstructured) []string {
	ips, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "ipAddresses")
	return ips
}
