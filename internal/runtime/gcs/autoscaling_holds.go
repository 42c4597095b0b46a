package gcs

import (
	"maps"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// The methods below let a scheduler that queues its own requests (Ray core's
// task and actor leases) report them: what waits is pending demand, and what
// holds resources keeps its node busy, even a hold of zero resources (an
// actor's default).

// SetPending records a queued request as pending demand, or updates its kind
// and shape when it is already pending; the time it started waiting is kept.
// infeasible is carried in kind by the caller; it is accepted here so callers
// state it explicitly.
func (a *AutoscalingState) SetPending(id, kind string, resources map[string]float64, _ bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.pending[id]; ok {
		p.Kind = kind
		p.Resources = maps.Clone(resources)
		return
	}
	a.pending[id] = &gcsv1.PendingDemand{Id: id, Kind: kind, Resources: maps.Clone(resources), SinceMs: a.opts.Clock.Now().UnixMilli()}
}

// Placed records that holder id holds resources on nodeID: it is no longer
// pending and the node is busy until Released.
func (a *AutoscalingState) Placed(nodeID, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, id)
	procs := a.running[nodeID]
	if procs == nil {
		procs = map[string]bool{}
		a.running[nodeID] = procs
	}
	procs[id] = true
	a.setIdleLocked(nodeID, false)
}

// Released records that holder id no longer holds anything on nodeID.
func (a *AutoscalingState) Released(nodeID, id string) {
	a.mu.Lock()
	delete(a.running[nodeID], id)
	a.mu.Unlock()
	if n, ok := a.srv.Node(nodeID); ok {
		a.onNode(n)
	}
}
