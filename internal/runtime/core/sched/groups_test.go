package sched

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"

	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
)

func cpuBundles(cpus ...float64) []*corev1.Bundle {
	out := make([]*corev1.Bundle, 0, len(cpus))
	for _, c := range cpus {
		out = append(out, &corev1.Bundle{Resources: map[string]float64{"CPU": c}})
	}
	return out
}

func groupOf(t *testing.T, s *Scheduler, id string) *corev1.PlacementGroup {
	t.Helper()
	for _, pg := range s.Groups() {
		if pg.PlacementGroupId == id {
			return pg
		}
	}
	t.Fatalf("placement group %s not listed", id)
	return nil
}

func bundleNodes(pg *corev1.PlacementGroup) []string {
	out := make([]string, 0, len(pg.Bundles))
	for _, b := range pg.Bundles {
		out = append(out, b.NodeId)
	}
	return out
}

func TestGroupStrategiesPlaceBundles(t *testing.T) {
	_, s := newCluster(t, 4, 4, 4)
	for _, tc := range []struct {
		id       string
		strategy corev1.PlacementStrategy
		cpus     []float64
		check    func(nodes []string) bool
	}{
		{"pack", corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_PACK, []float64{1, 1}, func(n []string) bool { return n[0] == n[1] }},
		{"spread", corev1.PlacementStrategy_PLACEMENT_STRATEGY_SPREAD, []float64{0.5, 0.5}, func(n []string) bool { return n[0] != n[1] }},
		{"strict-spread", corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD, []float64{0.5, 0.5, 0.5}, func(n []string) bool {
			return n[0] != n[1] && n[1] != n[2] && n[0] != n[2]
		}},
	} {
		if err := s.CreateGroup(&corev1.PlacementGroup{PlacementGroupId: tc.id, Strategy: tc.strategy, Bundles: cpuBundles(tc.cpus...)}); err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		pg := groupOf(t, s, tc.id)
		if pg.State != corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED || !tc.check(bundleNodes(pg)) {
			t.Errorf("%s: state %v, bundles on %v", tc.id, pg.State, bundleNodes(pg))
		}
	}
}

func TestGroupTooWideWaitsInfeasibleAndIsDemand(t *testing.T) {
	_, s := newCluster(t, 2, 2)
	if err := s.CreateGroup(&corev1.PlacementGroup{PlacementGroupId: "wide", Strategy: corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD, Bundles: cpuBundles(1, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	pg := groupOf(t, s, "wide")
	if pg.State != corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING || !pg.Infeasible {
		t.Fatalf("state %v infeasible %v, want PENDING and infeasible", pg.State, pg.Infeasible)
	}
	d := s.Demand()
	if len(d) != 3 || !d[0].Infeasible || !strings.HasPrefix(d[0].LeaseId, "pg:wide:") {
		t.Errorf("demand = %v, want the group's 3 bundles, infeasible", d)
	}
	if err := s.RemoveGroup("wide"); err != nil {
		t.Fatal(err)
	}
	if d := s.Demand(); len(d) != 0 {
		t.Errorf("demand after removal = %v, want none", d)
	}
}

func TestLeasesComeFromTheirBundle(t *testing.T) {
	srv, s := newCluster(t, 2, 2)
	if err := s.CreateGroup(&corev1.PlacementGroup{PlacementGroupId: "g", Strategy: corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD, Bundles: cpuBundles(1, 1)}); err != nil {
		t.Fatal(err)
	}
	pg := groupOf(t, s, "g")
	ctx := context.Background()
	req := func(id string, cpu float64, idx int32) *corev1.LeaseRequest {
		return &corev1.LeaseRequest{LeaseId: id, Resources: map[string]float64{"CPU": cpu}, PlacementGroupId: "g", BundleIndex: idx, Description: id}
	}
	n, err := s.Lease(ctx, req("task:1", 1, 1), func(*corev1.LeaseEvent) error { return nil })
	if err != nil || n.NodeId != pg.Bundles[1].NodeId {
		t.Fatalf("lease in bundle 1 = %v, %v; want node %s", n, err, pg.Bundles[1].NodeId)
	}
	if _, err := s.Lease(ctx, req("task:2", 2, -1), nil); err == nil || !strings.Contains(err.Error(), "cannot fit into any bundle") {
		t.Errorf("a lease larger than every bundle: %v, want refused", err)
	}
	// Bundle 1 is busy: a second lease there waits, and fails when the group goes.
	events := make(chan *corev1.LeaseEvent, 1)
	errs := make(chan error, 1)
	go func() {
		_, err := s.Lease(ctx, req("task:3", 1, 1), func(ev *corev1.LeaseEvent) error { events <- ev; return nil })
		errs <- err
	}()
	if ev := <-events; ev.State != corev1.LeaseState_LEASE_STATE_PENDING {
		t.Fatalf("event %v, want PENDING", ev)
	}
	if err := s.RemoveGroup("g"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if err == nil {
			t.Error("a lease of a removed group was granted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting lease did not fail when its group was removed")
	}
	for _, node := range srv.Nodes() {
		if node.ResourcesAvailable["CPU"] != 2 {
			t.Errorf("node %s has %v CPU free after the group was removed, want 2", node.NodeId, node.ResourcesAvailable["CPU"])
		}
	}
}

func TestSpreadLeasesTakeTurns(t *testing.T) {
	_, s := newCluster(t, 4, 4)
	seen := map[string]bool{}
	for _, id := range []string{"task:1", "task:2"} {
		n, err := s.Lease(context.Background(), &corev1.LeaseRequest{LeaseId: id, Resources: map[string]float64{"CPU": 1}, Spread: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		seen[n.NodeId] = true
	}
	if len(seen) != 2 {
		t.Errorf("two SPREAD leases landed on %v, want two nodes", seen)
	}
}

func TestBundlesOfADeadNodeArePlacedAgain(t *testing.T) {
	srv, s := newCluster(t, 2, 2, 2)
	if err := s.CreateGroup(&corev1.PlacementGroup{PlacementGroupId: "g", Strategy: corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD, Bundles: cpuBundles(1, 1)}); err != nil {
		t.Fatal(err)
	}
	before := bundleNodes(groupOf(t, s, "g"))
	if err := srv.UnregisterNode(context.Background(), before[1], "lost"); err != nil {
		t.Fatal(err)
	}
	var pg *corev1.PlacementGroup
	gomega.NewWithT(t).Eventually(func() bool {
		pg = groupOf(t, s, "g")
		return pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED && pg.Bundles[1].NodeId != before[1]
	}).WithTimeout(10*time.Second).Should(gomega.BeTrue(), "bundle 1 placed again")
	after := bundleNodes(pg)
	if pg.State != corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED || after[0] != before[0] || after[1] == before[1] || after[1] == after[0] || after[1] == "" {
		t.Fatalf("after node %s died: state %v, bundles %v (were %v); want bundle 1 alone moved to the third node", before[1], pg.State, after, before)
	}
	// A lease in the moved bundle lands on its new node.
	n, err := s.Lease(context.Background(), &corev1.LeaseRequest{LeaseId: "task:1", Resources: map[string]float64{"CPU": 1}, PlacementGroupId: "g", BundleIndex: 1}, nil)
	if err != nil || n.NodeId != after[1] {
		t.Errorf("lease in bundle 1 = %v, %v; want node %s", n, err, after[1])
	}
}
