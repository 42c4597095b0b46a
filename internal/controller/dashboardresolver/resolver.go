// Package dashboardresolver tells the operator how to reach the Ray dashboard of a RayCluster.
//
// There is one interface, Resolver, with two production implementations chosen by the operator's
// --use-kubernetes-proxy flag, as in KubeRay:
//   - DNS (default) talks to http://<head-svc>.<namespace>.svc.<cluster domain>:<dashboard port>,
//     which needs the operator to run inside the cluster network;
//   - Proxy goes through the API server's service proxy
//     (<apiserver>/api/v1/namespaces/<ns>/services/<head-svc>:dashboard/proxy) with the manager's
//     credentials, which works from anywhere the API server is reachable.
//
// Tests use Func to point a controller at an in-process head.
package dashboardresolver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// Timeouts of dashboard requests, as KubeRay: short when talking to the head directly, longer when
// every request takes an extra hop through the API server.
const (
	DirectTimeout = 2 * time.Second
	ProxyTimeout  = 10 * time.Second
)

// Resolver returns a client for the dashboard of a RayCluster.
type Resolver interface {
	DashboardClient(ctx context.Context, cluster *rayv1.RayCluster) (*dashboard.Client, error)
}

// Func adapts a function to Resolver (tests point it at an in-process head).
type Func func(ctx context.Context, cluster *rayv1.RayCluster) (*dashboard.Client, error)

// DashboardClient calls f.
func (f Func) DashboardClient(ctx context.Context, cluster *rayv1.RayCluster) (*dashboard.Client, error) {
	return f(ctx, cluster)
}

// DashboardAddress is host:port of the cluster's dashboard under its head Service's cluster DNS
// name: what RayJob status.dashboardURL holds and what in-cluster submitters use.
func DashboardAddress(cluster *rayv1.RayCluster, o resources.Options) string {
	return fmt.Sprintf("%s:%d", resources.HeadServiceFQDN(cluster, o), resources.DashboardPort(cluster))
}

// DNS reaches the dashboard through the head Service's cluster DNS name.
type DNS struct {
	// Options supply the cluster domain.
	Options resources.Options
	// HTTPClient is shared by every returned client; nil means one with DirectTimeout.
	HTTPClient *http.Client
	// Token, when non-empty, is sent as the Ray auth token (clusters with token auth).
	Token func(ctx context.Context, cluster *rayv1.RayCluster) (string, error)
}

var _ Resolver = (*DNS)(nil)

// DashboardClient returns a client for http://<head-svc fqdn>:<dashboard port>.
func (d *DNS) DashboardClient(ctx context.Context, cluster *rayv1.RayCluster) (*dashboard.Client, error) {
	hc := d.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DirectTimeout}
	}
	opts := []dashboard.ClientOption{dashboard.WithHTTPClient(hc)}
	if d.Token != nil {
		tok, err := d.Token(ctx, cluster)
		if err != nil {
			return nil, err
		}
		if tok != "" {
			opts = append(opts, dashboard.WithAuthToken(tok))
		}
	}
	return dashboard.NewClient("http://"+DashboardAddress(cluster, d.Options), opts...)
}

// Proxy reaches the dashboard through the API server's service proxy, authenticated as the manager.
type Proxy struct {
	host       string
	httpClient *http.Client
	// Token, when non-empty, is sent as the Ray auth token (clusters with token auth).
	Token func(ctx context.Context, cluster *rayv1.RayCluster) (string, error)
}

var _ Resolver = (*Proxy)(nil)

// NewProxy builds a Proxy resolver from the manager's REST config.
func NewProxy(cfg *rest.Config) (*Proxy, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = ProxyTimeout
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building API server HTTP client: %w", err)
	}
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	return &Proxy{host: strings.TrimRight(host, "/") + cfg.APIPath, httpClient: hc}, nil
}

// ProxyURL is the API server service-proxy URL of the cluster's dashboard port.
func ProxyURL(apiServer string, cluster *rayv1.RayCluster) string {
	return fmt.Sprintf("%s/api/v1/namespaces/%s/services/%s:%s/proxy",
		strings.TrimRight(apiServer, "/"), cluster.Namespace, resources.HeadServiceName(cluster), resources.DashboardPortName)
}

// DashboardClient returns a client whose requests go through the API server's service proxy.
// The Jobs API's log WebSocket does not carry the manager's credentials, so log following through
// the proxy fails and callers fall back to their retry schedule.
func (p *Proxy) DashboardClient(ctx context.Context, cluster *rayv1.RayCluster) (*dashboard.Client, error) {
	opts := []dashboard.ClientOption{dashboard.WithHTTPClient(p.httpClient)}
	if p.Token != nil {
		tok, err := p.Token(ctx, cluster)
		if err != nil {
			return nil, err
		}
		if tok != "" {
			opts = append(opts, dashboard.WithAuthToken(tok))
		}
	}
	return dashboard.NewClient(ProxyURL(p.host, cluster), opts...)
}

// SecretToken returns a Token function for DNS and Proxy: on clusters whose token lives in a Secret
// (resources.UsesAuthTokenSecret) it reads the Secret's auth_token through r, which should be an
// uncached reader so that Secret data is never cached by the operator; elsewhere the token is "".
func SecretToken(r client.Reader) func(ctx context.Context, cluster *rayv1.RayCluster) (string, error) {
	return func(ctx context.Context, cluster *rayv1.RayCluster) (string, error) {
		if !resources.UsesAuthTokenSecret(cluster) {
			return "", nil
		}
		name := resources.AuthSecretName(cluster)
		s := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: name}, s); err != nil {
			return "", fmt.Errorf("reading the auth token of RayCluster %s from Secret %s: %w", cluster.Name, name, err)
		}
		tok, ok := s.Data[resources.AuthTokenSecretKey]
		if !ok || len(tok) == 0 {
			return "", fmt.Errorf("secret %s/%s has no %q: RayCluster %s uses token authentication", cluster.Namespace, name, resources.AuthTokenSecretKey, cluster.Name)
		}
		return string(tok), nil
	}
}
