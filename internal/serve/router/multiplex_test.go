package router

import (
	"context"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func newMultiplexRouter(t *testing.T) (*Router, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	// Deterministic: first candidates, and the fallback factor's random
	// part 0.5, so the fallback comes after 1.5 x MultiplexTimeout.
	r := New(Options{Clock: clk, Intn: func(int) int { return 0 }, Float64: func() float64 { return 0.5 }, MultiplexTimeout: time.Second})
	r.Update(Config{Replicas: []Replica{{ID: "a", NodeID: "n1"}, {ID: "b", NodeID: "n2"}, {ID: "c", NodeID: "n3"}}, MaxOngoingRequests: 1, MaxQueuedRequests: -1})
	return r, clk
}

func assignModel(ctx context.Context, r *Router, model string) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		l, err := r.AssignCall(ctx, Call{ModelID: model})
		ch <- outcome{l, err}
	}()
	return ch
}

func got(t *testing.T, ch <-chan outcome) *Lease {
	t.Helper()
	select {
	case o := <-ch:
		if o.err != nil {
			t.Fatalf("AssignCall: %v", o.err)
		}
		return o.l
	case <-time.After(5 * time.Second):
		t.Fatal("AssignCall did not return")
		return nil
	}
}

func TestMultiplexPrefersTheReplicaHoldingTheModel(t *testing.T) {
	r, _ := newMultiplexRouter(t)
	r.SetModels("c", []string{"m1"})
	ctx := context.Background()
	for range 3 {
		l := got(t, assignModel(ctx, r, "m1"))
		if l.ID != "c" {
			t.Fatalf("call for m1 went to %s, want c (which holds it)", l.ID)
		}
		l.Done(0)
	}
	// A call without a model ignores models: the first candidates.
	if l := got(t, assignModel(ctx, r, "")); l.ID != "a" {
		t.Fatalf("plain call went to %s, want a", l.ID)
	}
}

func TestMultiplexUnknownModelGoesToTheFewestModels(t *testing.T) {
	r, _ := newMultiplexRouter(t)
	r.SetModels("a", []string{"m1", "m2"})
	r.SetModels("b", []string{"m3"})
	r.SetModels("c", []string{"m4"})
	l := got(t, assignModel(context.Background(), r, "new"))
	if l.ID != "b" {
		t.Fatalf("call for a new model went to %s, want b (fewest models, first candidate)", l.ID)
	}
}

func TestMultiplexWaitsForTheHolderThenFallsBack(t *testing.T) {
	r, _ := newMultiplexRouter(t)
	r.SetModels("a", []string{"m1"})
	r.SetModels("b", []string{"m2"})
	r.SetModels("c", []string{"m3"})
	ctx := context.Background()
	busy := got(t, assignModel(ctx, r, "m1"))
	if busy.ID != "a" {
		t.Fatalf("first m1 call went to %s, want a", busy.ID)
	}
	// a is full; b and c hold as many models as a: they are the fewest,
	// so the call goes to one of them at once.
	if l := got(t, assignModel(ctx, r, "m1")); l.ID != "b" {
		t.Fatalf("m1 call with its holder full went to %s, want b", l.ID)
	}

	// Now a holds none and b, c are full; a call for m9 waits for the
	// fewest-models replica a, which is busy, until the fallback.
	r2, clk := newMultiplexRouter(t)
	r2.SetModels("b", []string{"m2"})
	r2.SetModels("c", []string{"m3"})
	holdA := got(t, assignModel(ctx, r2, "m9"))
	if holdA.ID != "a" {
		t.Fatalf("m9 went to %s, want a (no models)", holdA.ID)
	}
	ch := assignModel(ctx, r2, "m9")
	waitQueued(t, r2, 1)
	clk.Step(1400 * time.Millisecond)
	expectNone(t, ch)
	// 1.5 s after the call started it may go to any replica with room.
	clk.Step(200 * time.Millisecond)
	l := got(t, ch)
	if l.ID != "b" {
		t.Fatalf("after the fallback the call went to %s, want b", l.ID)
	}
}

func TestMultiplexQueuedCallDoesNotBlockOthers(t *testing.T) {
	r, _ := newMultiplexRouter(t)
	r.Update(Config{Replicas: []Replica{{ID: "a"}, {ID: "b"}}, MaxOngoingRequests: 1, MaxQueuedRequests: -1})
	r.SetModels("b", []string{"m2"})
	ctx := context.Background()
	holdA := got(t, assignModel(ctx, r, "m1")) // a: fewest models
	if holdA.ID != "a" {
		t.Fatalf("m1 went to %s, want a", holdA.ID)
	}
	waiting := assignModel(ctx, r, "m1") // a is full, a is the fewest: waits
	waitQueued(t, r, 1)
	plain := assignModel(ctx, r, "")
	if l := got(t, plain); l.ID != "b" {
		t.Fatalf("plain call went to %s, want b past the waiting m1 call", l.ID)
	}
	expectNone(t, waiting)
	holdA.Done(0)
	if l := got(t, waiting); l.ID != "a" {
		t.Fatalf("m1 call went to %s after a freed up, want a", l.ID)
	}
}

func TestMultiplexModelsReportedByLease(t *testing.T) {
	r, _ := newMultiplexRouter(t)
	l := got(t, assignModel(context.Background(), r, "m1"))
	l.Models([]string{"m1"})
	l.Done(0)
	for range 3 {
		next := got(t, assignModel(context.Background(), r, "m1"))
		if next.ID != l.ID {
			t.Fatalf("m1 went to %s after %s reported holding it", next.ID, l.ID)
		}
		next.Done(0)
	}
}

func TestMultiplexUsesModelsFromTheRoutingTable(t *testing.T) {
	r, _ := newMultiplexRouter(t)
	// The controller's table says b holds m2: this router never called b.
	r.Update(Config{Replicas: []Replica{{ID: "a", NodeID: "n1"}, {ID: "b", NodeID: "n2", Models: []string{"m2"}}, {ID: "c", NodeID: "n3"}}, MaxOngoingRequests: 1, MaxQueuedRequests: -1})
	l := got(t, assignModel(context.Background(), r, "m2"))
	if l.ID != "b" {
		t.Fatalf("call for m2 went to %s, want b (the table says it holds m2)", l.ID)
	}
	l.Done(0)
	// What the router learns from its own calls is fresher than an
	// unchanged table: b evicted m2 and now holds m3.
	r.SetModels("b", []string{"m3"})
	r.Update(Config{Replicas: []Replica{{ID: "a", NodeID: "n1"}, {ID: "b", NodeID: "n2", Models: []string{"m2"}}, {ID: "c", NodeID: "n3"}}, MaxOngoingRequests: 1, MaxQueuedRequests: -1})
	l = got(t, assignModel(context.Background(), r, "m3"))
	if l.ID != "b" {
		t.Fatalf("call for m3 went to %s, want b (it reported m3 after the table's report)", l.ID)
	}
	l.Done(0)
}
