package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// HeadState is where the autoscaler learns the Ray side of the cluster. The head's control
// service implements it over gRPC (GRPCHead); tests may plug in the in-process head.
type HeadState interface {
	ClusterState(ctx context.Context) (State, error)
	// DrainNode asks the head to place nothing more on an idle node until deadline, because
	// its pod is about to be deleted. accepted is false, with the head's reason, when work is
	// placed on the node, and err wraps ErrNodeGone when the node is no longer alive.
	DrainNode(ctx context.Context, nodeID, reason string, deadline time.Time) (accepted bool, rejection string, err error)
}

// State is the head's view of the cluster for one round.
type State struct {
	Nodes []HeadNode
	// Demand is one bundle per placement that found no capacity.
	Demand []plan.Resources
	// Requests are the standing request_resources bundles.
	Requests []plan.Resources
}

// HeadNode is one alive Ray node as the head sees it.
type HeadNode struct {
	ID, IP string
	Head   bool
	// Total and Available are the node's resources.
	Total, Available plan.Resources
	// IdleSince is when the node became idle; zero while it has work.
	IdleSince time.Time
	// Busy is set while the head knows of processes on the node.
	Busy bool
}

// GRPCHead reads the state from the head's AutoscalerStateService and leaves the round's report
// in the head's KV store.
type GRPCHead struct {
	client gcsv1.AutoscalerStateServiceClient
	kv     gcsv1.KVServiceClient
}

// NewGRPCHead reads state over conn, a connection to the head's GCS port.
func NewGRPCHead(conn grpc.ClientConnInterface) *GRPCHead {
	return &GRPCHead{client: gcsv1.NewAutoscalerStateServiceClient(conn), kv: gcsv1.NewKVServiceClient(conn)}
}

// PublishReport implements ReportSink: the report replaces the previous one in the KV.
func (h *GRPCHead) PublishReport(ctx context.Context, r *report.Report) error {
	b, err := r.Encode()
	if err != nil {
		return err
	}
	if _, err := h.kv.Put(ctx, &gcsv1.KVPutRequest{Namespace: report.KVNamespace, Key: report.KVKey, Value: b, Overwrite: true}); err != nil {
		return fmt.Errorf("writing the autoscaler report to the head's KV: %w", err)
	}
	return nil
}

// ClusterState implements HeadState.
func (h *GRPCHead) ClusterState(ctx context.Context) (State, error) {
	resp, err := h.client.GetClusterState(ctx, &gcsv1.GetClusterStateRequest{})
	if err != nil {
		return State{}, fmt.Errorf("reading the cluster state from the head: %w", err)
	}
	return FromClusterState(resp), nil
}

// ErrNodeGone is DrainNode's error for a node the head no longer has alive: nothing can be
// placed on it any more.
var ErrNodeGone = errors.New("the node is gone")

// DrainNode implements HeadState.
func (h *GRPCHead) DrainNode(ctx context.Context, nodeID, reason string, deadline time.Time) (bool, string, error) {
	resp, err := h.client.DrainNode(ctx, &gcsv1.DrainNodeRequest{NodeId: nodeID, Reason: reason, DeadlineMs: deadline.UnixMilli(),
		Kind: gcsv1.DrainNodeReason_DRAIN_NODE_REASON_IDLE_TERMINATION})
	if status.Code(err) == codes.NotFound {
		return false, "", fmt.Errorf("draining node %s: %w", nodeID, ErrNodeGone)
	}
	if err != nil {
		return false, "", fmt.Errorf("draining node %s on the head: %w", nodeID, err)
	}
	return resp.IsAccepted, resp.RejectionReason, nil
}

// FromClusterState converts the control service's answer.
func FromClusterState(resp *gcsv1.GetClusterStateResponse) State {
	activity := map[string]*gcsv1.NodeActivity{}
	for _, a := range resp.Activity {
		activity[a.NodeId] = a
	}
	var st State
	for _, n := range resp.Nodes {
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
			continue
		}
		hn := HeadNode{
			ID: n.NodeId, IP: n.NodeIpAddress, Head: n.IsHead,
			Total: plan.Resources(n.ResourcesTotal), Available: plan.Resources(n.ResourcesAvailable),
			// Without an activity record the node's idleness is unknown: treat it as busy.
			Busy: true,
		}
		if a, ok := activity[n.NodeId]; ok {
			hn.Busy = a.RunningProcesses > 0
			if a.IdleSinceMs > 0 {
				hn.IdleSince = time.UnixMilli(a.IdleSinceMs)
			}
		}
		st.Nodes = append(st.Nodes, hn)
	}
	for _, p := range resp.Pending {
		st.Demand = append(st.Demand, plan.Resources(p.Resources))
	}
	for _, r := range resp.Requested {
		st.Requests = append(st.Requests, plan.Resources(r.Resources))
	}
	return st
}
