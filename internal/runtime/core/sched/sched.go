// Package sched is the head's placement of Ray core tasks and actors: a
// node agent asks for a resource lease, the scheduler reserves the
// resources on a node with room (through the control service's node table,
// which Serve replicas and job entrypoints share) or queues the request
// until one has room. The queue is the cluster's pending demand; a request
// no alive node could ever hold is reported infeasible but stays queued,
// since a node that fits may still join (the autoscaler's job).
package sched

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Cluster is the node table the scheduler reserves resources in;
// *gcs.Server implements it.
type Cluster interface {
	Hold(holderID string, resources map[string]float64, nodeID, preferred string) (*gcsv1.Node, error)
	Release(nodeID, holderID string)
	Feasible(resources map[string]float64, nodeID string) bool
	OnNodeEvent(fn gcs.NodeEventFunc)
	Nodes() []*gcsv1.Node
	Node(id string) (*gcsv1.Node, bool)
}

// DemandReporter is told what waits in the queue and what holds resources,
// so the cluster autoscaler sees queued requests as pending demand and nodes
// running tasks or actors as busy. *gcs.AutoscalingState implements it.
type DemandReporter interface {
	// SetPending records or updates a queued request; calling it again for
	// the same id keeps the time it started waiting.
	SetPending(id, kind string, resources map[string]float64, infeasible bool)
	// Withdraw drops a queued request that will not be placed.
	Withdraw(id string)
	// Placed records that id holds resources on nodeID (and left the queue).
	Placed(nodeID, id string)
	// Released records that id no longer holds anything on nodeID.
	Released(nodeID, id string)
}

// Options configures a Scheduler.
type Options struct {
	Cluster Cluster
	// Demand, when set, is kept up to date with the queue and the leases.
	Demand DemandReporter
	Logger logr.Logger
}

// noDemand is the DemandReporter of a scheduler nobody reads demand from.
type noDemand struct{}

func (noDemand) SetPending(string, string, map[string]float64, bool) {}
func (noDemand) Withdraw(string)                                     {}
func (noDemand) Placed(string, string)                               {}
func (noDemand) Released(string, string)                             {}

// DemandKind is the kind a lease is reported under: "ray_task" or
// "ray_actor" after its id's prefix, with "_infeasible" appended while no
// alive node could ever hold it.
func DemandKind(leaseID string, infeasible bool) string {
	kind := "ray_task"
	if strings.HasPrefix(leaseID, "actor:") {
		kind = "ray_actor"
	}
	if infeasible {
		kind += "_infeasible"
	}
	return kind
}

type pending struct {
	req *corev1.LeaseRequest
	// granted receives the node, or nil with err set when the request failed.
	granted chan *gcsv1.Node
	err     error
	// done is set once granted or withdrawn, under the scheduler's lock.
	done bool
}

// Scheduler queues and grants leases.
type Scheduler struct {
	opts  Options
	kick  chan struct{}
	mu    sync.Mutex
	queue []*pending

	// gmu guards the placement groups (taken after mu, never before).
	gmu         sync.Mutex
	groups      map[string]*group
	groupOrder  []string
	groupLeases map[string]groupLease
	spreadNext  int
}

// New returns a Scheduler that re-tries its queue whenever a node changes.
func New(opts Options) *Scheduler {
	if opts.Demand == nil {
		opts.Demand = noDemand{}
	}
	s := &Scheduler{opts: opts, kick: make(chan struct{}, 1), groups: map[string]*group{}, groupLeases: map[string]groupLease{}}
	opts.Cluster.OnNodeEvent(func(n *gcsv1.Node) {
		if n.State == gcsv1.NodeState_NODE_STATE_DEAD {
			s.nodeGone(n.NodeId)
		}
		s.Kick()
	})
	return s
}

// Register adds the Scheduler gRPC service to g.
func (s *Scheduler) Register(g grpc.ServiceRegistrar) {
	corev1.RegisterSchedulerServer(g, &service{s: s})
}

// Kick makes Run try the queue again.
func (s *Scheduler) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run grants queued requests as room appears, until ctx is done.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
			s.drain()
		}
	}
}

// drain grants every queued request that fits now, oldest first.
func (s *Scheduler) drain() {
	s.placePendingGroups()
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.queue[:0]
	for _, p := range s.queue {
		if p.done {
			continue
		}
		node, err := s.hold(p.req)
		if errors.Is(err, gcs.ErrNoCapacity) {
			kept = append(kept, p)
			// A node joining or leaving can change whether it could ever fit.
			s.reportPending(p.req)
			continue
		}
		p.done = true
		if err != nil {
			s.opts.Demand.Withdraw(p.req.LeaseId)
			p.err = err
			p.granted <- nil
			continue
		}
		s.placed(node.NodeId, p.req)
		p.granted <- node
	}
	clear(s.queue[len(kept):])
	s.queue = kept
}

// Lease reserves resources for req, waiting until they fit. notify gets
// PENDING or INFEASIBLE once when the request has to wait. Cancelling ctx
// withdraws the request.
func (s *Scheduler) Lease(ctx context.Context, req *corev1.LeaseRequest, notify func(*corev1.LeaseEvent) error) (*gcsv1.Node, error) {
	if req.GetLeaseId() == "" {
		return nil, errors.New("lease_id is required")
	}
	for name, v := range req.Resources {
		if v < 0 {
			return nil, fmt.Errorf("resource %q: amount %v is negative", name, v)
		}
	}
	if req.PlacementGroupId != "" {
		if err := s.checkGroupLease(req); err != nil {
			return nil, err
		}
	}
	node, err := s.hold(req)
	if err == nil {
		s.placed(node.NodeId, req)
		return node, nil
	}
	if !errors.Is(err, gcs.ErrNoCapacity) {
		return nil, err
	}
	p := &pending{req: req, granted: make(chan *gcsv1.Node, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, p)
	s.reportPending(req)
	s.mu.Unlock()
	// Room may have appeared between the first try and queueing.
	s.Kick()
	ev := &corev1.LeaseEvent{State: corev1.LeaseState_LEASE_STATE_PENDING}
	if req.PlacementGroupId == "" && !s.opts.Cluster.Feasible(req.Resources, req.NodeId) {
		ev = &corev1.LeaseEvent{State: corev1.LeaseState_LEASE_STATE_INFEASIBLE, Message: InfeasibleMessage(req)}
		s.opts.Logger.Info("Queued an infeasible request", "leaseID", req.LeaseId, "resources", req.Resources)
	}
	if err := notify(ev); err != nil {
		s.withdraw(p)
		return nil, err
	}
	select {
	case node := <-p.granted:
		if node == nil {
			return nil, p.err
		}
		return node, nil
	case <-ctx.Done():
		if s.withdraw(p) {
			return nil, ctx.Err()
		}
		// Granted while withdrawing: give the resources back.
		if node := <-p.granted; node != nil {
			s.Release(node.NodeId, req.LeaseId)
		}
		return nil, ctx.Err()
	}
}

// withdraw removes p from the queue; false means it was granted already.
func (s *Scheduler) withdraw(p *pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.done {
		return false
	}
	p.done = true
	s.opts.Demand.Withdraw(p.req.LeaseId)
	return true
}

// reportPending tells the demand reporter that req waits; called under s.mu
// so a grant or withdrawal cannot be overtaken by a stale report.
func (s *Scheduler) reportPending(req *corev1.LeaseRequest) {
	if req.PlacementGroupId != "" {
		// Its resources are reserved already: the group's bundles.
		return
	}
	infeasible := !s.opts.Cluster.Feasible(req.Resources, req.NodeId)
	s.opts.Demand.SetPending(req.LeaseId, DemandKind(req.LeaseId, infeasible), req.Resources, infeasible)
}

// Release returns a granted lease.
func (s *Scheduler) Release(nodeID, leaseID string) {
	if s.releaseGroupLease(leaseID) {
		return
	}
	s.opts.Cluster.Release(nodeID, leaseID)
	s.opts.Demand.Released(nodeID, leaseID)
}

// Demand lists the queued requests, oldest first.
func (s *Scheduler) Demand() []*corev1.Demand {
	s.mu.Lock()
	reqs := make([]*corev1.LeaseRequest, 0, len(s.queue))
	for _, p := range s.queue {
		if !p.done {
			reqs = append(reqs, p.req)
		}
	}
	s.mu.Unlock()
	out := make([]*corev1.Demand, 0, len(reqs))
	for _, pg := range s.Groups() {
		if !waiting(pg) {
			continue
		}
		for i, b := range pg.Bundles {
			if b.NodeId != "" {
				continue
			}
			out = append(out, &corev1.Demand{LeaseId: bundleHolder(pg.PlacementGroupId, i), Resources: b.Resources,
				Infeasible: pg.Infeasible, Description: "placement group " + pg.PlacementGroupId})
		}
	}
	for _, r := range reqs {
		if r.PlacementGroupId != "" {
			continue
		}
		out = append(out, &corev1.Demand{
			LeaseId:     r.LeaseId,
			Resources:   r.Resources,
			Infeasible:  !s.opts.Cluster.Feasible(r.Resources, r.NodeId),
			Description: r.Description,
		})
	}
	return out
}

// hold tries to grant req now: from its placement group's bundles, on the
// next node in turn for SPREAD, else on a node with room.
func (s *Scheduler) hold(req *corev1.LeaseRequest) (*gcsv1.Node, error) {
	switch {
	case req.PlacementGroupId != "":
		return s.holdInGroup(req)
	case req.Spread && req.NodeId == "":
		return s.holdSpread(req)
	}
	return s.opts.Cluster.Hold(req.LeaseId, req.Resources, req.NodeId, req.PreferredNodeId)
}

// placed reports a granted lease; a group's leases use resources its
// bundles already reported.
func (s *Scheduler) placed(nodeID string, req *corev1.LeaseRequest) {
	if req.PlacementGroupId == "" {
		s.opts.Demand.Placed(nodeID, req.LeaseId)
	}
}

// InfeasibleMessage words an infeasible request the way Ray's warning does.
func InfeasibleMessage(req *corev1.LeaseRequest) string {
	id := req.Description
	if id == "" {
		id = req.LeaseId
	}
	return fmt.Sprintf("The actor or task with ID %s cannot be scheduled right now. It requires %s for placement, "+
		"however the cluster currently cannot provide the requested resources. The required resources "+
		"may be added as autoscaling takes place or placement groups are scheduled. Otherwise, consider "+
		"reducing the resource requirements of the task.", id, FormatResources(req.Resources))
}

// FormatResources renders a resource map as Ray prints one: {CPU: 1.000000}.
func FormatResources(res map[string]float64) string {
	names := make([]string, 0, len(res))
	for k, v := range res {
		if v > 0 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s: %f", k, res[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

type service struct {
	corev1.UnimplementedSchedulerServer
	s *Scheduler
}

func (v *service) Lease(req *corev1.LeaseRequest, stream grpc.ServerStreamingServer[corev1.LeaseEvent]) error {
	node, err := v.s.Lease(stream.Context(), req, stream.Send)
	if err != nil {
		if stream.Context().Err() != nil {
			return status.Error(codes.Canceled, "lease withdrawn")
		}
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ev := &corev1.LeaseEvent{
		State:         corev1.LeaseState_LEASE_STATE_GRANTED,
		NodeId:        node.NodeId,
		NodeIpAddress: node.NodeIpAddress,
		AgentPort:     node.AgentPort,
	}
	if err := stream.Send(ev); err != nil {
		v.s.Release(node.NodeId, req.LeaseId)
		return err
	}
	return nil
}

func (v *service) ReturnLease(_ context.Context, req *corev1.ReturnLeaseRequest) (*corev1.ReturnLeaseResponse, error) {
	v.s.Release(req.NodeId, req.LeaseId)
	return &corev1.ReturnLeaseResponse{}, nil
}

func (v *service) Demand(context.Context, *corev1.DemandRequest) (*corev1.DemandResponse, error) {
	return &corev1.DemandResponse{Demands: v.s.Demand()}, nil
}

func (v *service) CreatePlacementGroup(_ context.Context, req *corev1.CreatePlacementGroupRequest) (*corev1.CreatePlacementGroupResponse, error) {
	if err := v.s.CreateGroup(req.GetPlacementGroup()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &corev1.CreatePlacementGroupResponse{}, nil
}

func (v *service) WaitPlacementGroup(req *corev1.WaitPlacementGroupRequest, stream grpc.ServerStreamingServer[corev1.PlacementGroup]) error {
	if err := v.s.WaitGroup(stream.Context(), req.PlacementGroupId, stream.Send); err != nil {
		if stream.Context().Err() != nil {
			return status.Error(codes.Canceled, "wait withdrawn")
		}
		return status.Error(codes.NotFound, err.Error())
	}
	return nil
}

func (v *service) RemovePlacementGroup(_ context.Context, req *corev1.RemovePlacementGroupRequest) (*corev1.RemovePlacementGroupResponse, error) {
	if err := v.s.RemoveGroup(req.PlacementGroupId); err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return &corev1.RemovePlacementGroupResponse{}, nil
}

func (v *service) ListPlacementGroups(context.Context, *corev1.ListPlacementGroupsRequest) (*corev1.ListPlacementGroupsResponse, error) {
	return &corev1.ListPlacementGroupsResponse{PlacementGroups: v.s.Groups()}, nil
}
