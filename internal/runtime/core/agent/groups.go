package agent

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/status"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Placement groups live in the head's scheduler; the agent creates them for
// its drivers, removes a job's non-detached groups when the job ends, and
// turns "the group is placed" into the object pg.ready() returns.

var strategies = map[string]corev1.PlacementStrategy{
	"PACK":          corev1.PlacementStrategy_PLACEMENT_STRATEGY_PACK,
	"SPREAD":        corev1.PlacementStrategy_PLACEMENT_STRATEGY_SPREAD,
	"STRICT_PACK":   corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_PACK,
	"STRICT_SPREAD": corev1.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD,
}

// groupJSON is a placement group as the Python side reads it.
type groupJSON struct {
	ID         string               `json:"placement_group_id"`
	Name       string               `json:"name"`
	Namespace  string               `json:"namespace"`
	Strategy   string               `json:"strategy"`
	Bundles    []map[string]float64 `json:"bundles"`
	BundleNode []string             `json:"bundle_nodes"`
	State      string               `json:"state"`
	JobID      string               `json:"job_id"`
	Detached   bool                 `json:"detached"`
	Infeasible bool                 `json:"infeasible"`
}

func groupToJSON(pg *corev1.PlacementGroup) groupJSON {
	out := groupJSON{ID: pg.PlacementGroupId, Name: pg.Name, Namespace: pg.Namespace, JobID: pg.JobId, Detached: pg.Detached, Infeasible: pg.Infeasible}
	for name, v := range strategies {
		if v == pg.Strategy {
			out.Strategy = name
		}
	}
	switch pg.State {
	case corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED:
		out.State = "CREATED"
	case corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED:
		out.State = "REMOVED"
	case corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_RESCHEDULING:
		out.State = "RESCHEDULING"
	default:
		out.State = "PENDING"
	}
	for _, b := range pg.Bundles {
		out.Bundles = append(out.Bundles, b.Resources)
		out.BundleNode = append(out.BundleNode, b.NodeId)
	}
	return out
}

func (a *Agent) createGroup(m *corewire.Message) (*corewire.Message, error) {
	var b groupJSON
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	j, ok := a.jobOf(b.JobID)
	if !ok {
		return nil, errorf("RuntimeError", "job %s has no driver connected to this node", b.JobID)
	}
	strategy, ok := strategies[b.Strategy]
	if !ok {
		return nil, errorf("ValueError", "Invalid placement group strategy %s. Supported strategies are: ['PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'].", b.Strategy)
	}
	if b.Namespace == "" {
		b.Namespace = j.namespace
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.Name != "" {
		if existing, err := a.groupNamed(ctx, b.Name, b.Namespace); err != nil {
			return nil, err
		} else if existing != nil {
			return nil, errorf("ValueError", "Failed to create placement group: the name %s (namespace=%s) is already taken", b.Name, b.Namespace)
		}
	}
	pg := &corev1.PlacementGroup{PlacementGroupId: b.ID, Name: b.Name, Namespace: b.Namespace, Strategy: strategy, JobId: j.id, Detached: b.Detached}
	for _, res := range b.Bundles {
		pg.Bundles = append(pg.Bundles, &corev1.Bundle{Resources: res})
	}
	if _, err := a.sched.CreatePlacementGroup(ctx, &corev1.CreatePlacementGroupRequest{PlacementGroup: pg}); err != nil {
		return nil, errorf("ValueError", "creating placement group: %s", grpcMessage(err))
	}
	if !b.Detached {
		j.mu.Lock()
		j.groups = append(j.groups, b.ID)
		j.mu.Unlock()
	}
	return nil, nil
}

func (a *Agent) groupNamed(ctx context.Context, name, namespace string) (*corev1.PlacementGroup, error) {
	resp, err := a.sched.ListPlacementGroups(ctx, &corev1.ListPlacementGroupsRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing placement groups: %w", err)
	}
	for _, pg := range resp.PlacementGroups {
		if pg.Name == name && pg.Namespace == namespace && pg.State != corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
			return pg, nil
		}
	}
	return nil, nil
}

// waitGroup blocks until the group is created or removed, or timeout_ms
// passes (< 0: no limit); it answers whether the group is created.
func (a *Agent) waitGroup(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		ID        string `json:"placement_group_id"`
		TimeoutMs int64  `json:"timeout_ms"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	ctx, cancel := timeoutCtx(c, b.TimeoutMs)
	defer cancel()
	state, err := a.awaitGroup(ctx, b.ID)
	if err != nil && ctx.Err() == nil {
		return nil, err
	}
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(map[string]bool{"ready": state == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED})}}, nil
}

// awaitGroup returns the group's state once it is CREATED or REMOVED.
func (a *Agent) awaitGroup(ctx context.Context, id string) (corev1.PlacementGroupState, error) {
	stream, err := a.sched.WaitPlacementGroup(ctx, &corev1.WaitPlacementGroupRequest{PlacementGroupId: id})
	if err != nil {
		return 0, fmt.Errorf("waiting for placement group %s: %w", id, err)
	}
	for {
		pg, err := stream.Recv()
		if err != nil {
			return 0, errorf("ValueError", "waiting for placement group %s: %s", id, grpcMessage(err))
		}
		if pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED || pg.State == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
			return pg.State, nil
		}
	}
}

// groupReady stores the driver's value in object_id once the group is
// created: the ObjectRef pg.ready() returns.
func (a *Agent) groupReady(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		ID       string `json:"placement_group_id"`
		ObjectID string `json:"object_id"`
		Job      string `json:"job"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	j, ok := a.jobOf(b.Job)
	if !ok || len(m.Parts) != 1 {
		return nil, errorf("ValueError", "pg_ready: a connected job and one value are required")
	}
	a.store.Expect(b.ObjectID, j.id)
	go func() {
		state, err := a.awaitGroup(j.ctx, b.ID)
		switch {
		case j.ctx.Err() != nil:
		case err != nil:
			a.store.Put(b.ObjectID, j.id, agentError("RaySystemError", err.Error()), true)
		case state == corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED:
			a.store.Put(b.ObjectID, j.id, m.Parts[0], false)
		default:
			a.store.Put(b.ObjectID, j.id, agentError("RaySystemError", fmt.Sprintf("placement group %s was removed before it was ready", b.ID)), true)
		}
	}()
	return nil, nil
}

func (a *Agent) removeGroup(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		ID string `json:"placement_group_id"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.sched.RemovePlacementGroup(ctx, &corev1.RemovePlacementGroupRequest{PlacementGroupId: b.ID}); err != nil {
		return nil, errorf("ValueError", "removing placement group: %s", grpcMessage(err))
	}
	// As in Ray, the work using the group's bundles goes with them: every
	// node stops the actors and tasks it owns in the group.
	resp, err := a.nodes.ListNodes(ctx, &gcsv1.ListNodesRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes to stop the placement group's work: %w", err)
	}
	body := corewire.JSON(map[string]string{"placement_group_id": b.ID})
	for _, n := range resp.Nodes {
		switch {
		case n.State != gcsv1.NodeState_NODE_STATE_ALIVE:
		case n.NodeId == a.opts.NodeID:
			a.stopGroupWork(b.ID)
		default:
			if _, err := a.callPeer(ctx, n.NodeId, &corewire.Message{Header: corewire.Header{Op: "group_removed", Body: body}}); err != nil {
				a.opts.Logger.Info("Telling a node that a placement group was removed failed", "nodeID", n.NodeId, "placementGroupID", b.ID, "err", err.Error())
			}
		}
	}
	return nil, nil
}

// groupRemoved is a peer's word that a placement group was removed.
func (a *Agent) groupRemoved(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		ID string `json:"placement_group_id"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	a.stopGroupWork(b.ID)
	return nil, nil
}

// stopGroupWork kills the actors and cancels (with force) the tasks this
// node owns in the placement group id.
func (a *Agent) stopGroupWork(id string) {
	a.mu.Lock()
	var actors []*actor
	for _, ac := range a.actors {
		if ac.owner && ac.group == id {
			actors = append(actors, ac)
		}
	}
	a.mu.Unlock()
	for _, ac := range actors {
		ac.kill("The actor is dead because its placement group was removed.")
	}
	a.tmu.Lock()
	var tasks []string
	for prefix, ctl := range a.ctls {
		if ctl.group == id {
			tasks = append(tasks, prefix)
		}
	}
	a.tmu.Unlock()
	for _, t := range tasks {
		a.cancelTask(t, true, false)
	}
}

func (a *Agent) listGroups() (*corewire.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := a.sched.ListPlacementGroups(ctx, &corev1.ListPlacementGroupsRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing placement groups: %w", err)
	}
	out := make([]groupJSON, 0, len(resp.PlacementGroups))
	for _, pg := range resp.PlacementGroups {
		out = append(out, groupToJSON(pg))
	}
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(out)}}, nil
}

// removeJobGroups removes the job's non-detached groups (its driver left).
func (a *Agent) removeJobGroups(j *job) {
	j.mu.Lock()
	ids := j.groups
	j.groups = nil
	j.mu.Unlock()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := a.sched.RemovePlacementGroup(ctx, &corev1.RemovePlacementGroupRequest{PlacementGroupId: id}); err != nil {
			a.opts.Logger.Info("Removing a finished job's placement group failed", "placementGroupID", id, "jobID", j.id, "err", err.Error())
		}
		cancel()
	}
}

// grpcMessage is a gRPC error's message without its code.
func grpcMessage(err error) string { return status.Convert(err).Message() }
