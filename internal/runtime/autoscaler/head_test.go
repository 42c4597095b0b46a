package autoscaler

import (
	"net"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
)

// With token authentication on, the head's GCS port answers the autoscaler only with the
// cluster's token, which the sidecar gets as RAY_AUTH_TOKEN.
func TestHeadConnectionCarriesTheToken(t *testing.T) {
	srv, err := gcs.NewServer(t.Context(), gcs.Options{AuthToken: "s3cret", Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	state := gcs.NewAutoscalingState(srv, gcs.AutoscalingOptions{})
	srv.RegisterService(state.Register)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(t.Context(), l) }()
	t.Cleanup(func() {
		if err := <-served; err != nil {
			t.Errorf("control service: %v", err)
		}
	})

	for _, tc := range []struct {
		token string
		ok    bool
	}{{"s3cret", true}, {"", false}, {"wrong", false}} {
		// The API server is never reached: only the head connection is exercised.
		a, err := New(t.Context(), Options{
			ClusterName: "rc", Namespace: "ns", Config: &rest.Config{Host: "http://127.0.0.1:1"},
			HeadAddress: l.Addr().String(), AuthToken: tc.token, Logger: logr.Discard(),
		})
		if err != nil {
			t.Fatal(err)
		}
		h, err := a.head(&rayv1.RayCluster{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.ClusterState(t.Context())
		if (err == nil) != tc.ok {
			t.Errorf("token %q: ClusterState error = %v, want success %v", tc.token, err, tc.ok)
		}
	}
}
