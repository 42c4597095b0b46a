package gcs

import (
	"fmt"
	"time"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// DrainNode keeps new work off an idle node until deadline, because the
// autoscaler is about to remove it: without it a task, actor, replica or
// job placed between the autoscaler's decision and the node's end would
// land on a node that is going away. The check and the mark happen under
// the lock placements take, so a node is either drained idle or keeps what
// was placed on it: a node with anything placed is not drained, and the
// reason says what it holds. Draining a drained node again moves the
// deadline; if the node is still alive at the deadline, it takes work
// again. An unknown or dead node is an error wrapping ErrUnknownNode.
func (s *Server) DrainNode(nodeID string, deadline time.Time) (accepted bool, rejection string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.nodes[nodeID]
	if !ok || e.node.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		return false, "", fmt.Errorf("draining %s: %w", nodeID, ErrUnknownNode)
	}
	switch {
	case e.node.IsHead:
		return false, "the head node is never drained", nil
	case len(e.processes) > 0:
		return false, fmt.Sprintf("%d processes or resource holds are placed on the node", len(e.processes)), nil
	case !deadline.After(s.opts.Clock.Now()):
		return false, "the deadline has passed", nil
	}
	e.drainUntil = deadline
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
