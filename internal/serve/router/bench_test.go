package router

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAssignDone is one routed call: the pick (power of two choices
// over replicas with room, local ones first) and the lease's release. Run
// with -benchmem: the pick itself allocates nothing, so what shows is the
// Lease.
func BenchmarkAssignDone(b *testing.B) {
	for _, n := range []int{1, 4, 32} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			r := New(Options{LocalNodeID: "node-a"})
			reps := make([]Replica, n)
			for i := range reps {
				node := "node-a"
				if i%2 == 1 {
					node = "node-b"
				}
				reps[i] = Replica{ID: fmt.Sprintf("replica-%d", i), NodeID: node}
			}
			r.Update(Config{Replicas: reps, MaxOngoingRequests: 100, MaxQueuedRequests: -1})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				l, err := r.AssignCall(ctx, Call{})
				if err != nil {
					b.Fatal(err)
				}
				l.Done(-1)
			}
		})
	}
}

// TestAssignDoesNotAllocateForThePick pins the allocation-free pick: only
// the Lease a routed call returns is allocated.
func TestAssignDoesNotAllocateForThePick(t *testing.T) {
	r := New(Options{LocalNodeID: "node-a"})
	r.Update(Config{Replicas: []Replica{{ID: "a", NodeID: "node-a"}, {ID: "b", NodeID: "node-a"}, {ID: "c", NodeID: "node-b"}}, MaxOngoingRequests: 100, MaxQueuedRequests: -1})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		l, err := r.AssignCall(ctx, Call{})
		if err != nil {
			t.Fatal(err)
		}
		l.Done(-1)
	})
	if allocs > 2 {
		t.Fatalf("a routed call allocates %.0f objects, want at most 2 (the Lease and its release)", allocs)
	}
}
