package plan

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// bin is capacity a bundle can be packed into: a registered node, a pod in flight (or one the
// operator has yet to create) counted at its group's full shape, or a host planned this round.
type bin struct {
	pod   string // the node's pod; empty for capacity not yet running
	group string
	// planned is set on hosts added this round.
	planned bool
	// avail is what pending demand may still take; total what requests may still take.
	avail, total Resources
	// usedByDemand and heldByRequest keep a node from being scaled down this round.
	usedByDemand, heldByRequest bool
}

type groupState struct {
	spec      *rayv1.WorkerGroupSpec
	shape     Resources
	hosts     int32
	min, max  int32
	base      int32 // the effective replicas the spec asks for: clamp(replicas or min, min, max)
	replicas  int32 // the decision's replicas as it is built
	suspended bool
	// live are the group's pods neither terminating nor named for deletion.
	live []Pod
	// keep are names from the spec's workersToDelete whose pods still exist.
	keep []string
	// added counts replicas added this round; served and requested count the pending and
	// requested bundles they were added for.
	added, served, requested int
	deletions                []Deletion
	notes                    []string
}

type state struct {
	in             Input
	groups         []*groupState
	byName         map[string]*groupState
	bins           []*bin
	nodes          map[string]*Node
	pending        int // pods not yet registered as Ray nodes, including those planned this round
	allowedPending int
	workerPods     int
	headTotal      Resources
	unmet          []Unmet
}

// Decide computes the decision for one observation. It fails only on an input the caller must not
// build (no cluster, duplicate group names).
func Decide(in Input) (Decision, error) {
	if in.Cluster == nil {
		return Decision{}, errors.New("input has no RayCluster")
	}
	s := &state{in: in, byName: map[string]*groupState{}, nodes: map[string]*Node{}}
	for i := range in.Nodes {
		n := &in.Nodes[i]
		s.nodes[n.Pod] = n
		if n.Head {
			s.headTotal = n.Total
		}
	}
	if err := s.buildGroups(); err != nil {
		return Decision{}, err
	}
	s.buildBins()
	s.allowedPending = math.MaxInt
	if upscalingMode(in.Cluster) == rayv1.UpscalingConservative {
		s.allowedPending = max(conservativeMinPending, len(in.Nodes))
	}
	for _, b := range sortedBundles(in.Requests) {
		s.placeRequest(b)
	}
	for _, b := range sortedBundles(in.Demand) {
		s.placeDemand(b)
	}
	for _, g := range s.groups {
		if g.suspended || g.added > 0 {
			continue
		}
		s.scaleDown(g)
		s.removeSurplus(g)
	}
	return s.decision(), nil
}

func upscalingMode(c *rayv1.RayCluster) rayv1.UpscalingMode {
	if o := c.Spec.AutoscalerOptions; o != nil && o.UpscalingMode != nil {
		return *o.UpscalingMode
	}
	return rayv1.UpscalingDefault
}

// IdleTimeout is the group's idle timeout: its own idleTimeoutSeconds, else
// autoscalerOptions.idleTimeoutSeconds, else Ray's 60 seconds.
func IdleTimeout(c *rayv1.RayCluster, g *rayv1.WorkerGroupSpec) time.Duration {
	if g.IdleTimeoutSeconds != nil {
		return time.Duration(*g.IdleTimeoutSeconds) * time.Second
	}
	if o := c.Spec.AutoscalerOptions; o != nil && o.IdleTimeoutSeconds != nil {
		return time.Duration(*o.IdleTimeoutSeconds) * time.Second
	}
	return DefaultIdleTimeout
}

func (s *state) buildGroups() error {
	existing := map[string]bool{}
	for _, p := range s.in.Pods {
		existing[p.Name] = true
	}
	for i := range s.in.Cluster.Spec.WorkerGroupSpecs {
		spec := &s.in.Cluster.Spec.WorkerGroupSpecs[i]
		if _, dup := s.byName[spec.GroupName]; dup {
			return fmt.Errorf("workerGroupSpecs[%d].groupName %q: duplicate group name", i, spec.GroupName)
		}
		g := &groupState{spec: spec, shape: s.in.Shapes[spec.GroupName], hosts: max(spec.NumOfHosts, 1), max: math.MaxInt32}
		if spec.MinReplicas != nil {
			g.min = max(*spec.MinReplicas, 0)
		}
		if spec.MaxReplicas != nil {
			g.max = max(*spec.MaxReplicas, g.min)
		}
		g.base = g.min
		if spec.Replicas != nil {
			g.base = min(max(*spec.Replicas, g.min), g.max)
		}
		g.replicas = g.base
		g.suspended = spec.Suspend != nil && *spec.Suspend
		named := map[string]bool{}
		for _, name := range spec.ScaleStrategy.WorkersToDelete {
			named[name] = true
			if existing[name] {
				g.keep = append(g.keep, name)
			}
		}
		for _, p := range s.in.Pods {
			if p.Group == spec.GroupName && p.State != PodDeleting && !named[p.Name] {
				g.live = append(g.live, p)
			}
		}
		slices.SortFunc(g.live, func(a, b Pod) int { return cmp.Compare(a.Name, b.Name) })
		s.groups = append(s.groups, g)
		s.byName[spec.GroupName] = g
	}
	return nil
}

// buildBins lists the capacity that exists or is on its way: the head, every registered worker
// node, and, per group, the hosts the spec asks for that have no Ray node yet.
func (s *state) buildBins() {
	for _, n := range s.in.Nodes {
		if n.Head {
			s.bins = append(s.bins, &bin{pod: n.Pod, avail: clone(n.Available), total: clone(n.Total)})
		}
	}
	for _, g := range s.groups {
		if g.suspended {
			continue
		}
		registered := 0
		for _, p := range g.live {
			if n, ok := s.nodes[p.Name]; ok && !n.Head {
				registered++
				s.bins = append(s.bins, &bin{pod: p.Name, group: g.spec.GroupName, avail: clone(n.Available), total: clone(n.Total)})
			}
		}
		want := int(g.base * g.hosts)
		s.workerPods += max(want, len(g.live))
		inFlight := max(want-registered, 0)
		s.pending += inFlight
		if g.shape == nil {
			continue
		}
		for range inFlight {
			s.bins = append(s.bins, &bin{group: g.spec.GroupName, avail: clone(g.shape), total: clone(g.shape)})
		}
	}
}

// placeRequest makes room for an explicit request against total capacity. Requests bypass the
// upscaling rate limit, as Ray's request_resources does.
func (s *state) placeRequest(b Resources) {
	for _, bn := range s.bins {
		if fits(bn.total, b) {
			subtract(bn.total, b)
			bn.heldByRequest = true
			if bn.planned {
				s.byName[bn.group].requested++
			}
			return
		}
	}
	g, why := s.pickGroup(b, false)
	if g == nil {
		s.unmet = append(s.unmet, s.unmetFor(b, "request_resources: "+why))
		return
	}
	first := s.addReplica(g)
	subtract(first.total, b)
	g.requested++
}

// placeDemand packs a pending bundle onto available capacity, adding a replica of the cheapest
// group that fits when nothing has room.
func (s *state) placeDemand(b Resources) {
	for _, bn := range s.bins {
		if fits(bn.avail, b) {
			subtract(bn.avail, b)
			bn.usedByDemand = true
			if bn.planned {
				s.byName[bn.group].served++
			}
			return
		}
	}
	g, why := s.pickGroup(b, true)
	if g == nil {
		s.unmet = append(s.unmet, s.unmetFor(b, why))
		return
	}
	first := s.addReplica(g)
	subtract(first.avail, b)
	first.usedByDemand = true
	g.served++
}

// unmetFor reports a bundle no group may be grown for.
func (s *state) unmetFor(b Resources, why string) Unmet {
	return Unmet{Bundle: clone(b), Reason: why, Infeasible: strings.Contains(why, infeasibleMarker)}
}

const infeasibleMarker = "no worker group's node shape can hold"

// pickGroup returns the cheapest group whose shape holds b and that may grow by one replica, or
// nil and the reason none may.
func (s *state) pickGroup(b Resources, rateLimited bool) (*groupState, string) {
	var candidates []*groupState
	var unknown []string
	for _, g := range s.groups {
		switch {
		case g.suspended:
		case g.shape == nil:
			unknown = append(unknown, g.spec.GroupName)
		case fits(g.shape, b):
			candidates = append(candidates, g)
		}
	}
	if len(candidates) == 0 {
		msg := fmt.Sprintf("%s %s", infeasibleMarker, b)
		if s.headTotal != nil && fits(s.headTotal, b) {
			// The head can run it once its own resources free up; that is waiting, not infeasible.
			return nil, fmt.Sprintf("only the head node can hold %s; it waits for the head's resources", b)
		}
		var shapes []string
		for _, g := range s.groups {
			if !g.suspended && g.shape != nil {
				shapes = append(shapes, g.spec.GroupName+" "+g.shape.String())
			}
		}
		if len(shapes) > 0 {
			msg += " (groups: " + strings.Join(shapes, "; ") + ")"
		}
		if len(unknown) > 0 {
			msg += fmt.Sprintf("; groups %s have no known node resources (set rayStartParams num-cpus, the group's resources or container limits)", strings.Join(unknown, ", "))
		}
		return nil, msg
	}
	slices.SortFunc(candidates, func(a, c *groupState) int { return compareCost(a, c, b) })
	var blocked []string
	for _, g := range candidates {
		switch {
		case g.replicas >= g.max:
			blocked = append(blocked, fmt.Sprintf("group %s is at maxReplicas %d", g.spec.GroupName, g.max))
		case s.in.MaxWorkers > 0 && s.workerPods+int(g.hosts) > s.in.MaxWorkers:
			blocked = append(blocked, fmt.Sprintf("group %s would exceed the cluster's %d max workers", g.spec.GroupName, s.in.MaxWorkers))
		case rateLimited && s.pending > 0 && s.pending+int(g.hosts) > s.allowedPending:
			blocked = append(blocked, fmt.Sprintf("group %s waits: upscalingMode Conservative allows %d pending pods and %d are pending", g.spec.GroupName, s.allowedPending, s.pending))
		default:
			return g, ""
		}
	}
	return nil, strings.Join(blocked, "; ")
}

// compareCost orders groups cheapest first for bundle b: a group that offers no special resource
// (GPUs, accelerators, custom) the bundle does not ask for, then the fewest GPUs, CPUs and memory.
func compareCost(a, c *groupState, b Resources) int {
	return cmp.Or(
		cmp.Compare(unaskedSpecial(a.shape, b), unaskedSpecial(c.shape, b)),
		cmp.Compare(a.shape["GPU"], c.shape["GPU"]),
		cmp.Compare(a.shape["CPU"], c.shape["CPU"]),
		cmp.Compare(a.shape["memory"], c.shape["memory"]),
		cmp.Compare(a.spec.GroupName, c.spec.GroupName),
	)
}

func unaskedSpecial(shape, b Resources) int {
	n := 0
	for k, v := range shape {
		switch k {
		case "CPU", "memory", "object_store_memory":
			continue
		}
		if v > 0 && b[k] <= 0 {
			n++
		}
	}
	return n
}

// addReplica grows g by one whole replica (numOfHosts pods) and returns its first host's bin.
func (s *state) addReplica(g *groupState) *bin {
	g.replicas++
	g.added++
	s.pending += int(g.hosts)
	s.workerPods += int(g.hosts)
	var first *bin
	for range g.hosts {
		bn := &bin{group: g.spec.GroupName, avail: clone(g.shape), total: clone(g.shape), planned: true}
		s.bins = append(s.bins, bn)
		if first == nil {
			first = bn
		}
	}
	return first
}

// unit is a replica: one pod, or the hosts of a multi-host replica.
type unit struct {
	key       string
	pods      []string
	idleSince time.Time // the latest of its hosts'; zero when some host is not removable
	removable bool
	noNode    bool // no host has registered a Ray node yet
}

func (s *state) units(g *groupState, timeout time.Duration) []*unit {
	byKey := map[string]*unit{}
	var order []*unit
	for _, p := range g.live {
		key := p.Name
		if g.hosts > 1 && p.Replica != "" {
			key = p.Replica
		}
		u, ok := byKey[key]
		if !ok {
			u = &unit{key: key, removable: true, noNode: true}
			byKey[key] = u
			order = append(order, u)
		}
		u.pods = append(u.pods, p.Name)
		ok, since := s.podIdle(p.Name, timeout)
		if s.nodes[p.Name] != nil {
			u.noNode = false
		}
		if !ok {
			u.removable = false
		}
		if since.After(u.idleSince) {
			u.idleSince = since
		}
	}
	for _, u := range order {
		if g.hosts > 1 && u.key == u.pods[0] {
			// Without the replica-name label the pod's replica is unknown; removing one host
			// alone would break its replica.
			u.removable = false
			continue
		}
		if g.hosts > 1 && len(u.pods) != int(g.hosts) {
			u.removable = false
		}
	}
	return order
}

// podIdle reports whether the pod's node may be removed, and since when it is idle: idle at least
// timeout with nothing on it and nothing this round's packing put there.
func (s *state) podIdle(pod string, timeout time.Duration) (bool, time.Time) {
	n, ok := s.nodes[pod]
	if !ok || n.Busy || n.IdleSince.IsZero() || !fits(n.Available, n.Total) {
		return false, time.Time{}
	}
	for _, b := range s.bins {
		if b.pod == pod && (b.usedByDemand || b.heldByRequest) {
			return false, n.IdleSince
		}
	}
	return s.in.Now.Sub(n.IdleSince) >= timeout, n.IdleSince
}

// scaleDown names the group's idle replicas for deletion, longest idle first, never going below
// minReplicas.
func (s *state) scaleDown(g *groupState) {
	timeout := IdleTimeout(s.in.Cluster, g.spec)
	var idle []*unit
	for _, u := range s.units(g, timeout) {
		if u.removable {
			idle = append(idle, u)
		}
	}
	if len(idle) == 0 {
		return
	}
	slices.SortFunc(idle, func(a, b *unit) int {
		return cmp.Or(a.idleSince.Compare(b.idleSince), cmp.Compare(a.key, b.key))
	})
	removed := 0
	for _, u := range idle {
		if g.replicas <= g.min {
			g.notes = append(g.notes, fmt.Sprintf("%d idle replicas kept at minReplicas %d", len(idle)-removed, g.min))
			break
		}
		g.replicas--
		removed++
		reason := fmt.Sprintf("idle for %s, longer than the idle timeout %s", s.in.Now.Sub(u.idleSince).Round(time.Second), timeout)
		for _, p := range u.pods {
			g.deletions = append(g.deletions, Deletion{Pod: p, Reason: reason})
		}
	}
	if removed > 0 {
		g.notes = append(g.notes, fmt.Sprintf("removed %d idle replicas", removed))
	}
}

// removeSurplus names pods beyond the replicas the spec asks for, as when a user lowers replicas:
// pods without a Ray node first, then idle ones. Pods with work are never named.
func (s *state) removeSurplus(g *groupState) {
	deleted := map[string]bool{}
	for _, d := range g.deletions {
		deleted[d.Pod] = true
	}
	var remaining []*unit
	for _, u := range s.units(g, 0) {
		if !deleted[u.pods[0]] {
			remaining = append(remaining, u)
		}
	}
	surplus := len(remaining) - int(g.replicas)
	if surplus <= 0 {
		return
	}
	var choosable []*unit
	for _, u := range remaining {
		if u.noNode || u.removable {
			choosable = append(choosable, u)
		}
	}
	slices.SortFunc(choosable, func(a, b *unit) int {
		if a.noNode != b.noNode {
			if a.noNode {
				return -1
			}
			return 1
		}
		return cmp.Or(a.idleSince.Compare(b.idleSince), cmp.Compare(a.key, b.key))
	})
	named := 0
	for _, u := range choosable {
		if named == surplus {
			break
		}
		named++
		for _, p := range u.pods {
			g.deletions = append(g.deletions, Deletion{Pod: p, Reason: fmt.Sprintf("surplus over the %d replicas the spec asks for", g.replicas)})
		}
	}
	if named < surplus {
		g.notes = append(g.notes, fmt.Sprintf("%d surplus replicas over %d have work and are kept", surplus-named, g.replicas))
	}
}

func (s *state) decision() Decision {
	d := Decision{Unmet: s.unmet}
	for _, g := range s.groups {
		gd := GroupDecision{Group: g.spec.GroupName, Replicas: g.replicas, Deletions: g.deletions}
		gd.WorkersToDelete = slices.Clone(g.keep)
		for _, del := range g.deletions {
			gd.WorkersToDelete = append(gd.WorkersToDelete, del.Pod)
		}
		if g.suspended {
			gd.Replicas, gd.WorkersToDelete = g.base, g.spec.ScaleStrategy.WorkersToDelete
			gd.Reason = "suspended: left alone"
			d.Groups = append(d.Groups, gd)
			continue
		}
		replicasChanged := g.replicas != g.base
		listChanged := !slices.Equal(gd.WorkersToDelete, g.spec.ScaleStrategy.WorkersToDelete)
		gd.Changed = replicasChanged || listChanged
		if !replicasChanged && g.spec.Replicas != nil {
			// Leave a value outside [min, max] as the user wrote it; the operator clamps it.
			gd.Replicas = *g.spec.Replicas
		}
		var reasons []string
		if g.added > 0 {
			reasons = append(reasons, fmt.Sprintf("scale up from %d to %d replicas for %d pending and %d requested bundles", g.base, g.replicas, g.served, g.requested))
		}
		if dropped := len(g.spec.ScaleStrategy.WorkersToDelete) - len(g.keep); dropped > 0 {
			reasons = append(reasons, fmt.Sprintf("%d deleted pods cleared from workersToDelete", dropped))
		}
		reasons = append(reasons, g.notes...)
		if g.added == 0 && len(g.deletions) > 0 && g.replicas != g.base {
			reasons = append(reasons, fmt.Sprintf("scale down from %d to %d replicas", g.base, g.replicas))
		}
		if len(reasons) == 0 {
			reasons = append(reasons, "no change")
		}
		gd.Reason = strings.Join(reasons, "; ")
		d.Groups = append(d.Groups, gd)
	}
	return d
}

func clone(r Resources) Resources {
	if r == nil {
		return Resources{}
	}
	return maps.Clone(r)
}

// sortedBundles orders bundles largest first (GPUs, then CPUs, then memory), the usual
// first-fit-decreasing order that packs tighter than arrival order.
func sortedBundles(bs []Resources) []Resources {
	out := slices.Clone(bs)
	slices.SortStableFunc(out, func(a, b Resources) int {
		return cmp.Or(
			cmp.Compare(b["GPU"], a["GPU"]),
			cmp.Compare(b["CPU"], a["CPU"]),
			cmp.Compare(b["memory"], a["memory"]),
			cmp.Compare(a.String(), b.String()),
		)
	})
	return out
}
