package gcs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Register adds the control service's gRPC services to g.
func (s *Server) Register(g *grpc.Server) {
	gcsv1.RegisterNodeServiceServer(g, &nodeService{s: s})
	gcsv1.RegisterKVServiceServer(g, &kvService{s: s})
	gcsv1.RegisterProcessServiceServer(g, &processService{s: s})
	s.mu.Lock()
	services := slices.Clone(s.services)
	s.mu.Unlock()
	for _, register := range services {
		register(g)
	}
}

// Serve serves the gRPC services on l until ctx is done, then stops
// gracefully and closes the storage NewServer opened.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	defer func() { _ = s.closeStorage() }()
	// Uploaded working_dir packages travel through the KV.
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes)}
	if s.opts.AuthToken != "" {
		opts = append(opts, grpc.ChainUnaryInterceptor(s.authUnary), grpc.ChainStreamInterceptor(s.authStream))
	}
	if s.opts.TLS != nil {
		// Mutual TLS: a peer without a certificate of the cluster's CA never gets past the
		// handshake.
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.opts.TLS)))
	}
	g := grpc.NewServer(opts...)
	s.Register(g)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// Streams (watches, assignments) never end on their own, so a
			// graceful stop would hang: end them.
			g.Stop()
		case <-done:
		}
	}()
	err := g.Serve(l)
	close(done)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serving control service: %w", err)
	}
	return nil
}

// MaxMessageBytes bounds one gRPC message, large enough for packages.
const MaxMessageBytes = 128 << 20

// DialOption configures Dial.
type DialOption func(*[]grpc.DialOption)

// WithAuthToken sends token on every call, for heads with token
// authentication; an empty token sends nothing.
func WithAuthToken(token string) DialOption {
	return func(opts *[]grpc.DialOption) {
		if token != "" {
			*opts = append(*opts, grpc.WithPerRPCCredentials(tokenCredentials(token)))
		}
	}
}

// WithTLS dials with mutual TLS (cfg from raytls: the node's certificate, the cluster's CA); nil
// dials in plain text.
func WithTLS(cfg *tls.Config) DialOption {
	return func(opts *[]grpc.DialOption) {
		if cfg != nil {
			*opts = append(*opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		}
	}
}

// Dial connects to a control service at host:port. The connection is lazy
// and reconnects by itself.
func Dial(address string, options ...DialOption) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	for _, o := range options {
		o(&opts)
	}
	conn, err := grpc.NewClient("passthrough:///"+address, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialing control service at %s: %w", address, err)
	}
	return conn, nil
}

func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownNode):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrNodeDead):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

type nodeService struct {
	gcsv1.UnimplementedNodeServiceServer
	s *Server
}

func (n *nodeService) CheckAlive(ctx context.Context, _ *gcsv1.CheckAliveRequest) (*gcsv1.CheckAliveResponse, error) {
	if err := n.s.CheckHealth(ctx); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &gcsv1.CheckAliveResponse{ClusterId: n.s.ClusterID(), SessionName: n.s.SessionName()}, nil
}

func (n *nodeService) RegisterNode(ctx context.Context, req *gcsv1.RegisterNodeRequest) (*gcsv1.RegisterNodeResponse, error) {
	if req.GetNode().GetNodeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "node.node_id is required")
	}
	if err := n.s.RegisterNode(ctx, req.Node, req.Processes); err != nil {
		return nil, toStatus(err)
	}
	return &gcsv1.RegisterNodeResponse{
		ClusterId:         n.s.ClusterID(),
		HeartbeatPeriodMs: n.s.HeartbeatPeriod().Milliseconds(),
		SessionName:       n.s.SessionName(),
	}, nil
}

func (n *nodeService) Heartbeat(_ context.Context, req *gcsv1.HeartbeatRequest) (*gcsv1.HeartbeatResponse, error) {
	if err := n.s.Heartbeat(req.NodeId); err != nil {
		return nil, toStatus(err)
	}
	return &gcsv1.HeartbeatResponse{}, nil
}

func (n *nodeService) UnregisterNode(ctx context.Context, req *gcsv1.UnregisterNodeRequest) (*gcsv1.UnregisterNodeResponse, error) {
	if err := n.s.UnregisterNode(ctx, req.NodeId, req.Reason); err != nil {
		return nil, toStatus(err)
	}
	return &gcsv1.UnregisterNodeResponse{}, nil
}

func (n *nodeService) ListNodes(context.Context, *gcsv1.ListNodesRequest) (*gcsv1.ListNodesResponse, error) {
	return &gcsv1.ListNodesResponse{Nodes: n.s.Nodes()}, nil
}

func (n *nodeService) WatchNodes(_ *gcsv1.WatchNodesRequest, stream grpc.ServerStreamingServer[gcsv1.NodeEvent]) error {
	snapshot, changes, cancel := n.s.Watch()
	defer cancel()
	for _, node := range snapshot {
		if err := stream.Send(&gcsv1.NodeEvent{Node: node}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case node, ok := <-changes:
			if !ok {
				return status.Error(codes.ResourceExhausted, "watcher fell behind; watch again")
			}
			if err := stream.Send(&gcsv1.NodeEvent{Node: node}); err != nil {
				return err
			}
		}
	}
}

type kvService struct {
	gcsv1.UnimplementedKVServiceServer
	s *Server
}

func (k *kvService) Get(ctx context.Context, req *gcsv1.KVGetRequest) (*gcsv1.KVGetResponse, error) {
	v, ok, err := k.s.Storage().Get(ctx, req.Namespace, req.Key)
	if err != nil {
		return nil, toStatus(err)
	}
	return &gcsv1.KVGetResponse{Found: ok, Value: v}, nil
}

func (k *kvService) Put(ctx context.Context, req *gcsv1.KVPutRequest) (*gcsv1.KVPutResponse, error) {
	added, err := k.s.Storage().Put(ctx, req.Namespace, req.Key, req.Value, req.Overwrite)
	if err != nil {
		return nil, toStatus(err)
	}
	return &gcsv1.KVPutResponse{Added: added}, nil
}

func (k *kvService) Delete(ctx context.Context, req *gcsv1.KVDeleteRequest) (*gcsv1.KVDeleteResponse, error) {
	deleted, err := k.s.Storage().Delete(ctx, req.Namespace, req.Key)
	if err != nil {
		return nil, toStatus(err)
	}
	return &gcsv1.KVDeleteResponse{Deleted: deleted}, nil
}

func (k *kvService) Keys(ctx context.Context, req *gcsv1.KVKeysRequest) (*gcsv1.KVKeysResponse, error) {
	keys, err := k.s.Storage().Keys(ctx, req.Namespace, req.Prefix)
	if err != nil {
		return nil, toStatus(err)
	}
	return &gcsv1.KVKeysResponse{Keys: keys}, nil
}

type processService struct {
	gcsv1.UnimplementedProcessServiceServer
	s *Server
}

func (p *processService) WatchAssignments(req *gcsv1.WatchAssignmentsRequest, stream grpc.ServerStreamingServer[gcsv1.Assignment]) error {
	ctx := stream.Context()
	for {
		as, err := p.s.NextAssignments(ctx, req.NodeId)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return toStatus(err)
		}
		for i, a := range as {
			if err := stream.Send(a); err != nil {
				p.s.Requeue(req.NodeId, as[i:])
				return err
			}
		}
	}
}

func (p *processService) ReportProcessEvent(_ context.Context, req *gcsv1.ReportProcessEventRequest) (*gcsv1.ReportProcessEventResponse, error) {
	if req.GetStatus().GetSpec() == nil {
		return nil, status.Error(codes.InvalidArgument, "status.spec is required")
	}
	p.s.ReportProcessEvent(req.NodeId, req.Status)
	return &gcsv1.ReportProcessEventResponse{}, nil
}
