package autoscaler

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
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

// DrainNode over the head's gRPC service: an idle worker is drained, the head is not, and a node
// the head does not have alive is ErrNodeGone (a round goes on without it).
func TestGRPCHeadDrainNode(t *testing.T) {
	srv, err := gcs.NewServer(t.Context(), gcs.Options{Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterService(gcs.NewAutoscalingState(srv, gcs.AutoscalingOptions{}).Register)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(t.Context(), l) }()
	for _, n := range []*gcsv1.Node{{NodeId: "head", IsHead: true}, {NodeId: "w1"}} {
		if err := srv.RegisterNode(t.Context(), n, nil); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := gcs.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := NewGRPCHead(conn)
	deadline := time.Now().Add(time.Minute)

	if ok, why, err := h.DrainNode(t.Context(), "w1", "test", deadline); err != nil || !ok {
		t.Errorf("draining the idle worker = %v, %q, %v; want accepted", ok, why, err)
	}
	if !srv.Draining("w1") {
		t.Error("the head does not report w1 draining")
	}
	if ok, why, err := h.DrainNode(t.Context(), "head", "test", deadline); err != nil || ok || why == "" {
		t.Errorf("draining the head = %v, %q, %v; want refused with a reason", ok, why, err)
	}
	if _, _, err := h.DrainNode(t.Context(), "gone", "test", deadline); !errors.Is(err, ErrNodeGone) {
		t.Errorf("draining an unknown node: err = %v, want ErrNodeGone", err)
	}
}
