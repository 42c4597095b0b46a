package sched

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// newReportingCluster is newCluster with the scheduler reporting to the
// head's real autoscaling state.
func newReportingCluster(t *testing.T, cpus ...float64) (*gcs.AutoscalingState, *Scheduler) {
	t.Helper()
	srv, err := gcs.NewServer(context.Background(), gcs.Options{Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cpus {
		id := string(rune('a' + i))
		if err := srv.RegisterNode(context.Background(), &gcsv1.Node{NodeId: id, ResourcesTotal: map[string]float64{"CPU": c}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	state := gcs.NewAutoscalingState(srv, gcs.AutoscalingOptions{})
	s := New(Options{Cluster: srv, Demand: state, Logger: logr.Discard()})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = s.Run(ctx) }()
	return state, s
}

func pendingByID(st *gcsv1.GetClusterStateResponse) map[string]*gcsv1.PendingDemand {
	out := map[string]*gcsv1.PendingDemand{}
	for _, p := range st.Pending {
		out[p.Id] = p
	}
	return out
}

func activityOf(t *testing.T, st *gcsv1.GetClusterStateResponse, node string) *gcsv1.NodeActivity {
	t.Helper()
	for _, a := range st.Activity {
		if a.NodeId == node {
			return a
		}
	}
	t.Fatalf("no activity for node %s in %v", node, st.Activity)
	return nil
}

func waitGranted(t *testing.T, ch <-chan *gcsv1.Node, what string) *gcsv1.Node {
	t.Helper()
	select {
	case n := <-ch:
		if n == nil {
			t.Fatalf("%s was not granted", what)
		}
		return n
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not granted", what)
	}
	return nil
}

func TestQueuedLeasesArePendingDemandUntilPlacedOrWithdrawn(t *testing.T) {
	state, s := newReportingCluster(t, 2)
	if a := activityOf(t, state.ClusterState(), "a"); a.IdleSinceMs == 0 || a.RunningProcesses != 0 {
		t.Fatalf("empty node activity = %v, want idle with nothing running", a)
	}
	waitGranted(t, mustLease(s, "task:1", 2, nil), "task:1")

	events := make(chan *corev1.LeaseEvent, 2)
	second := mustLease(s, "task:2", 1, events)
	<-events
	big, withdrawBig := lease(s, "actor:3", 8, events)
	if ev := <-events; ev.State != corev1.LeaseState_LEASE_STATE_INFEASIBLE {
		t.Fatalf("actor:3 event = %v, want INFEASIBLE", ev.State)
	}

	st := state.ClusterState()
	if a := activityOf(t, st, "a"); a.IdleSinceMs != 0 || a.RunningProcesses != 1 {
		t.Fatalf("node with a granted lease: activity = %v, want busy with 1 running", a)
	}
	p := pendingByID(st)
	if len(p) != 2 {
		t.Fatalf("pending = %v, want task:2 and actor:3", st.Pending)
	}
	if d := p["task:2"]; d == nil || d.Kind != "ray_task" || d.Resources["CPU"] != 1 {
		t.Fatalf("task:2 demand = %v, want kind ray_task with CPU 1", d)
	}
	if d := p["actor:3"]; d == nil || d.Kind != "ray_actor_infeasible" || d.Resources["CPU"] != 8 {
		t.Fatalf("actor:3 demand = %v, want kind ray_actor_infeasible with CPU 8", d)
	}

	s.Release("a", "task:1")
	waitGranted(t, second, "task:2")
	if p := pendingByID(state.ClusterState()); len(p) != 1 || p["actor:3"] == nil {
		t.Fatalf("pending after task:2 was placed = %v, want only actor:3", p)
	}
	withdrawBig()
	if n := <-big; n != nil {
		t.Fatalf("withdrawn actor:3 granted on %s", n.NodeId)
	}
	if p := pendingByID(state.ClusterState()); len(p) != 0 {
		t.Fatalf("pending after withdrawal = %v, want none", p)
	}
	s.Release("a", "task:2")
	if a := activityOf(t, state.ClusterState(), "a"); a.IdleSinceMs == 0 || a.RunningProcesses != 0 {
		t.Fatalf("activity after every lease returned = %v, want idle", a)
	}
}

func TestZeroResourceLeaseKeepsItsNodeBusy(t *testing.T) {
	state, s := newReportingCluster(t, 1)
	n := waitGranted(t, mustLease(s, "actor:idle", 0, nil), "actor:idle")
	if a := activityOf(t, state.ClusterState(), n.NodeId); a.IdleSinceMs != 0 || a.RunningProcesses != 1 {
		t.Fatalf("node running a zero-CPU actor: activity = %v, want busy", a)
	}
	s.Release(n.NodeId, "actor:idle")
	if a := activityOf(t, state.ClusterState(), n.NodeId); a.IdleSinceMs == 0 {
		t.Fatalf("activity after the actor left = %v, want idle", a)
	}
}

func mustLease(s *Scheduler, id string, cpu float64, events chan<- *corev1.LeaseEvent) <-chan *gcsv1.Node {
	ch, _ := lease(s, id, cpu, events)
	return ch
}

func TestDemandKind(t *testing.T) {
	for _, c := range []struct {
		id         string
		infeasible bool
		want       string
	}{{"task:1", false, "ray_task"}, {"actor:1", false, "ray_actor"}, {"task:1", true, "ray_task_infeasible"}, {"actor:1", true, "ray_actor_infeasible"}} {
		if got := DemandKind(c.id, c.infeasible); got != c.want {
			t.Errorf("DemandKind(%q, %v) = %q, want %q", c.id, c.infeasible, got, c.want)
		}
	}
}
