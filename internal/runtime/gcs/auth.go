package gcs

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// authMetadataKey carries "Bearer <token>" on calls, as Ray's clients send it.
const authMetadataKey = "authorization"

// openMethod reports whether a method answers without the token: the
// health checks probes and `ray health-check` (KubeRay's wait-gcs-ready
// init container) make.
func openMethod(fullMethod string) bool {
	return fullMethod == gcsv1.NodeService_CheckAlive_FullMethodName ||
		strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// authorize checks the token of a call in constant time.
func (s *Server) authorize(ctx context.Context, fullMethod string) error {
	if openMethod(fullMethod) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(authMetadataKey)
	if len(vals) == 0 || vals[0] == "" {
		return status.Error(codes.Unauthenticated, "missing authentication token: this cluster requires RAY_AUTH_TOKEN")
	}
	if tok, ok := dashboard.TokenFromAuthorization(vals[0]); !ok || !dashboard.TokenMatches(tok, s.opts.AuthToken) {
		return status.Error(codes.Unauthenticated, "invalid authentication token")
	}
	return nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// tokenCredentials attaches the token to every call. The control service
// speaks plaintext gRPC inside the cluster network, as Ray's GCS does.
type tokenCredentials string

func (t tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{authMetadataKey: dashboard.BearerPrefix + string(t)}, nil
}

func (tokenCredentials) RequireTransportSecurity() bool { return false }
