package gcs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func TestDrainNode(t *testing.T) {
	s, clk := newTestServer(t)
	ctx := context.Background()
	_ = s.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 1}, nil), nil)
	_ = s.RegisterNode(ctx, node("2", false, map[string]float64{"CPU": 4}, nil), nil)
	_ = s.RegisterNode(ctx, node("3", false, map[string]float64{"CPU": 4}, nil), nil)
	deadline := clk.Now().Add(time.Minute)

	// A node with a hold is not drained, and keeps what it holds.
	if _, err := s.Hold("task-a", map[string]float64{"CPU": 1}, "3", ""); err != nil {
		t.Fatal(err)
	}
	ok, why, err := s.DrainNode("3", DrainIdle, deadline)
	if err != nil || ok || !strings.Contains(why, "1 processes or resource holds") {
		t.Errorf("draining a node holding a task = %v, %q, %v; want refused naming what it holds", ok, why, err)
	}
	if s.Draining("3") {
		t.Error("a refused drain left the node draining")
	}
	if ok, why, _ := s.DrainNode("1", DrainIdle, deadline); ok || !strings.Contains(why, "head") {
		t.Errorf("draining the head = %v, %q; want refused", ok, why)
	}
	if _, _, err := s.DrainNode("9", DrainIdle, deadline); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("draining an unknown node: err = %v, want ErrUnknownNode", err)
	}
	if ok, _, _ := s.DrainNode("2", DrainIdle, clk.Now()); ok {
		t.Error("a drain whose deadline has passed was accepted")
	}

	// An idle node is drained: no hold, process or pinned placement lands on it.
	if ok, why, err := s.DrainNode("2", DrainIdle, deadline); err != nil || !ok {
		t.Fatalf("draining an idle node = %v, %q, %v; want accepted", ok, why, err)
	}
	if !s.Draining("2") {
		t.Error("an accepted drain is not reported")
	}
	if n, err := s.Hold("task-b", map[string]float64{"CPU": 2}, "", ""); err != nil || n.NodeId != "3" {
		t.Errorf("a hold while node 2 drains went to %v (err %v); want node 3", n.GetNodeId(), err)
	}
	if _, err := s.Hold("task-c", map[string]float64{"CPU": 4}, "", ""); !errors.Is(err, ErrNoCapacity) {
		t.Errorf("a hold only the draining node could take: err = %v, want ErrNoCapacity", err)
	}
	if _, err := s.Hold("task-d", nil, "2", ""); !errors.Is(err, ErrNoCapacity) {
		t.Errorf("a hold pinned to the draining node: err = %v, want ErrNoCapacity", err)
	}
	if _, err := s.PlaceProcess(Placement{Spec: &gcsv1.ProcessSpec{ProcessId: "job-a", Resources: map[string]float64{"CPU": 4}}}); !errors.Is(err, ErrNoCapacity) {
		t.Errorf("a process only the draining node could take: err = %v, want ErrNoCapacity", err)
	}
	if !s.Feasible(map[string]float64{"CPU": 4}, "") {
		t.Error("a draining node made a request infeasible; it is pending until the node leaves")
	}

	// Draining again moves the deadline; past it the node takes work again and
	// the change is published, so waiting placements try it.
	later := deadline.Add(time.Minute)
	if ok, _, _ := s.DrainNode("2", DrainIdle, later); !ok {
		t.Fatal("draining a drained idle node again was refused")
	}
	var events []string
	s.OnNodeEvent(func(n *gcsv1.Node) { events = append(events, n.NodeId) })
	clk.Step(90 * time.Second)
	for _, id := range []string{"1", "2", "3"} {
		_ = s.Heartbeat(id)
	}
	s.CheckHeartbeats(ctx)
	if !s.Draining("2") || len(events) != 0 {
		t.Fatalf("past the first deadline but before the moved one: draining = %v, events %v; want still draining, no event", s.Draining("2"), events)
	}
	clk.Step(time.Minute)
	for _, id := range []string{"1", "2", "3"} {
		_ = s.Heartbeat(id)
	}
	s.CheckHeartbeats(ctx)
	if s.Draining("2") || len(events) != 1 || events[0] != "2" {
		t.Errorf("past the deadline: draining = %v, events %v; want the drain lapsed and one event for node 2", s.Draining("2"), events)
	}
	if n, err := s.Hold("task-c", map[string]float64{"CPU": 4}, "", ""); err != nil || n.NodeId != "2" {
		t.Errorf("after the drain lapsed the hold went to %v (err %v); want node 2", n.GetNodeId(), err)
	}
}

func TestDrainNodeForShutdown(t *testing.T) {
	s, clk := newTestServer(t)
	ctx := context.Background()
	_ = s.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 1}, nil), nil)
	_ = s.RegisterNode(ctx, node("2", false, map[string]float64{"CPU": 4}, nil), nil)
	_ = s.RegisterNode(ctx, node("3", false, map[string]float64{"CPU": 4}, nil), nil)
	if _, err := s.Hold("task-a", map[string]float64{"CPU": 1}, "2", ""); err != nil {
		t.Fatal(err)
	}
	deadline := clk.Now().Add(time.Minute)

	// A stopping node is drained whatever it holds; the head never is.
	if ok, why, err := s.DrainNode("2", DrainShutdown, deadline); err != nil || !ok {
		t.Fatalf("draining a stopping node that holds a task = %v, %q, %v; want accepted", ok, why, err)
	}
	if ok, _, _ := s.DrainNode("1", DrainShutdown, deadline); ok {
		t.Error("the head was drained for shutdown")
	}
	if n, err := s.Hold("task-b", map[string]float64{"CPU": 2}, "", ""); err != nil || n.NodeId != "3" {
		t.Errorf("a hold while node 2 stops went to %v (err %v); want node 3", n.GetNodeId(), err)
	}

	// The autoscaler's idle drain of a stopping node is accepted (it takes
	// no work either way) and does not shorten the drain.
	if ok, why, _ := s.DrainNode("2", DrainIdle, clk.Now().Add(time.Second)); !ok {
		t.Errorf("an idle drain of a stopping node = refused (%q); want accepted", why)
	}
	clk.Step(30 * time.Second)
	for _, id := range []string{"1", "2", "3"} {
		_ = s.Heartbeat(id)
	}
	s.CheckHeartbeats(ctx)
	if !s.Draining("2") {
		t.Error("an idle drain with an earlier deadline shortened the stopping node's drain")
	}
	// Past its deadline a node that did not stop takes work again; what it
	// held stayed placed, so an idle drain is refused as for any busy node.
	clk.Step(time.Minute)
	for _, id := range []string{"1", "2", "3"} {
		_ = s.Heartbeat(id)
	}
	s.CheckHeartbeats(ctx)
	if s.Draining("2") {
		t.Error("the stopping node's drain did not lapse at its deadline")
	}
	if ok, why, _ := s.DrainNode("2", DrainIdle, clk.Now().Add(time.Minute)); ok || !strings.Contains(why, "1 processes or resource holds") {
		t.Errorf("after the lapse an idle drain of the node still holding its task = %v, %q; want refused naming the hold", ok, why)
	}
}
