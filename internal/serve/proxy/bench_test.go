package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// noop answers every call with an empty 200.
type noop struct{}

func (noop) Handle(context.Context, *replica.Request) (*replica.Response, error) {
	return &replica.Response{Status: http.StatusOK}, nil
}
func (noop) Reconfigure(json.RawMessage) error { return nil }
func (noop) CheckHealth(context.Context) error { return nil }

// socketDialer opens every call on one connection to a replica's socket,
// as the agent does for a local replica.
type socketDialer struct{ conn *wire.Conn }

func (d socketDialer) Open(context.Context, handle.Target) (wire.Stream, error) { return d.conn.Open() }

// BenchmarkProxyCall is one HTTP request through the proxy's handler with
// metrics, the handles' router and a real replica server over a Unix
// socket: what the proxy process allocates per request, minus net/http's
// own reading and writing of the request (the recorder stands in for the
// connection).
func BenchmarkProxyCall(b *testing.B) {
	l, err := net.Listen("unix", filepath.Join(b.TempDir(), "r.sock"))
	if err != nil {
		b.Fatal(err)
	}
	srv := replica.NewServer(noop{}, replica.Options{ReplicaID: "r1", MaxOngoingRequests: 100, Logger: logr.Discard()})
	go func() { _ = srv.Serve(b.Context(), l) }()
	conn, err := replica.Dial(b.Context(), l.Addr().String(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	m := metrics.New(nil, metrics.Sources{})
	h := handle.New(handle.Options{LocalNodeID: "n1", Dialer: socketDialer{conn}, Metrics: m, Logger: logr.Discard()})
	h.Update(&servev1.RouteTable{Deployments: []*servev1.Deployment{{
		App: "app", Name: "Noop", Ingress: true, MaxOngoingRequests: 100, MaxQueuedRequests: -1,
		Replicas: []*servev1.Replica{{ReplicaId: "r1", NodeId: "n1"}},
	}}})
	p := New(h, logr.Discard(), m)
	p.SetState(State{Routes: []Route{{Prefix: "/noop", App: "app"}}})
	req := httptest.NewRequest(http.MethodGet, "/noop", nil)
	req.Header.Set("User-Agent", "bench")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
