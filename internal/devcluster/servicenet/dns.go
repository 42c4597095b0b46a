package servicenet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/rayk8s/rayk8s/internal/devcluster/controlplane"
)

// DNSServiceName is the cluster DNS Service in kube-system, named as on kubeadm and kind.
const DNSServiceName = "kube-dns"

// ManagedBy marks the EndpointSlice devcluster maintains for kube-dns.
const ManagedBy = "devcluster.rayk8s.io"

// DNSIPFor is the conventional cluster DNS address of a service range: its tenth address
// (10.96.0.10 for 10.96.0.0/16).
func DNSIPFor(serviceCIDR netip.Prefix) netip.Addr {
	a := serviceCIDR.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	return a
}

// Corefile is CoreDNS's configuration: the cluster zones answered from the API, NXDOMAIN for
// everything else (there is no upstream to forward to).
func (c Config) Corefile() string {
	domain := c.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	return fmt.Sprintf(`%[1]s:53 in-addr.arpa:53 ip6.arpa:53 {
    bind %[2]s
    errors
    health %[3]s
    ready %[4]s
    kubernetes %[1]s in-addr.arpa ip6.arpa {
        kubeconfig %[5]s
        pods insecure
        ttl 5
    }
    cache 5
}
.:53 {
    bind %[2]s
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`, domain, c.Gateway, netipPort(c.Gateway, c.DNSHealthPort), netipPort(c.Gateway, c.DNSReadyPort), c.Kubeconfig)
}

// StartCoreDNS writes the Corefile and starts CoreDNS on Gateway:53, waiting until its
// kubernetes plugin has synced with the API.
func StartCoreDNS(ctx context.Context, c Config) (*controlplane.Process, error) {
	if err := os.MkdirAll(filepath.Join(c.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(c.Dir, "Corefile")
	if err := os.WriteFile(file, []byte(c.Corefile()), 0o644); err != nil {
		return nil, err
	}
	p := &controlplane.Process{Name: "coredns", Path: filepath.Join(c.BinDir, "coredns"),
		Args: []string{"-conf", file}, LogFile: filepath.Join(c.Dir, "logs", "coredns.log")}
	ready := "http://" + netipPort(c.Gateway, c.DNSReadyPort) + "/ready"
	return p, startAndWait(ctx, p, func(ctx context.Context) error { return httpOK(ctx, ready) })
}

// EnsureDNSService creates the kube-dns Service in kube-system at DNSIP, without a selector:
// its EndpointSlice (PublishDNSEndpoints) points at the CoreDNS host process. Create it before
// anything else can be given that ClusterIP.
func EnsureDNSService(ctx context.Context, cs kubernetes.Interface, c Config) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: DNSServiceName, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "app.kubernetes.io/managed-by": ManagedBy}},
		Spec: corev1.ServiceSpec{
			ClusterIP: c.DNSIP.String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
	_, err := cs.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating Service kube-system/%s at %s: %w", DNSServiceName, c.DNSIP, err)
	}
	return nil
}

// PublishDNSEndpoints points the kube-dns Service at CoreDNS on the bridge address.
func PublishDNSEndpoints(ctx context.Context, cs kubernetes.Interface, c Config) error {
	ready := true
	node := c.NodeName
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: DNSServiceName + "-devcluster", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: DNSServiceName,
				discoveryv1.LabelManagedBy:   ManagedBy,
			}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{c.Gateway.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   &node,
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("dns"), Port: ptr(int32(53)), Protocol: ptr(corev1.ProtocolUDP)},
			{Name: ptr("dns-tcp"), Port: ptr(int32(53)), Protocol: ptr(corev1.ProtocolTCP)},
		},
	}
	_, err := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceSystem).Create(ctx, slice, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating the kube-dns EndpointSlice: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// WaitDNS polls until a DNS query for the kubernetes Service, sent to the kube-dns ClusterIP
// (through kube-proxy), answers.
func WaitDNS(ctx context.Context, c Config) error {
	domain := c.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(c.DNSIP.String(), "53"))
	}}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	name := "kubernetes.default.svc." + domain
	for {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, err := r.LookupHost(qctx, name)
		qcancel()
		if err == nil && len(addrs) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster DNS at %s does not answer for %s: %w", c.DNSIP, name, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// directClient never goes through an HTTP proxy from the environment: every address it is
// used for is on this machine.
var directClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

func httpOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := directClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, strconv.Itoa(resp.StatusCode))
	}
	return nil
}
