package sched

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Placement groups reserve bundles of resources on nodes (one hold per
// bundle in the node table); leases naming a group take their resources
// from its bundles instead of a node's free resources. A group that does not
// fit yet waits in creation order, and its bundles are pending demand.

// errGroupGone fails leases of a group that was removed or never existed.
var errGroupGone = errors.New("placement group removed")

// group is a placement group and what its bundles have left.
type group struct {
	pg *corev1.PlacementGroup
	// avail is each bundle's resources not leased out, once CREATED.
	avail []map[string]float64
	// changed is closed and replaced whenever the state changes.
	changed chan struct{}
}

// groupLease is a lease granted from a bundle.
type groupLease struct {
	group  string
	bundle int
	res    map[string]float64
}

func bundleHolder(pgID string, i int) string { return "pg:" + pgID + ":" + strconv.Itoa(i) }

// CreateGroup registers pg and reserves its bundles now or once they fit.
func (s *Scheduler) CreateGroup(pg *corev1.PlacementGroup) error {
	if pg.GetPlacementGroupId() == "" {
		return errors.New("placement_group_id is required")
	}
	if len(pg.Bundles) == 0 {
		return errors.New("bundles: a placement group needs at least one bundle")
	}
	for i, b := range pg.Bundles {
		positive := false
		for name, v := range b.Resources {
			if v < 0 {
				return fmt.Errorf("bundles[%d]: resource %q: amount %v is negative", i, name, v)
			}
			positive = positive || v > 0
		}
		if !positive {
			return fmt.Errorf("bundles[%d]: a bundle needs at least one resource with a positive amount", i)
		}
	}
	pg = proto.Clone(pg).(*corev1.PlacementGroup)
	pg.State = corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING
	for _, b := range pg.Bundles {
		b.NodeId = ""
	}
	s.gmu.Lock()
	if _, ok := s.groups[pg.PlacementGroupId]; ok {
		s.gmu.Unlock()
		return fmt.Errorf("placement group %s exists already", pg.PlacementGroupId)
	}
	g := &group{pg: pg, changed: make(chan struct{})}
	s.groups[pg.PlacementGroupId] = g
	s.groupOrder = append(s.groupOrder, pg.PlacementGroupId)
	if !s.placeLocked(g) {
		s.reportGroupLocked(g)
		s.opts.Logger.Info("Queued a placement group", "placementGroupID", pg.PlacementGroupId, "strategy", pg.Strategy.String(), "infeasible", pg.Infeasible)
	}
	s.gmu.Unlock()
	s.Kick()
	return nil
}

// WaitGroup returns the group once it is CREATED or REMOVED; notify hears
// every state it passes through until then.
func (s *Scheduler) WaitGroup(ctx context.Context, id string, notify func(*corev1.PlacementGroup) error) error {
	for {
		s.gmu.Lock()
		g, ok := s.groups[id]
		if !ok {
			s.gmu.Unlock()
			return fmt.Errorf("placement group %s does not exist", id)
		}
		pg := proto.Clone(g.pg).(*corev1.PlacementGroup)
		changed := g.changed
		s.gmu.Unlock()
		if err := notify(pg); err != nil {
			return err
		}
		if pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED || pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// RemoveGroup releases a group's bundles; leases still waiting for it fail.
// Work already running on its bundles goes on (Ray kills it; not here yet).
func (s *Scheduler) RemoveGroup(id string) error {
	s.gmu.Lock()
	g, ok := s.groups[id]
	if !ok {
		s.gmu.Unlock()
		return fmt.Errorf("placement group %s does not exist", id)
	}
	if g.pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
		s.gmu.Unlock()
		return nil
	}
	g.pg.State = corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED
	s.changedLocked(g)
	for i, b := range g.pg.Bundles {
		holder := bundleHolder(id, i)
		if b.NodeId != "" {
			s.opts.Cluster.Release(b.NodeId, holder)
			s.opts.Demand.Released(b.NodeId, holder)
		} else {
			s.opts.Demand.Withdraw(holder)
		}
	}
	s.opts.Demand.Withdraw("pg:" + id)
	for lid, l := range s.groupLeases {
		if l.group == id {
			delete(s.groupLeases, lid)
		}
	}
	s.gmu.Unlock()
	s.opts.Logger.Info("Removed a placement group", "placementGroupID", id)
	s.Kick()
	return nil
}

// Groups lists every group, in creation order.
func (s *Scheduler) Groups() []*corev1.PlacementGroup {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	out := make([]*corev1.PlacementGroup, 0, len(s.groupOrder))
	for _, id := range s.groupOrder {
		out = append(out, proto.Clone(s.groups[id].pg).(*corev1.PlacementGroup))
	}
	return out
}

func (s *Scheduler) changedLocked(g *group) {
	close(g.changed)
	g.changed = make(chan struct{})
}

// placePendingGroups tries the waiting groups, oldest first.
func (s *Scheduler) placePendingGroups() {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	for _, id := range s.groupOrder {
		g := s.groups[id]
		if !waiting(g.pg) {
			continue
		}
		if !s.placeLocked(g) {
			s.reportGroupLocked(g)
		}
	}
}

// waiting reports a group with bundles to place: new, or rescheduling
// bundles whose node died.
func waiting(pg *corev1.PlacementGroup) bool {
	return pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING ||
		pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_RESCHEDULING
}

// nodeGone puts the bundles of groups on a dead node back in the queue
// (their holds went with the node), as Ray reschedules lost bundles; the
// group's other bundles stay where they are and usable.
func (s *Scheduler) nodeGone(nodeID string) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	for _, id := range s.groupOrder {
		g := s.groups[id]
		if g.pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
			continue
		}
		lost := false
		for i, b := range g.pg.Bundles {
			if b.NodeId != nodeID {
				continue
			}
			lost = true
			s.opts.Demand.Released(nodeID, bundleHolder(id, i))
			b.NodeId = ""
			g.avail[i] = nil
			for lid, l := range s.groupLeases {
				if l.group == id && l.bundle == i {
					delete(s.groupLeases, lid)
				}
			}
		}
		if lost {
			g.pg.State = corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_RESCHEDULING
			s.changedLocked(g)
			s.reportGroupLocked(g)
			s.opts.Logger.Info("Rescheduling the bundles of a placement group on a dead node", "placementGroupID", id, "nodeID", nodeID)
		}
	}
}

// reportGroupLocked reports a waiting group's bundles as pending demand: one
// request of their sum for STRICT_PACK (they must share a node), else one
// per bundle.
func (s *Scheduler) reportGroupLocked(g *group) {
	g.pg.Infeasible = !s.groupFeasible(g.pg)
	kind := "ray_placement_group"
	if g.pg.Infeasible {
		kind += "_infeasible"
	}
	if g.pg.Strategy == corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_PACK && g.pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING {
		s.opts.Demand.SetPending("pg:"+g.pg.PlacementGroupId, kind, sumBundles(g.pg.Bundles), g.pg.Infeasible)
		return
	}
	for i, b := range g.pg.Bundles {
		if b.NodeId != "" {
			continue
		}
		s.opts.Demand.SetPending(bundleHolder(g.pg.PlacementGroupId, i), kind, b.Resources, g.pg.Infeasible)
	}
}

func sumBundles(bs []*corev1.Bundle) map[string]float64 {
	sum := map[string]float64{}
	for _, b := range bs {
		for k, v := range b.Resources {
			sum[k] += v
		}
	}
	return sum
}

// groupFeasible reports whether the alive nodes' totals could ever hold
// the group with its strategy.
func (s *Scheduler) groupFeasible(pg *corev1.PlacementGroup) bool {
	c := s.opts.Cluster
	switch pg.Strategy {
	case corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_PACK:
		return c.Feasible(sumBundles(pg.Bundles), "")
	case corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD:
		used := map[string]bool{}
		for _, b := range pg.Bundles {
			found := false
			for _, n := range s.aliveNodes() {
				if !used[n.NodeId] && c.Feasible(b.Resources, n.NodeId) {
					used[n.NodeId], found = true, true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	default:
		for _, b := range pg.Bundles {
			if !c.Feasible(b.Resources, "") {
				return false
			}
		}
		return true
	}
}

func (s *Scheduler) aliveNodes() []*gcsv1.Node {
	var out []*gcsv1.Node
	for _, n := range s.opts.Cluster.Nodes() {
		if n.State == gcsv1.NodeState_NODE_STATE_ALIVE {
			out = append(out, n)
		}
	}
	return out
}

// placeLocked reserves every bundle of g by its strategy, or none.
func (s *Scheduler) placeLocked(g *group) bool {
	nodes := s.aliveNodes()
	id := g.pg.PlacementGroupId
	// placed is what this attempt holds; kept are the bundles placed before
	// (a rescheduling group's survivors), which the strategy places next to.
	placed := make([]string, len(g.pg.Bundles))
	kept := map[string]bool{}
	keptNode := ""
	for _, b := range g.pg.Bundles {
		if b.NodeId != "" {
			kept[b.NodeId], keptNode = true, b.NodeId
		}
	}
	rollback := func() {
		for i, n := range placed {
			if n != "" {
				s.opts.Cluster.Release(n, bundleHolder(id, i))
				placed[i] = ""
			}
		}
	}
	hold := func(i int, nodeID string) bool {
		if _, err := s.opts.Cluster.Hold(bundleHolder(id, i), g.pg.Bundles[i].Resources, nodeID, ""); err != nil {
			return false
		}
		placed[i] = nodeID
		return true
	}
	allOn := func(nodeID string) bool {
		if keptNode != "" && nodeID != keptNode {
			return false
		}
		for i, b := range g.pg.Bundles {
			if b.NodeId != "" {
				continue
			}
			if !hold(i, nodeID) {
				rollback()
				return false
			}
		}
		return true
	}
	// each places the bundles one by one on the first node order(i) gives
	// that has room.
	each := func(order func(used map[string]bool, last string) []*gcsv1.Node) bool {
		used := maps.Clone(kept)
		last := keptNode
		for i, b := range g.pg.Bundles {
			if b.NodeId != "" {
				continue
			}
			ok := false
			for _, n := range order(used, last) {
				if hold(i, n.NodeId) {
					used[n.NodeId], last, ok = true, n.NodeId, true
					break
				}
			}
			if !ok {
				rollback()
				return false
			}
		}
		return true
	}
	unusedFirst := func(used map[string]bool, _ string) []*gcsv1.Node {
		var fresh, rest []*gcsv1.Node
		for _, n := range nodes {
			if used[n.NodeId] {
				rest = append(rest, n)
			} else {
				fresh = append(fresh, n)
			}
		}
		return append(fresh, rest...)
	}
	ok := false
	switch g.pg.Strategy {
	case corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_PACK:
		for _, n := range nodes {
			if ok = allOn(n.NodeId); ok {
				break
			}
		}
	case corev1.PlacementStrategy_PLACEMENT_STRATEGY_PACK:
		for _, n := range nodes {
			if ok = allOn(n.NodeId); ok {
				break
			}
		}
		if !ok {
			ok = each(func(_ map[string]bool, last string) []*gcsv1.Node {
				var first, rest []*gcsv1.Node
				for _, n := range nodes {
					if n.NodeId == last {
						first = append(first, n)
					} else {
						rest = append(rest, n)
					}
				}
				return append(first, rest...)
			})
		}
	case corev1.PlacementStrategy_PLACEMENT_STRATEGY_SPREAD:
		ok = each(unusedFirst)
	case corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD:
		ok = each(func(used map[string]bool, _ string) []*gcsv1.Node {
			var fresh []*gcsv1.Node
			for _, n := range nodes {
				if !used[n.NodeId] {
					fresh = append(fresh, n)
				}
			}
			return fresh
		})
	}
	if !ok {
		return false
	}
	if g.avail == nil {
		g.avail = make([]map[string]float64, len(g.pg.Bundles))
	}
	for i, b := range g.pg.Bundles {
		if placed[i] == "" {
			continue
		}
		b.NodeId = placed[i]
		g.avail[i] = maps.Clone(b.Resources)
		holder := bundleHolder(id, i)
		s.opts.Demand.Withdraw(holder)
		s.opts.Demand.Placed(b.NodeId, holder)
	}
	s.opts.Demand.Withdraw("pg:" + id)
	g.pg.State = corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED
	g.pg.Infeasible = false
	s.changedLocked(g)
	s.opts.Logger.Info("Placed a placement group", "placementGroupID", id, "strategy", g.pg.Strategy.String())
	return true
}

// checkGroupLease refuses a lease its group could never hold.
func (s *Scheduler) checkGroupLease(req *corev1.LeaseRequest) error {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	g, ok := s.groups[req.PlacementGroupId]
	if !ok || g.pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
		return fmt.Errorf("placement group %s does not exist or was removed", req.PlacementGroupId)
	}
	idx := int(req.BundleIndex)
	if idx >= len(g.pg.Bundles) || idx < -1 {
		return fmt.Errorf("bundle index %d is invalid for placement group %s with %d bundles", idx, req.PlacementGroupId, len(g.pg.Bundles))
	}
	for i, b := range g.pg.Bundles {
		if (idx == -1 || i == idx) && gcs.Fits(b.Resources, req.Resources) {
			return nil
		}
	}
	what := "any bundle"
	if idx >= 0 {
		what = "bundle " + strconv.Itoa(idx)
	}
	shapes := make([]string, 0, len(g.pg.Bundles))
	for _, b := range g.pg.Bundles {
		shapes = append(shapes, FormatResources(b.Resources))
	}
	return fmt.Errorf("the resource request %s of %s cannot fit into %s of placement group %s, whose bundles are %v",
		FormatResources(req.Resources), req.Description, what, req.PlacementGroupId, shapes)
}

// holdInGroup grants req from its group's bundles: gcs.ErrNoCapacity while
// the group is pending or its bundles are busy, errGroupGone once removed.
func (s *Scheduler) holdInGroup(req *corev1.LeaseRequest) (*gcsv1.Node, error) {
	s.gmu.Lock()
	g, ok := s.groups[req.PlacementGroupId]
	if !ok || g.pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
		s.gmu.Unlock()
		return nil, errGroupGone
	}
	if g.pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING {
		s.gmu.Unlock()
		return nil, gcs.ErrNoCapacity
	}
	for i, avail := range g.avail {
		if avail == nil {
			// Its node died; it waits to be placed again.
			continue
		}
		if req.BundleIndex >= 0 && int(req.BundleIndex) != i || !gcs.Fits(avail, req.Resources) {
			continue
		}
		if req.NodeId != "" && g.pg.Bundles[i].NodeId != req.NodeId {
			// Pinned (a blocked task taking its resources back where it runs).
			continue
		}
		for k, v := range req.Resources {
			avail[k] -= v
		}
		s.groupLeases[req.LeaseId] = groupLease{group: g.pg.PlacementGroupId, bundle: i, res: maps.Clone(req.Resources)}
		nodeID := g.pg.Bundles[i].NodeId
		s.gmu.Unlock()
		n, ok := s.opts.Cluster.Node(nodeID)
		if !ok {
			return nil, fmt.Errorf("the node %s of placement group %s is gone", nodeID, req.PlacementGroupId)
		}
		return n, nil
	}
	s.gmu.Unlock()
	return nil, gcs.ErrNoCapacity
}

// releaseGroupLease gives a bundle's lease back; false when leaseID is no
// group lease.
func (s *Scheduler) releaseGroupLease(leaseID string) bool {
	s.gmu.Lock()
	l, ok := s.groupLeases[leaseID]
	if ok {
		delete(s.groupLeases, leaseID)
		if g := s.groups[l.group]; g != nil && g.avail != nil && g.avail[l.bundle] != nil {
			for k, v := range l.res {
				g.avail[l.bundle][k] += v
			}
		}
	}
	s.gmu.Unlock()
	if ok {
		s.Kick()
	}
	return ok
}

// holdSpread places a SPREAD lease on the next alive node with room, in
// turn, so that consecutive leases land on different nodes.
func (s *Scheduler) holdSpread(req *corev1.LeaseRequest) (*gcsv1.Node, error) {
	nodes := s.aliveNodes()
	s.gmu.Lock()
	start := s.spreadNext
	s.gmu.Unlock()
	for k := range nodes {
		i := (start + k) % len(nodes)
		n, err := s.opts.Cluster.Hold(req.LeaseId, req.Resources, nodes[i].NodeId, "")
		if err == nil {
			s.gmu.Lock()
			s.spreadNext = i + 1
			s.gmu.Unlock()
			return n, nil
		}
	}
	return nil, gcs.ErrNoCapacity
}
