package gcs

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// AutoscalingOptions configures an AutoscalingState.
type AutoscalingOptions struct {
	Clock clock.PassiveClock
	// ProcessKinds are the process kinds whose events mark a node busy, so that a process
	// reserving no resources (a job driver without entrypoint_num_cpus) still keeps its node
	// from being scaled down. The head passes the job and Serve replica kinds.
	ProcessKinds []string
}

// AutoscalingState keeps what the cluster autoscaler reads from the head: per node, since when it
// has been idle, and the pending demand (placements that found no capacity) plus the standing
// explicit requests (Ray's request_resources).
//
// Placement code reports demand by placing through PlaceProcess here instead of on the Server, and
// withdraws demand it gives up on (a job stopped while pending) with Withdraw.
type AutoscalingState struct {
	srv  *Server
	opts AutoscalingOptions

	mu sync.Mutex
	// idleSince holds alive nodes with nothing placed on them.
	idleSince map[string]time.Time
	// running counts, per node, the processes of ProcessKinds that run there.
	running  map[string]map[string]bool
	pending  map[string]*gcsv1.PendingDemand
	requests []map[string]float64
}

// NewAutoscalingState starts tracking srv's nodes and processes.
func NewAutoscalingState(srv *Server, opts AutoscalingOptions) *AutoscalingState {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	a := &AutoscalingState{
		srv: srv, opts: opts,
		idleSince: map[string]time.Time{},
		running:   map[string]map[string]bool{},
		pending:   map[string]*gcsv1.PendingDemand{},
	}
	srv.OnNodeEvent(a.onNode)
	for _, kind := range opts.ProcessKinds {
		srv.OnProcessEvent(kind, a.onProcess)
	}
	for _, n := range srv.Nodes() {
		a.onNode(n)
	}
	return a
}

// onNode updates idleness from a node snapshot: a node is idle while its available resources
// equal its total and no tracked process runs on it.
func (a *AutoscalingState) onNode(n *gcsv1.Node) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		delete(a.idleSince, n.NodeId)
		delete(a.running, n.NodeId)
		return
	}
	a.setIdleLocked(n.NodeId, Fits(n.ResourcesAvailable, n.ResourcesTotal) && len(a.running[n.NodeId]) == 0)
}

func (a *AutoscalingState) setIdleLocked(nodeID string, idle bool) {
	_, was := a.idleSince[nodeID]
	switch {
	case idle && !was:
		a.idleSince[nodeID] = a.opts.Clock.Now()
	case !idle:
		delete(a.idleSince, nodeID)
	}
}

func (a *AutoscalingState) onProcess(nodeID string, st *gcsv1.ProcessStatus) {
	id := st.GetSpec().GetProcessId()
	a.mu.Lock()
	// Any event means the process was placed, so it is no longer pending.
	delete(a.pending, id)
	procs := a.running[nodeID]
	if st.State == gcsv1.ProcessState_PROCESS_STATE_RUNNING {
		if procs == nil {
			procs = map[string]bool{}
			a.running[nodeID] = procs
		}
		procs[id] = true
	} else {
		delete(procs, id)
	}
	a.mu.Unlock()
	// Re-evaluate against the node's resources, which the Server updated before calling us.
	if n, ok := a.srv.Node(nodeID); ok {
		a.onNode(n)
	}
}

// PlaceProcess places p on the Server. When nothing has capacity, the placement becomes pending
// demand until a later call places it or Withdraw drops it.
func (a *AutoscalingState) PlaceProcess(p Placement) (*gcsv1.Node, error) {
	n, err := a.srv.PlaceProcess(p)
	id := p.Spec.GetProcessId()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err == nil:
		delete(a.pending, id)
		if n != nil {
			// The node has work from now on, even before the agent reports it running.
			a.setIdleLocked(n.NodeId, false)
		}
	case errors.Is(err, ErrNoCapacity):
		if _, ok := a.pending[id]; !ok {
			a.pending[id] = &gcsv1.PendingDemand{
				Id: id, Kind: p.Spec.GetKind(), Resources: maps.Clone(p.Spec.GetResources()),
				SinceMs: a.opts.Clock.Now().UnixMilli(),
			}
		}
	}
	return n, err
}

// Withdraw drops the pending demand of a placement its owner gave up on.
func (a *AutoscalingState) Withdraw(processID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, processID)
}

// SetRequests replaces the standing explicit requests; an empty list withdraws them. Every amount
// must be a finite non-negative number.
func (a *AutoscalingState) SetRequests(bundles []map[string]float64) error {
	for i, b := range bundles {
		for k, v := range b {
			if k == "" {
				return fmt.Errorf("bundles[%d]: empty resource name", i)
			}
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("bundles[%d].%s: %v is not a non-negative number", i, k, v)
			}
		}
	}
	out := make([]map[string]float64, 0, len(bundles))
	for _, b := range bundles {
		out = append(out, maps.Clone(b))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = out
	return nil
}

// ClusterState is the autoscaler's view: alive nodes, their activity, pending demand sorted by
// age, and the standing requests.
func (a *AutoscalingState) ClusterState() *gcsv1.GetClusterStateResponse {
	nodes := a.srv.Nodes()
	out := &gcsv1.GetClusterStateResponse{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range nodes {
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
			continue
		}
		out.Nodes = append(out.Nodes, n)
		act := &gcsv1.NodeActivity{NodeId: n.NodeId, RunningProcesses: int32(len(a.running[n.NodeId])), Draining: a.srv.Draining(n.NodeId)}
		if t, ok := a.idleSince[n.NodeId]; ok {
			act.IdleSinceMs = t.UnixMilli()
		}
		out.Activity = append(out.Activity, act)
	}
	for _, p := range a.pending {
		out.Pending = append(out.Pending, &gcsv1.PendingDemand{Id: p.Id, Kind: p.Kind, Resources: maps.Clone(p.Resources), SinceMs: p.SinceMs})
	}
	slices.SortFunc(out.Pending, func(x, y *gcsv1.PendingDemand) int {
		return cmp.Or(cmp.Compare(x.SinceMs, y.SinceMs), cmp.Compare(x.Id, y.Id))
	})
	for _, r := range a.requests {
		out.Requested = append(out.Requested, &gcsv1.ResourceBundle{Resources: maps.Clone(r)})
	}
	return out
}

// DemandReportingServer is the Server with placements routed through the autoscaling state, so
// whatever places processes through it (the job manager, the Serve controller) reports the
// placements that find no capacity as pending demand. It is what the head hands them as their
// cluster when autoscaling is on.
type DemandReportingServer struct {
	*Server
	state *AutoscalingState
}

// Cluster returns the Server with placements reporting demand here.
func (a *AutoscalingState) Cluster() DemandReportingServer {
	return DemandReportingServer{Server: a.srv, state: a}
}

// PlaceProcess places through the autoscaling state.
func (d DemandReportingServer) PlaceProcess(p Placement) (*gcsv1.Node, error) {
	return d.state.PlaceProcess(p)
}
