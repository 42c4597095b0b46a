package dashboardresolver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

func cluster() *rayv1.RayCluster {
	return &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "team-a"}}
}

func TestDashboardAddress(t *testing.T) {
	o := resources.DefaultOptions()
	o.ClusterDomain = "corp.local"
	if got, want := DashboardAddress(cluster(), o), "rc-head-svc.team-a.svc.corp.local:8265"; got != want {
		t.Errorf("DashboardAddress = %q, want %q", got, want)
	}
}

// TestProxyResolverGoesThroughServiceProxy points the proxy resolver at a stand-in API server and
// checks the request path and the Ray auth token it carries.
func TestProxyResolverGoesThroughServiceProxy(t *testing.T) {
	var gotPath, gotAuth string
	apiserver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAuth = r.URL.Path, r.Header.Get(dashboard.AuthHeader)
		_ = json.NewEncoder(w).Encode(map[string]string{"version": "4", "ray_version": "2.53.0"})
	}))
	defer apiserver.Close()

	p, err := NewProxy(&rest.Config{Host: apiserver.URL})
	if err != nil {
		t.Fatal(err)
	}
	p.Token = func(context.Context, *rayv1.RayCluster) (string, error) { return "s3cret", nil }
	c, err := p.DashboardClient(context.Background(), cluster())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(context.Background()); err != nil {
		t.Fatalf("Version through the proxy: %v", err)
	}
	if want := "/api/v1/namespaces/team-a/services/rc-head-svc:dashboard/proxy/api/version"; gotPath != want {
		t.Errorf("request path = %q, want %q", gotPath, want)
	}
	if gotAuth != "Bearer s3cret" {
		t.Errorf("auth header = %q, want the cluster's token", gotAuth)
	}
}
