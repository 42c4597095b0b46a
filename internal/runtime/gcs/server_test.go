package gcs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func newTestServer(t *testing.T) (*Server, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	s, err := NewServer(context.Background(), Options{
		HeartbeatPeriod:  time.Second,
		FailureThreshold: 3,
		Clock:            clk,
		Logger:           logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func node(id string, head bool, res map[string]float64, labels map[string]string) *gcsv1.Node {
	return &gcsv1.Node{NodeId: id, NodeIpAddress: "127.0.0." + id, IsHead: head, ResourcesTotal: res, Labels: labels}
}

func TestNodeDiesAfterMissedHeartbeats(t *testing.T) {
	s, clk := newTestServer(t)
	ctx := context.Background()
	var events []gcsv1.NodeState
	s.OnNodeEvent(func(n *gcsv1.Node) { events = append(events, n.State) })
	if err := s.RegisterNode(ctx, node("1", true, nil, nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterNode(ctx, node("2", false, nil, nil), nil); err != nil {
		t.Fatal(err)
	}

	// Node 1 keeps heartbeating, node 2 goes silent.
	for range 3 {
		clk.Step(time.Second)
		if err := s.Heartbeat("1"); err != nil {
			t.Fatal(err)
		}
		s.CheckHeartbeats(ctx)
	}
	if n, _ := s.Node("2"); n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		t.Fatalf("node 2 died at exactly the timeout; want it alive until the timeout is exceeded")
	}
	clk.Step(time.Second)
	_ = s.Heartbeat("1")
	s.CheckHeartbeats(ctx)

	n1, _ := s.Node("1")
	n2, _ := s.Node("2")
	if n1.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		t.Errorf("node 1 state = %v, want ALIVE", n1.State)
	}
	if n2.State != gcsv1.NodeState_NODE_STATE_DEAD || n2.DeathReason == "" || n2.EndTimeMs == 0 {
		t.Errorf("node 2 = %v, want DEAD with a reason and end time", n2)
	}
	if got := events[len(events)-1]; got != gcsv1.NodeState_NODE_STATE_DEAD {
		t.Errorf("last event = %v, want DEAD", got)
	}
	if err := s.Heartbeat("2"); !errors.Is(err, ErrNodeDead) {
		t.Errorf("heartbeat from dead node: err = %v, want ErrNodeDead", err)
	}
	if err := s.RegisterNode(ctx, node("2", false, nil, nil), nil); !errors.Is(err, ErrNodeDead) {
		t.Errorf("re-register of dead node: err = %v, want ErrNodeDead", err)
	}
	if err := s.Heartbeat("9"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("heartbeat from unknown node: err = %v, want ErrUnknownNode", err)
	}
}

func TestPlaceProcess(t *testing.T) {
	tests := []struct {
		name      string
		placement Placement
		want      string
		wantErr   error
	}{
		{name: "no resources on head", placement: Placement{HeadOnly: true, Spec: &gcsv1.ProcessSpec{ProcessId: "p"}}, want: "1"},
		{name: "custom resource picks its node", placement: Placement{Spec: &gcsv1.ProcessSpec{ProcessId: "p", Resources: map[string]float64{"special": 1}}}, want: "3"},
		{name: "head preferred when it fits", placement: Placement{Spec: &gcsv1.ProcessSpec{ProcessId: "p", Resources: map[string]float64{"CPU": 1}}}, want: "1"},
		{name: "more CPU than the head has", placement: Placement{Spec: &gcsv1.ProcessSpec{ProcessId: "p", Resources: map[string]float64{"CPU": 3}}}, want: "2"},
		{name: "label selector", placement: Placement{LabelSelector: map[string]string{"zone": "b"}, Spec: &gcsv1.ProcessSpec{ProcessId: "p"}}, want: "3"},
		{name: "nothing fits", placement: Placement{Spec: &gcsv1.ProcessSpec{ProcessId: "p", Resources: map[string]float64{"GPU": 1}}}, wantErr: ErrNoCapacity},
		{name: "head only but head too small", placement: Placement{HeadOnly: true, Spec: &gcsv1.ProcessSpec{ProcessId: "p", Resources: map[string]float64{"CPU": 3}}}, wantErr: ErrNoCapacity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			ctx := context.Background()
			_ = s.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 2}, nil), nil)
			_ = s.RegisterNode(ctx, node("2", false, map[string]float64{"CPU": 4}, map[string]string{"zone": "a"}), nil)
			_ = s.RegisterNode(ctx, node("3", false, map[string]float64{"CPU": 1, "special": 1}, map[string]string{"zone": "b"}), nil)
			got, err := s.PlaceProcess(tt.placement)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && got.NodeId != tt.want {
				t.Errorf("placed on %s, want %s", got.NodeId, tt.want)
			}
		})
	}
}

func TestResourcesHeldUntilExit(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := context.Background()
	_ = s.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 2}, nil), nil)
	spec := &gcsv1.ProcessSpec{ProcessId: "job:a", Kind: "job", Resources: map[string]float64{"CPU": 2}}
	if _, err := s.PlaceProcess(Placement{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	n, _ := s.Node("1")
	if n.ResourcesAvailable["CPU"] != 0 {
		t.Fatalf("available CPU = %v, want 0 while the process runs", n.ResourcesAvailable["CPU"])
	}
	if _, err := s.PlaceProcess(Placement{Spec: &gcsv1.ProcessSpec{ProcessId: "job:b", Resources: map[string]float64{"CPU": 1}}}); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("second placement err = %v, want ErrNoCapacity", err)
	}
	var seen []gcsv1.ProcessState
	s.OnProcessEvent("job", func(_ string, st *gcsv1.ProcessStatus) { seen = append(seen, st.State) })
	s.ReportProcessEvent("1", &gcsv1.ProcessStatus{Spec: spec, State: gcsv1.ProcessState_PROCESS_STATE_RUNNING})
	s.ReportProcessEvent("1", &gcsv1.ProcessStatus{Spec: spec, State: gcsv1.ProcessState_PROCESS_STATE_EXITED})
	n, _ = s.Node("1")
	if n.ResourcesAvailable["CPU"] != 2 {
		t.Errorf("available CPU = %v after exit, want 2", n.ResourcesAvailable["CPU"])
	}
	if len(seen) != 2 {
		t.Errorf("handler saw %v, want RUNNING and EXITED", seen)
	}
}

func TestAssignmentsQueueAndRequeue(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := context.Background()
	_ = s.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 1}, nil), nil)
	if _, err := s.PlaceProcess(Placement{Spec: &gcsv1.ProcessSpec{ProcessId: "a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.StopProcess("1", "a", time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := s.NextAssignments(ctx, "1")
	if err != nil || len(got) != 2 || got[0].GetStart() == nil || got[1].GetStop() == nil {
		t.Fatalf("NextAssignments = %v, %v; want start then stop", got, err)
	}
	s.Requeue("1", got[1:])
	again, err := s.NextAssignments(ctx, "1")
	if err != nil || len(again) != 1 || again[0].GetStop().GetProcessId() != "a" {
		t.Fatalf("after requeue = %v, %v; want the stop again", again, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.NextAssignments(cctx, "1"); !errors.Is(err, context.Canceled) {
		t.Errorf("empty queue with cancelled ctx: err = %v, want context.Canceled", err)
	}
}

func TestWatchSendsSnapshotThenChanges(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := context.Background()
	_ = s.RegisterNode(ctx, node("1", true, nil, nil), nil)
	snap, ch, cancel := s.Watch()
	defer cancel()
	if len(snap) != 1 || snap[0].NodeId != "1" {
		t.Fatalf("snapshot = %v, want node 1", snap)
	}
	_ = s.RegisterNode(ctx, node("2", false, nil, nil), nil)
	_ = s.UnregisterNode(ctx, "2", "")
	for _, want := range []gcsv1.NodeState{gcsv1.NodeState_NODE_STATE_ALIVE, gcsv1.NodeState_NODE_STATE_DEAD} {
		select {
		case n := <-ch:
			if n.NodeId != "2" || n.State != want {
				t.Errorf("event = %s/%v, want 2/%v", n.NodeId, n.State, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no watch event")
		}
	}
}

func TestNodesReloadedFromStorage(t *testing.T) {
	store := NewMemoryStorage()
	ctx := context.Background()
	s1, err := NewServer(ctx, Options{Storage: store, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	_ = s1.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 1}, nil), nil)
	s2, err := NewServer(ctx, Options{Storage: store, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Heartbeat("1"); err != nil {
		t.Errorf("heartbeat to a server restarted on the same storage: %v", err)
	}
}

// TestRestoredHeadIsDeclaredDead: the head node of the previous control service process died
// with it, so the restarted one places nothing there and declares it dead at the first check,
// telling the node handlers (jobs, Serve) so they fail over what ran there.
func TestRestoredHeadIsDeclaredDead(t *testing.T) {
	store := NewMemoryStorage()
	ctx := context.Background()
	s1, err := NewServer(ctx, Options{Storage: store, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.RegisterNode(ctx, node("old-head", true, map[string]float64{"CPU": 4}, nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := s1.RegisterNode(ctx, node("worker", false, map[string]float64{"CPU": 1}, nil), nil); err != nil {
		t.Fatal(err)
	}

	s2, err := NewServer(ctx, Options{Storage: store, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	var dead []string
	s2.OnNodeEvent(func(n *gcsv1.Node) {
		if n.State == gcsv1.NodeState_NODE_STATE_DEAD {
			dead = append(dead, n.NodeId+": "+n.DeathReason)
		}
	})
	spec := &gcsv1.ProcessSpec{ProcessId: "p", Resources: map[string]float64{"CPU": 1}}
	got, err := s2.PlaceProcess(Placement{Spec: spec})
	if err != nil || got.NodeId != "worker" {
		t.Fatalf("placement on a restarted control service = %v, %v; want the worker, never the previous head", got, err)
	}
	s2.CheckHeartbeats(ctx)
	if len(dead) != 1 || dead[0] != "old-head: the head restarted" {
		t.Errorf("dead events = %q, want the previous head only", dead)
	}
	if n, _ := s2.Node("worker"); n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		t.Errorf("worker = %v, want ALIVE until it misses heartbeats", n.State)
	}
}
