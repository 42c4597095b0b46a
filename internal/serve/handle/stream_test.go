package handle_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// big streams n chunks of size bytes and reports when it is cancelled.
type big struct {
	n, size   int
	cancelled chan struct{}
	produced  chan int
}

func (b *big) Handle(context.Context, *replica.Request) (*replica.Response, error) { return nil, nil }
func (b *big) Reconfigure(json.RawMessage) error                                   { return nil }
func (b *big) CheckHealth(context.Context) error                                   { return nil }

func (b *big) HandleStream(ctx context.Context, _ *replica.Request, w *replica.ResponseStream) error {
	for i := range b.n {
		if err := w.Write(ctx, make([]byte, b.size)); err != nil {
			close(b.cancelled)
			return err
		}
		select {
		case b.produced <- i:
		default:
		}
	}
	return nil
}

// socketDialer reaches the one replica over its real Unix socket.
type socketDialer struct{ conn *wire.Conn }

func (d socketDialer) Open(context.Context, handle.Target) (wire.Stream, error) { return d.conn.Open() }

func startReplica(t *testing.T, dep replica.Deployment) *handle.Handles {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := replica.NewServer(dep, replica.Options{ReplicaID: "app#d#1", MaxOngoingRequests: 4, Logger: logr.Discard()})
	go func() { _ = srv.Serve(ctx, l) }()
	conn, err := replica.Dial(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h := handle.New(handle.Options{LocalNodeID: "n1", Dialer: socketDialer{conn}})
	h.Update(&servev1.RouteTable{Deployments: []*servev1.Deployment{{
		App: "app", Name: "d", Ingress: true, MaxOngoingRequests: 4, MaxQueuedRequests: -1,
		Replicas: []*servev1.Replica{{ReplicaId: "app#d#1", NodeId: "n1"}},
	}}})
	return h
}

// An answer 16 times the window streams whole: the caller returns credit
// as it reads.
func TestStreamLargerThanTheWindow(t *testing.T) {
	dep := &big{n: 64, size: wire.ChunkSize, cancelled: make(chan struct{}), produced: make(chan int, 1)}
	h := startReplica(t, dep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.Invoke(ctx, handle.Call{App: "app", Meta: wire.Meta{Kind: wire.KindHTTP}})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for chunk, err := range resp.Chunks(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		total += len(chunk)
	}
	if total != 64*wire.ChunkSize {
		t.Fatalf("received %d bytes, want %d", total, 64*wire.ChunkSize)
	}
}

// A caller that stops reading and closes the response cancels the
// replica's handler where it waits for credit.
func TestClosingAStreamCancelsTheHandler(t *testing.T) {
	dep := &big{n: 1 << 20, size: 1024, cancelled: make(chan struct{}), produced: make(chan int, 1)}
	h := startReplica(t, dep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.Invoke(ctx, handle.Call{App: "app", Meta: wire.Meta{Kind: wire.KindHTTP}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resp.Next(ctx); err != nil {
		t.Fatal(err)
	}
	resp.Close()
	select {
	case <-dep.cancelled:
	case <-ctx.Done():
		t.Fatal("the handler was not cancelled")
	}
	if _, err := resp.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close = %v, want EOF", err)
	}
}
