package gcs

import (
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// HoldKind is the spec kind of resource holds: resources reserved on a node
// for work that runs no process of its own through the head (Ray core tasks
// and actors, which the node agent runs in its worker processes).
const HoldKind = "core_hold"

// Hold reserves resources on a node for holderID without starting a
// process: the accounting is the one PlaceProcess uses, so Serve replicas,
// job entrypoints, tasks and actors all share one view of a node's room.
// With nodeID set only that node is tried; otherwise preferred first, then
// the alive node with the most free CPU. ErrNoCapacity means nothing fits now.
func (s *Server) Hold(holderID string, resources map[string]float64, nodeID, preferred string) (*gcsv1.Node, error) {
	spec := &gcsv1.ProcessSpec{ProcessId: holderID, Kind: HoldKind, Resources: resources}
	s.mu.Lock()
	var best *nodeEntry
	var bestAvail map[string]float64
	for _, e := range s.nodes {
		n := e.node
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE || nodeID != "" && n.NodeId != nodeID || s.drainingLocked(e) {
			continue
		}
		avail := s.snapshotLocked(e).ResourcesAvailable
		if !Fits(avail, resources) {
			continue
		}
		if n.NodeId == preferred {
			best = e
			break
		}
		if best == nil || betterNode(e, avail, best, bestAvail) {
			best, bestAvail = e, avail
		}
	}
	if best == nil {
		s.mu.Unlock()
		return nil, ErrNoCapacity
	}
	best.processes[holderID] = spec
	snapshot := s.snapshotLocked(best)
	s.mu.Unlock()
	s.publish(snapshot)
	return snapshot, nil
}

// Release frees what Hold reserved. Releasing an unknown hold is a no-op.
func (s *Server) Release(nodeID, holderID string) {
	s.mu.Lock()
	e, ok := s.nodes[nodeID]
	if !ok {
		s.mu.Unlock()
		return
	}
	if p, held := e.processes[holderID]; !held || p.Kind != HoldKind {
		s.mu.Unlock()
		return
	}
	delete(e.processes, holderID)
	snapshot := s.snapshotLocked(e)
	s.mu.Unlock()
	s.publish(snapshot)
}

// Feasible reports whether some alive node's total resources could ever
// hold the request (Ray calls a request no node can hold infeasible).
func (s *Server) Feasible(resources map[string]float64, nodeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.nodes {
		if e.node.State != gcsv1.NodeState_NODE_STATE_ALIVE || nodeID != "" && e.node.NodeId != nodeID {
			continue
		}
		if Fits(e.node.ResourcesTotal, resources) {
			return true
		}
	}
	return false
}
