// Package grpcproxy is Serve's gRPC proxy (docs/serve.md): it forwards any
// user service without generated code — request and response messages
// travel as raw bytes — to the ingress deployment of the application the
// `application` metadata names, calling the replica method named like the
// RPC's method. It serves Ray's built-in ray.serve.RayServeAPIService
// (ListApplications, Healthz) itself, and maps routing failures to gRPC
// status codes as Ray does
// (https://docs.ray.io/en/latest/serve/advanced-guides/grpc-guide.html).
package grpcproxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/rawsock"
	"github.com/rayk8s/rayk8s/internal/serve/router"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	"github.com/rayk8s/rayk8s/proto/serve/rayapi"
)

// Metadata keys Ray's gRPC proxy reads and sets.
const (
	MetadataApplication = "application"
	MetadataRequestID   = "request_id"
	MetadataModelID     = "multiplexed_model_id"
	// APIService is Ray's built-in service.
	APIService = "ray.serve.RayServeAPIService"
	// MsgNoApps is the status of calls before any application is deployed.
	MsgNoApps     = "No applications are deployed yet."
	healthyAnswer = "success"
)

// State is what the proxy serves at one moment.
type State struct {
	// Apps are the applications calls may name, sorted.
	Apps           []string
	RequestTimeout time.Duration
	// ServicerFunctions travel with every call for Python replicas.
	ServicerFunctions []string
	// Unhealthy, when set, fails Healthz and ListApplications with
	// UNAVAILABLE (draining); calls are still served.
	Unhealthy string
}

// Invoker sends calls to deployments; *handle.Handles is one.
type Invoker interface {
	Invoke(ctx context.Context, c handle.Call) (*handle.Response, error)
}

// Proxy forwards gRPC calls to Serve applications.
type Proxy struct {
	invoker Invoker
	log     logr.Logger
	metrics *metrics.Metrics
	state   atomic.Pointer[State]
}

// New returns a Proxy with no applications; m (nil: none) records its
// calls.
func New(invoker Invoker, log logr.Logger, m *metrics.Metrics) *Proxy {
	p := &Proxy{invoker: invoker, log: log, metrics: m}
	p.SetState(State{})
	return p
}

// SetState installs new applications and health.
func (p *Proxy) SetState(s State) {
	s.Apps = slices.Sorted(slices.Values(s.Apps))
	p.state.Store(&s)
}

// Codec passes messages through as bytes (a *[]byte); the built-in
// service's replies are the only proto messages the proxy encodes itself.
// Clients that send raw bytes (tests, benchmarks) use it too, with
// grpc.ForceCodecV2.
type Codec struct{}

// Name claims "proto": the bytes are protobuf, just never decoded here.
func (Codec) Name() string { return "proto" }

// Marshal encodes a *[]byte as is and a proto message as protobuf.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
	case proto.Message:
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encoding %T: %w", m, err)
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("cannot encode %T", v)
}

// Unmarshal copies the bytes into a *[]byte, or decodes a proto message.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *[]byte:
		*m = data.Materialize()
		return nil
	case proto.Message:
		return proto.Unmarshal(data.Materialize(), m)
	}
	return fmt.Errorf("cannot decode into %T", v)
}

// SplitMethod splits "/pkg.Service/Method" into service and method.
func SplitMethod(full string) (service, method string, ok bool) {
	s := strings.TrimPrefix(full, "/")
	i := strings.LastIndex(s, "/")
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// PickApp applies Ray's rule for the application metadata: required when
// more than one application is deployed, and it must name one of them.
func PickApp(apps []string, requested string) (string, error) {
	switch {
	case requested != "":
		if !slices.Contains(apps, requested) {
			return "", status.Errorf(codes.NotFound, "Application '%s' not found. Ping /%s/ListApplications for available applications.", requested, APIService)
		}
		return requested, nil
	case len(apps) == 1:
		return apps[0], nil
	case len(apps) == 0:
		return "", status.Error(codes.Unavailable, MsgNoApps)
	}
	return "", status.Errorf(codes.NotFound, "Application metadata not set and %d applications are deployed (%s): set the '%s' metadata. Ping /%s/ListApplications for available applications.",
		len(apps), strings.Join(apps, ", "), MetadataApplication, APIService)
}

// callLabels are a call's metric labels, filled in as the call is routed.
type callLabels struct {
	app, method string
}

// serve is every RPC's entry (grpc.UnknownServiceHandler): it records the
// call's metrics around handle.
func (p *Proxy) serve(_ any, ss grpc.ServerStream) error {
	start := p.metrics.Now()
	p.metrics.GRPCStarted()
	var l callLabels
	err := p.handle(ss, &l)
	code := status.Code(err)
	switch {
	case ss.Context().Err() != nil && err != nil:
		code = codes.Canceled
	case code == codes.Unimplemented:
		// The method is nobody's: keep client-chosen names out of the labels.
		l.method = ""
	}
	p.metrics.GRPCDone(l.app, l.method, code, start)
	return err
}

func (p *Proxy) handle(ss grpc.ServerStream, l *callLabels) error {
	full, _ := grpc.MethodFromServerStream(ss)
	service, method, ok := SplitMethod(full)
	if !ok {
		return status.Errorf(codes.Unimplemented, "Malformed method name %q", full)
	}
	l.method = full
	st := p.state.Load()
	var req []byte
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	if service == APIService {
		return p.builtin(ss, st, method)
	}
	md, _ := metadata.FromIncomingContext(ss.Context())
	reqID := first(md, MetadataRequestID)
	if reqID == "" {
		reqID = newRequestID()
	}
	ss.SetTrailer(metadata.Pairs(MetadataRequestID, reqID))
	app, err := PickApp(st.Apps, first(md, MetadataApplication))
	if err != nil {
		return err
	}
	l.app = app
	// Only unary requests: a second message means client streaming.
	var extra []byte
	if err := ss.RecvMsg(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return status.Errorf(codes.Unimplemented, "Method '%s' sent more than one request message: Serve's gRPC proxy serves unary-unary and unary-stream methods only", full)
	}
	ctx := ss.Context()
	if st.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, st.RequestTimeout)
		defer cancel()
	}
	headers := make([][2]string, 0, len(md))
	for k, vs := range md {
		for _, v := range vs {
			headers = append(headers, [2]string{k, v})
		}
	}
	call := handle.Call{App: app, Body: req, Meta: wire.Meta{
		Kind:                  wire.KindGRPC,
		RequestID:             reqID,
		Method:                method,
		Path:                  full,
		Headers:               headers,
		MultiplexedModelID:    first(md, MetadataModelID),
		GRPCServicerFunctions: st.ServicerFunctions,
	}}
	resp, err := p.invoker.Invoke(ctx, call)
	if err != nil {
		return p.statusOf(ss.Context(), st, reqID, app, err)
	}
	defer resp.Close()
	if resp.Head.Status >= 400 {
		return headError(ctx, resp)
	}
	var msgs wire.Messages
	for {
		chunk, err := resp.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return p.statusOf(ss.Context(), st, reqID, app, err)
		}
		out, err := msgs.Feed(chunk)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		for _, m := range out {
			if err := ss.SendMsg(&m); err != nil {
				return err
			}
		}
	}
	if msgs.Pending() {
		return status.Error(codes.Internal, "The replica's answer ended inside a message")
	}
	if g := resp.End.GRPC; g != nil {
		// request_id is already among the trailers (SetTrailer merges).
		trailers := metadata.MD{}
		for _, kv := range g.Trailers {
			trailers.Append(kv[0], kv[1])
		}
		ss.SetTrailer(trailers)
		if g.Code != int(codes.OK) {
			return status.Error(codes.Code(g.Code), g.Details)
		}
	}
	return nil
}

// headError turns an HTTP-style error answer (a Go built-in refusing the
// request) into a status carrying its body.
func headError(ctx context.Context, resp *handle.Response) error {
	var body []byte
	for chunk, err := range resp.Chunks(ctx) {
		if err != nil {
			break
		}
		body = append(body, chunk...)
	}
	code := codes.Internal
	switch resp.Head.Status {
	case http.StatusBadRequest:
		code = codes.InvalidArgument
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusServiceUnavailable:
		code = codes.Unavailable
	}
	return status.Error(code, string(body))
}

// statusOf maps a failed call to Ray's gRPC codes: back-pressure is
// RESOURCE_EXHAUSTED, an unavailable deployment UNAVAILABLE, the request
// timeout DEADLINE_EXCEEDED, a method the deployment lacks UNIMPLEMENTED.
func (p *Proxy) statusOf(clientCtx context.Context, st *State, reqID, app string, err error) error {
	var bp *router.BackPressureError
	var we *wire.Error
	var died *handle.ReplicaDiedError
	switch {
	case clientCtx.Err() != nil:
		return status.Error(codes.Canceled, "The client cancelled the call")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "Request %s timed out after %ss.", reqID, strconv.FormatFloat(st.RequestTimeout.Seconds(), 'f', -1, 64))
	case errors.As(err, &bp):
		return status.Error(codes.ResourceExhausted, bp.Error())
	case errors.Is(err, router.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, handle.ErrNotFound):
		return status.Errorf(codes.NotFound, "Application '%s' not found. Ping /%s/ListApplications for available applications.", app, APIService)
	case errors.As(err, &we):
		switch we.Kind {
		case wire.ErrUnavailable:
			return status.Error(codes.Unavailable, we.Message)
		case wire.ErrBackpressure:
			return status.Error(codes.ResourceExhausted, we.Message)
		case wire.ErrTimeout:
			return status.Error(codes.DeadlineExceeded, we.Message)
		case wire.ErrNotFound:
			return status.Error(codes.Unimplemented, we.Message)
		case wire.ErrCancelled:
			return status.Error(codes.Canceled, we.Message)
		}
		return status.Error(codes.Internal, we.Message)
	case errors.As(err, &died):
		return status.Error(codes.Internal, died.Error())
	}
	p.log.V(1).Info("gRPC call failed", "requestID", reqID, "reason", err.Error())
	return status.Error(codes.Internal, err.Error())
}

func (p *Proxy) builtin(ss grpc.ServerStream, st *State, method string) error {
	switch method {
	case "Healthz":
		if st.Unhealthy != "" {
			return status.Error(codes.Unavailable, st.Unhealthy)
		}
		return ss.SendMsg(&rayapi.HealthzResponse{Message: healthyAnswer})
	case "ListApplications":
		if st.Unhealthy != "" {
			return status.Error(codes.Unavailable, st.Unhealthy)
		}
		return ss.SendMsg(&rayapi.ListApplicationsResponse{ApplicationNames: st.Apps})
	}
	return status.Errorf(codes.Unimplemented, "Method '%s' not found in %s (it has ListApplications and Healthz)", method, APIService)
}

func first(md metadata.MD, key string) string {
	if vs := md.Get(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Server runs a Proxy on a listener.
type Server struct {
	srv *grpc.Server
}

// NewServer returns a Server for p.
func NewServer(p *Proxy) *Server {
	return &Server{srv: grpc.NewServer(
		grpc.UnknownServiceHandler(p.serve),
		grpc.ForceServerCodecV2(Codec{}),
		grpc.MaxRecvMsgSize(wire.MaxPayload),
		grpc.MaxSendMsgSize(wire.MaxPayload),
	)}
}

// Serve serves on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if err := s.srv.Serve(rawsock.Listener(l)); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serving gRPC proxy on %s: %w", l.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting, tells clients to go away (GOAWAY) and waits for
// calls in flight, or ctx.
func (s *Server) Shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.srv.Stop()
	}
}
