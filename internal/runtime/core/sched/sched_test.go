package sched

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func newCluster(t *testing.T, cpus ...float64) (*gcs.Server, *Scheduler) {
	t.Helper()
	srv, err := gcs.NewServer(context.Background(), gcs.Options{Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cpus {
		id := string(rune('a' + i))
		if err := srv.RegisterNode(context.Background(), &gcsv1.Node{NodeId: id, IsHead: i == 0, ResourcesTotal: map[string]float64{"CPU": c}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Options{Cluster: srv, Logger: logr.Discard()})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = s.Run(ctx) }()
	return srv, s
}

func lease(s *Scheduler, id string, cpu float64, events chan<- *corev1.LeaseEvent) (<-chan *gcsv1.Node, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *gcsv1.Node, 1)
	go func() {
		n, err := s.Lease(ctx, &corev1.LeaseRequest{LeaseId: id, Resources: map[string]float64{"CPU": cpu}, Description: id}, func(ev *corev1.LeaseEvent) error {
			if events != nil {
				events <- ev
			}
			return nil
		})
		if err == nil {
			out <- n
		}
		close(out)
	}()
	return out, cancel
}

func TestLeaseQueuesUntilRoomThenGrants(t *testing.T) {
	srv, s := newCluster(t, 2)
	first, _ := lease(s, "task:1", 2, nil)
	if n := <-first; n == nil || n.NodeId != "a" {
		t.Fatalf("first lease = %v, want node a", n)
	}
	events := make(chan *corev1.LeaseEvent, 1)
	second, _ := lease(s, "task:2", 1, events)
	if ev := <-events; ev.State != corev1.LeaseState_LEASE_STATE_PENDING {
		t.Fatalf("second lease event = %v, want PENDING", ev.State)
	}
	if got := len(s.Demand()); got != 1 {
		t.Fatalf("demand has %d entries, want 1", got)
	}
	s.Release("a", "task:1")
	select {
	case n := <-second:
		if n == nil || n.NodeId != "a" {
			t.Fatalf("second lease = %v, want node a", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the queued lease was not granted after the first was released")
	}
	node, _ := srv.Node("a")
	if node.ResourcesAvailable["CPU"] != 1 {
		t.Fatalf("available CPU = %v, want 1", node.ResourcesAvailable["CPU"])
	}
}

func TestInfeasibleIsReportedAndStaysQueued(t *testing.T) {
	_, s := newCluster(t, 2)
	events := make(chan *corev1.LeaseEvent, 1)
	got, cancel := lease(s, "task:big", 8, events)
	ev := <-events
	if ev.State != corev1.LeaseState_LEASE_STATE_INFEASIBLE {
		t.Fatalf("event = %v, want INFEASIBLE", ev.State)
	}
	if !strings.Contains(ev.Message, "The actor or task with ID task:big cannot be scheduled right now. It requires {CPU: 8.000000} for placement") {
		t.Fatalf("message = %q", ev.Message)
	}
	d := s.Demand()
	if len(d) != 1 || !d[0].Infeasible {
		t.Fatalf("demand = %v, want one infeasible entry", d)
	}
	cancel()
	if n := <-got; n != nil {
		t.Fatalf("withdrawn lease granted on %s", n.NodeId)
	}
	if d := s.Demand(); len(d) != 0 {
		t.Fatalf("demand after withdrawal = %v, want none", d)
	}
}

func TestLeasePrefersRequesterThenMostFreeCPU(t *testing.T) {
	srv, _ := newCluster(t, 1, 4, 2)
	n, err := srv.Hold("x", map[string]float64{"CPU": 1}, "", "c")
	if err != nil || n.NodeId != "c" {
		t.Fatalf("hold with preferred c = %v, %v", n, err)
	}
	n, err = srv.Hold("y", map[string]float64{"CPU": 2}, "", "a")
	if err != nil || n.NodeId != "b" {
		t.Fatalf("hold that does not fit the preferred node = %v, %v; want the node with the most free CPU (b)", n, err)
	}
	if _, err := srv.Hold("z", map[string]float64{"CPU": 1}, "c", ""); err != nil {
		t.Fatalf("pinned hold on c: %v", err)
	}
	if _, err := srv.Hold("w", map[string]float64{"CPU": 1}, "c", ""); err == nil {
		t.Fatal("a hold on a full pinned node succeeded")
	}
}
