package gcs

import (
	"fmt"
	"time"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// DrainReason is why a node is drained.
type DrainReason int

const (
	// DrainIdle: the autoscaler is about to remove the node, which is only
	// drained while idle.
	DrainIdle DrainReason = iota
	// DrainShutdown: the node is stopping whatever it holds (Ray's
	// preemption reason). What is placed there runs on until the node
	// ends; nothing new lands there meanwhile.
	DrainShutdown
)

// DrainNode keeps new work off a node until deadline, because it is going
// away: without it a task, actor, replica or job placed between the
// decision and the node's end would land on a node that is leaving. For
// DrainIdle the check and the mark happen under the lock placements take,
// so a node is either drained idle or keeps what was placed on it: a node
// with anything placed is not drained, and the reason says what it holds.
// The head is never drained. Draining a drained node again moves the
// deadline (never earlier for a node shutting down, which an idle drain
// then also accepts: it takes no work either way); if the node is still
// alive at the deadline, it takes work again. An unknown or dead node is an
// error wrapping ErrUnknownNode.
func (s *Server) DrainNode(nodeID string, reason DrainReason, deadline time.Time) (accepted bool, rejection string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.nodes[nodeID]
	if !ok || e.node.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		return false, "", fmt.Errorf("draining %s: %w", nodeID, ErrUnknownNode)
	}
	shuttingDown := e.shuttingDown && s.drainingLocked(e)
	switch {
	case e.node.IsHead:
		return false, "the head node is never drained", nil
	case reason == DrainIdle && len(e.processes) > 0 && !shuttingDown:
		return false, fmt.Sprintf("%d processes or resource holds are placed on the node", len(e.processes)), nil
	case !deadline.After(s.opts.Clock.Now()):
		return false, "the deadline has passed", nil
	}
	// A node shutting down takes no work until it ends: an autoscaler's
	// renewal does not shorten that.
	if !shuttingDown || deadline.After(e.drainUntil) {
		e.drainUntil = deadline
	}
	e.shuttingDown = shuttingDown || reason == DrainShutdown
	return true, "", nil
}

// Draining reports whether the node takes no new work now.
func (s *Server) Draining(nodeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.nodes[nodeID]
	return ok && s.drainingLocked(e)
}

func (s *Server) drainingLocked(e *nodeEntry) bool {
	return !e.drainUntil.IsZero() && s.opts.Clock.Now().Before(e.drainUntil)
}
