package gcs

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Register adds the AutoscalerStateService to g; pass it to Server.RegisterService.
func (a *AutoscalingState) Register(g grpc.ServiceRegistrar) {
	gcsv1.RegisterAutoscalerStateServiceServer(g, &autoscalerService{a: a})
}

type autoscalerService struct {
	gcsv1.UnimplementedAutoscalerStateServiceServer
	a *AutoscalingState
}

func (s *autoscalerService) GetClusterState(context.Context, *gcsv1.GetClusterStateRequest) (*gcsv1.GetClusterStateResponse, error) {
	return s.a.ClusterState(), nil
}

func (s *autoscalerService) RequestResources(_ context.Context, req *gcsv1.RequestResourcesRequest) (*gcsv1.RequestResourcesResponse, error) {
	bundles := make([]map[string]float64, 0, len(req.Bundles))
	for _, b := range req.Bundles {
		bundles = append(bundles, b.GetResources())
	}
	if err := s.a.SetRequests(bundles); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &gcsv1.RequestResourcesResponse{}, nil
}

func (s *autoscalerService) DrainNode(_ context.Context, req *gcsv1.DrainNodeRequest) (*gcsv1.DrainNodeResponse, error) {
	if req.NodeId == "" {
		return nil, status.Error(codes.InvalidArgument, "node_id is required")
	}
	if req.DeadlineMs <= 0 {
		return nil, status.Error(codes.InvalidArgument, "deadline_ms is required: when the drain lapses, in milliseconds since the Unix epoch")
	}
	reason := DrainIdle
	switch req.Kind {
	case gcsv1.DrainNodeReason_DRAIN_NODE_REASON_UNSPECIFIED, gcsv1.DrainNodeReason_DRAIN_NODE_REASON_IDLE_TERMINATION:
	case gcsv1.DrainNodeReason_DRAIN_NODE_REASON_PREEMPTION:
		reason = DrainShutdown
	default:
		return nil, status.Errorf(codes.InvalidArgument, "kind %d is not a drain reason this head knows (IDLE_TERMINATION or PREEMPTION)", req.Kind)
	}
	accepted, rejection, err := s.a.srv.DrainNode(req.NodeId, reason, time.UnixMilli(req.DeadlineMs))
	if errors.Is(err, ErrUnknownNode) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	// Each autoscaler round renews the drains of nodes being removed: detail level.
	s.a.srv.opts.Logger.V(1).Info("Drain request", "nodeID", req.NodeId, "kind", req.Kind.String(), "reason", req.Reason, "accepted", accepted, "rejection", rejection)
	return &gcsv1.DrainNodeResponse{IsAccepted: accepted, RejectionReason: rejection}, nil
}
