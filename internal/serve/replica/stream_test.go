package replica

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// chunker streams n chunks of size bytes and reports how many it sent.
type chunker struct {
	n, size   int
	sent      chan int
	cancelled chan struct{}
}

func (c *chunker) Handle(context.Context, *Request) (*Response, error) { return nil, nil }
func (c *chunker) Reconfigure(json.RawMessage) error                   { return nil }
func (c *chunker) CheckHealth(context.Context) error                   { return nil }

func (c *chunker) HandleStream(ctx context.Context, _ *Request, w *ResponseStream) error {
	for i := range c.n {
		if err := w.Write(ctx, make([]byte, c.size)); err != nil {
			close(c.cancelled)
			return err
		}
		c.sent <- i + 1
	}
	return nil
}

func startStreamServer(t *testing.T, dep Deployment) *wire.Conn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := NewServer(dep, Options{ReplicaID: "r", MaxOngoingRequests: 2, Logger: logr.Discard()})
	go func() { _ = srv.Serve(ctx, l) }()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	conn := wire.NewConn(c, true, nil)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func recvType(t *testing.T, s wire.Stream, want byte) wire.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := s.Recv(ctx)
	if err != nil || f.Type != want {
		t.Fatalf("frame = %+v, %v; want type %d", f, err, want)
	}
	return f
}

func TestStreamedAnswerWaitsForCredit(t *testing.T) {
	dep := &chunker{n: 5, size: 100, sent: make(chan int, 10), cancelled: make(chan struct{})}
	conn := startStreamServer(t, dep)
	s, _ := conn.Open()
	// A window of two chunks: the third waits for credit.
	if err := s.Send(wire.Out{Type: wire.TypeOpen, Payload: wire.JSON(wire.Meta{Kind: wire.KindHTTP, Window: 200})}, wire.Out{Type: wire.TypeEnd}); err != nil {
		t.Fatal(err)
	}
	recvType(t, s, wire.TypeAccept)
	recvType(t, s, wire.TypeHead)
	recvType(t, s, wire.TypeData)
	recvType(t, s, wire.TypeData)
	if got := <-dep.sent; got != 1 {
		t.Fatalf("sent %d", got)
	}
	if got := <-dep.sent; got != 2 {
		t.Fatalf("sent %d", got)
	}
	select {
	case n := <-dep.sent:
		t.Fatalf("the replica sent chunk %d beyond the window", n)
	case <-time.After(200 * time.Millisecond):
	}
	_ = s.Send(wire.Out{Type: wire.TypeCredit, Payload: wire.Credit(100)})
	recvType(t, s, wire.TypeData)
	if got := <-dep.sent; got != 3 {
		t.Fatalf("sent %d after one credit", got)
	}
	// Cancelling stops the handler where it waits.
	_ = s.Send(wire.Out{Type: wire.TypeCancel})
	select {
	case <-dep.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not see the cancellation")
	}
}

func TestStreamedAnswerWithoutWindowRunsToTheEnd(t *testing.T) {
	dep := &chunker{n: 3, size: 10, sent: make(chan int, 10), cancelled: make(chan struct{})}
	conn := startStreamServer(t, dep)
	s, _ := conn.Open()
	res, err := wire.Call(context.Background(), s, wire.Meta{Kind: wire.KindHTTP}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Head.Status != 200 || len(res.Body) != 30 {
		t.Fatalf("answer %+v (%d bytes)", res.Head, len(res.Body))
	}
}
