package agent

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"

	"github.com/rayk8s/rayk8s/internal/runtime/core/sched"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// newHead serves a real control service with the core scheduler on a
// loopback port and registers one node with cpus CPUs.
func newHead(t *testing.T, cpus float64) (*gcs.Server, *Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := gcs.NewServer(ctx, gcs.Options{Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	s := sched.New(sched.Options{Cluster: srv, Logger: logr.Discard()})
	srv.RegisterService(s.Register)
	go func() { _ = s.Run(ctx) }()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ctx, l) }()
	if err := srv.RegisterNode(ctx, &gcsv1.Node{NodeId: "n1", IsHead: true, ResourcesTotal: map[string]float64{"CPU": cpus}}, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := gcs.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return srv, New(Options{NodeID: "n1", Conn: conn, SocketDir: t.TempDir(), Logger: logr.Discard()})
}

func freeCPU(t *testing.T, srv *gcs.Server) float64 {
	t.Helper()
	n, _ := srv.Node("n1")
	return n.ResourcesAvailable["CPU"]
}

func TestTaskLeasesAreReusedThenReturned(t *testing.T) {
	srv, a := newHead(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j := &job{id: "j1", ctx: ctx, cancel: cancel, peers: map[string]bool{}}
	res := map[string]float64{"CPU": 1}

	first, err := a.acquireTaskLease(ctx, j, res, affinity{}, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got := freeCPU(t, srv); got != 0 {
		t.Fatalf("free CPU with a lease held = %v, want 0", got)
	}
	// A second task of the shape waits; the first one's lease goes to it.
	got := make(chan *leased, 1)
	go func() {
		l, err := a.acquireTaskLease(ctx, j, res, affinity{}, "t2")
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	g := gomega.NewWithT(t)
	g.Eventually(func() int {
		a.lmu.Lock()
		defer a.lmu.Unlock()
		if q := a.shapes[shapeKey("j1", res, affinity{})]; q != nil {
			return len(q.waiters)
		}
		return 0
	}, 10*time.Second, 5*time.Millisecond).Should(gomega.Equal(1), "the second task queued")
	a.releaseTaskLease(j, res, affinity{}, first)
	second := <-got
	if second == nil || second.id != first.id {
		t.Fatalf("second lease = %+v, want the first one (%s) handed over", second, first.id)
	}
	// Released with nobody waiting, it goes back to the head after the linger.
	a.releaseTaskLease(j, res, affinity{}, second)
	g.Eventually(func() float64 { return freeCPU(t, srv) }, 10*time.Second, 5*time.Millisecond).
		Should(gomega.Equal(1.0), "the idle lease returned to the head")
}
