// Package agent is the Serve part of every node agent: it follows the
// controller's routing table, runs the node's HTTP proxy per proxy_location,
// keeps one multiplexed connection to each local replica's Unix socket,
// reaches replicas on other nodes through their agents (HTTP/2 tunnels on
// the agent port), and routes the handle calls local replicas make.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/grpcproxy"
	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/proxy"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/router"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// ReplicaCallPath is the agent-port endpoint that tunnels one call to a
// local replica: POST /api/serve/replicas/{replica_id}/call.
const ReplicaCallPath = "/api/serve/replicas/"

// ReplicaCallURL is the tunnel URL of a replica behind agentAddress.
func ReplicaCallURL(agentAddress, replicaID string) string {
	// Replica ids contain '#'.
	return "http://" + agentAddress + ReplicaCallPath + url.PathEscape(replicaID) + "/call"
}

// Options configures an Agent.
type Options struct {
	NodeID string
	IsHead bool
	// SocketDir holds the replicas' Unix sockets.
	SocketDir string
	// Conn reaches the controller's routing table service on the head.
	Conn grpc.ClientConnInterface
	// DefaultHTTPHost is the proxy's bind host when http_options.host is
	// unset (RAY_SERVE_DEFAULT_HTTP_HOST; Ray's default 0.0.0.0).
	DefaultHTTPHost string
	// DrainPeriod is how long the proxy answers 503 on health and closes
	// kept-alive connections before it stops on shutdown, so load balancers
	// and clients move away first.
	DrainPeriod time.Duration
	HTTPClient  *http.Client
	Clock       clock.WithDelayedExecution
	// Metrics records the proxy's, routers' and local replicas' metrics
	// (nil: none); register Metrics() on the node's registry.
	Metrics *metrics.Metrics
	// LoadSamplePeriod is how often the node samples its load for the
	// autoscaling reports (DefaultLoadSamplePeriod when 0).
	LoadSamplePeriod time.Duration
	Logger           logr.Logger
}

// Agent is a node's Serve runtime.
type Agent struct {
	opts    Options
	handles *handle.Handles
	proxy   *proxy.Proxy
	grpc    *grpcproxy.Proxy
	client  servev1.ServeControllerServiceClient

	mu    sync.Mutex
	table *servev1.RouteTable
	conns map[string]*wire.Conn
	// liveConns is a copy of conns for calls to read without mu (every
	// call to a local replica looks its connection up); it is replaced,
	// under mu, whenever conns changes.
	liveConns atomic.Pointer[map[string]*wire.Conn]
	server    *proxy.Server
	proxyAddr string
	draining  bool
	// The gRPC proxy runs beside the HTTP proxy when the table has gRPC
	// options (grpc_servicer_functions set).
	grpcServer *grpcproxy.Server
	grpcAddr   string
	grpcPort   int32
}

// New returns an Agent.
func New(opts Options) *Agent {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = wire.NewH2CClient()
	}
	if opts.LoadSamplePeriod <= 0 {
		opts.LoadSamplePeriod = DefaultLoadSamplePeriod
	}
	if opts.DefaultHTTPHost == "" {
		opts.DefaultHTTPHost = "0.0.0.0"
	}
	a := &Agent{opts: opts, conns: map[string]*wire.Conn{}}
	if opts.Conn != nil {
		a.client = servev1.NewServeControllerServiceClient(opts.Conn)
	}
	a.handles = handle.New(handle.Options{LocalNodeID: opts.NodeID, Dialer: a, Clock: opts.Clock, Metrics: opts.Metrics, Logger: opts.Logger.WithName("router")})
	a.proxy = proxy.New(a.handles, opts.Logger.WithName("proxy"), opts.Metrics)
	a.grpc = grpcproxy.New(a.handles, opts.Logger.WithName("grpc-proxy"), opts.Metrics)
	return a
}

// GRPCProxyAddress is the gRPC proxy's listen address, "" while it is not
// running.
func (a *Agent) GRPCProxyAddress() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.grpcAddr
}

// Handles is the node's caller-side routing (tests and benchmarks call
// deployments through it).
func (a *Agent) Handles() *handle.Handles { return a.handles }

// ProxyAddress is the proxy's listen address, "" while it is not running.
func (a *Agent) ProxyAddress() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proxyAddr
}

// Run follows the routing table until ctx is done, then drains the proxy.
// Losing the head only pauses updates: calls keep flowing on the last table.
func (a *Agent) Run(ctx context.Context) error {
	if a.client != nil {
		reportCtx, stopReports := context.WithCancel(ctx)
		defer stopReports()
		go a.reportLoad(reportCtx)
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := a.watch(ctx)
		if ctx.Err() != nil {
			break
		}
		a.opts.Logger.V(1).Info("Routing table watch ended; retrying", "reason", fmt.Sprint(err), "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-a.opts.Clock.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
	a.shutdown()
	return nil
}

func (a *Agent) watch(ctx context.Context) error {
	if a.client == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	stream, err := a.client.WatchRoutes(ctx, &servev1.WatchRoutesRequest{NodeId: a.opts.NodeID})
	if err != nil {
		return fmt.Errorf("watching routes: %w", err)
	}
	for {
		t, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("watching routes: %w", err)
		}
		a.Apply(t)
	}
}

// Apply installs a routing table: routers, proxy routes and health, and
// starts or stops the proxy.
func (a *Agent) Apply(t *servev1.RouteTable) {
	a.handles.Update(t)
	a.mu.Lock()
	a.table = t
	a.mu.Unlock()
	a.updateProxy(t)
}

func (a *Agent) proxyWanted(t *servev1.RouteTable) bool {
	if !t.GetServeRunning() {
		return false
	}
	switch t.GetProxyLocation() {
	case dashboard.ProxyLocationDisabled:
		return false
	case dashboard.ProxyLocationHeadOnly:
		return a.opts.IsHead
	}
	return true
}

func (a *Agent) updateProxy(t *servev1.RouteTable) {
	st := proxy.State{RootPath: t.GetHttp().GetRootPath(), RequestTimeout: time.Duration(t.GetHttp().GetRequestTimeoutMs()) * time.Millisecond}
	for _, r := range t.GetRoutes() {
		st.Routes = append(st.Routes, proxy.Route{Prefix: r.RoutePrefix, App: r.App})
	}
	anyReplica, localReplica := a.handles.HasReplicas()
	a.mu.Lock()
	draining := a.draining
	a.mu.Unlock()
	switch {
	case draining:
		st.Unhealthy = proxy.MsgDraining
	case len(st.Routes) == 0:
		st.Unhealthy = proxy.MsgNoRoutes
	case !a.opts.IsHead && !anyReplica:
		st.Unhealthy = proxy.MsgNoReplicas
	case !a.opts.IsHead && !localReplica:
		// Ray drains the proxy of a worker node without replicas, so
		// Kubernetes readiness takes the pod out of the serve service.
		st.Unhealthy = proxy.MsgDraining
	}
	a.proxy.SetState(st)
	a.grpc.SetState(grpcState(t, st.Unhealthy))

	want := a.proxyWanted(t)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.updateGRPCLocked(t, want && t.GetGrpc() != nil)
	if !want && a.server != nil {
		a.opts.Logger.Info("Stopping the HTTP proxy", "address", a.proxyAddr)
		srv := a.server
		a.server, a.proxyAddr = nil, ""
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		}()
		return
	}
	if !want || a.server != nil || a.draining {
		return
	}
	host := t.GetHttp().GetHost()
	if host == "" {
		host = a.opts.DefaultHTTPHost
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(t.GetHttp().GetPort())))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		// The next table retries; the rest of Serve keeps working.
		a.opts.Logger.Error(err, "Starting the HTTP proxy failed", "address", addr)
		return
	}
	keepAlive := time.Duration(t.GetHttp().GetKeepAliveTimeoutMs()) * time.Millisecond
	srv := proxy.NewServer(a.proxy, keepAlive)
	a.server, a.proxyAddr = srv, l.Addr().String()
	a.opts.Logger.Info("Started the HTTP proxy", "address", a.proxyAddr)
	go func() {
		if err := srv.Serve(l); err != nil {
			a.opts.Logger.Error(err, "HTTP proxy stopped")
		}
	}()
}

// grpcState is the gRPC proxy's view of a table: every application with an
// ingress (gRPC ignores route prefixes), the request timeout and health.
func grpcState(t *servev1.RouteTable, unhealthy string) grpcproxy.State {
	st := grpcproxy.State{
		RequestTimeout:    time.Duration(t.GetGrpc().GetRequestTimeoutMs()) * time.Millisecond,
		ServicerFunctions: t.GetGrpc().GetServicerFunctions(),
	}
	for _, d := range t.GetDeployments() {
		if d.Ingress {
			st.Apps = append(st.Apps, d.App)
		}
	}
	if unhealthy == proxy.MsgDraining {
		st.Unhealthy = unhealthy
	}
	return st
}

// updateGRPCLocked starts, stops or moves the gRPC proxy.
func (a *Agent) updateGRPCLocked(t *servev1.RouteTable, want bool) {
	port := t.GetGrpc().GetPort()
	if a.grpcServer != nil && (!want || port != a.grpcPort) {
		a.opts.Logger.Info("Stopping the gRPC proxy", "address", a.grpcAddr)
		srv := a.grpcServer
		a.grpcServer, a.grpcAddr = nil, ""
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		}()
	}
	if !want || a.grpcServer != nil || a.draining {
		return
	}
	host := t.GetHttp().GetHost()
	if host == "" {
		host = a.opts.DefaultHTTPHost
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		a.opts.Logger.Error(err, "Starting the gRPC proxy failed", "address", addr)
		return
	}
	srv := grpcproxy.NewServer(a.grpc)
	a.grpcServer, a.grpcAddr, a.grpcPort = srv, l.Addr().String(), port
	a.opts.Logger.Info("Started the gRPC proxy", "address", a.grpcAddr)
	go func() {
		if err := srv.Serve(l); err != nil {
			a.opts.Logger.Error(err, "gRPC proxy stopped")
		}
	}()
}

// Drain takes the node's proxy out of service before the node stops its
// replicas: health answers 503 and kept-alive connections are closed (each
// gets at most one more response, marked "Connection: close") for
// DrainPeriod, while the proxy keeps serving whatever still arrives through
// load balancers that have not caught up; then it finishes the requests it
// has. The node calls it first on shutdown, so no request reaches a proxy
// whose replicas are already gone. It is idempotent.
func (a *Agent) Drain() {
	a.mu.Lock()
	already := a.draining
	a.draining = true
	srv := a.server
	gsrv := a.grpcServer
	t := a.table
	a.mu.Unlock()
	if already || srv == nil {
		return
	}
	a.opts.Logger.Info("Draining the HTTP proxy", "period", a.opts.DrainPeriod)
	if t != nil {
		a.updateProxy(t)
	}
	srv.Drain()
	if a.opts.DrainPeriod > 0 {
		<-a.opts.Clock.After(a.opts.DrainPeriod)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if gsrv != nil {
		// Healthz has answered UNAVAILABLE for the drain period; now
		// GOAWAY sends clients elsewhere and calls in flight finish.
		gsrv.Shutdown(ctx)
	}
	srv.Shutdown(ctx)
	a.mu.Lock()
	if a.server == srv {
		a.server, a.proxyAddr = nil, ""
	}
	if a.grpcServer == gsrv {
		a.grpcServer, a.grpcAddr = nil, ""
	}
	a.mu.Unlock()
}

// shutdown drains the proxy (if the node did not already) and closes the
// connections to local replicas.
func (a *Agent) shutdown() {
	a.Drain()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.server, a.proxyAddr = nil, ""
	if srv := a.grpcServer; srv != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		}()
		a.grpcServer, a.grpcAddr = nil, ""
	}
	for id, c := range a.conns {
		_ = c.Close()
		delete(a.conns, id)
	}
	a.publishConnsLocked()
}

// Open implements handle.Dialer: local replicas over their socket, others
// through their node's agent.
func (a *Agent) Open(ctx context.Context, t handle.Target) (wire.Stream, error) {
	if t.NodeID == a.opts.NodeID {
		c, err := a.localConn(ctx, t.ReplicaID)
		if err != nil {
			return nil, err
		}
		s, err := c.Open()
		if err != nil {
			return nil, err
		}
		return a.meter(t.ReplicaID, s), nil
	}
	return wire.OpenTunnel(context.WithoutCancel(ctx), a.opts.HTTPClient, ReplicaCallURL(t.AgentAddress, t.ReplicaID))
}

// localConn returns the connection to a local replica, dialing it once.
func (a *Agent) localConn(ctx context.Context, id string) (*wire.Conn, error) {
	if m := a.liveConns.Load(); m != nil {
		if c, ok := (*m)[id]; ok {
			select {
			case <-c.Done():
			default:
				return c, nil
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.conns[id]; ok {
		select {
		case <-c.Done():
		default:
			return c, nil
		}
	}
	c, err := replica.Dial(ctx, replica.SocketPath(a.opts.SocketDir, id), func(s *wire.ConnStream) {
		go a.serveReplicaCall(s)
	})
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", id, err)
	}
	a.conns[id] = c
	a.publishConnsLocked()
	go func() {
		<-c.Done()
		a.mu.Lock()
		if a.conns[id] == c {
			delete(a.conns, id)
			a.publishConnsLocked()
		}
		a.mu.Unlock()
		// The replica process is gone (or its connection is, and a new one
		// starts its series over): bound the series to live replicas.
		a.opts.Metrics.Forget(id)
	}()
	return c, nil
}

// publishConnsLocked makes the calls see conns as it is now.
func (a *Agent) publishConnsLocked() {
	m := make(map[string]*wire.Conn, len(a.conns))
	for id, c := range a.conns {
		m[id] = c
	}
	a.liveConns.Store(&m)
}

// Handler serves the agent-port endpoints: the tunnel other nodes (and the
// controller) use to reach local replicas.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ReplicaCallPath+"{id}/call", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		c, err := a.localConn(r.Context(), id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		s, err := c.Open()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		wire.ServeTunnel(w, r, a.meter(id, s))
	})
	return mux
}

// serveReplicaCall routes a handle call a local replica started.
func (a *Agent) serveReplicaCall(s *wire.ConnStream) {
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := s.Recv(ctx)
	if err != nil || f.Type != wire.TypeOpen {
		return
	}
	meta, err := wire.DecodeMeta(f.Payload)
	if err != nil {
		sendError(s, wire.ErrInternal, "malformed OPEN: "+err.Error())
		return
	}
	var body []byte
	for done := false; !done; {
		f, err := s.Recv(ctx)
		if err != nil {
			return
		}
		switch f.Type {
		case wire.TypeData:
			body = append(body, f.Payload...)
		case wire.TypeEnd:
			done = true
		case wire.TypeCancel:
			return
		}
	}
	// The calling replica's window bounds what is sent on to it, as the
	// router's own window bounds what the called replica sends here.
	window := wire.NewWindow(meta.Window)
	go func() {
		for {
			f, err := s.Recv(ctx)
			if err != nil || f.Type == wire.TypeCancel {
				cancel()
				return
			}
			if f.Type == wire.TypeCredit {
				window.Give(wire.DecodeCredit(f.Payload))
			}
		}
	}()
	if meta.TimeoutMS > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, time.Duration(meta.TimeoutMS)*time.Millisecond)
		defer c()
	}
	resp, err := a.handles.Invoke(ctx, handle.Call{App: meta.App, Deployment: meta.Deployment, Meta: meta, Body: body})
	if err != nil {
		kind, msg := classify(err)
		sendError(s, kind, msg)
		return
	}
	defer resp.Close()
	if s.Send(wire.Out{Type: wire.TypeHead, Payload: wire.EncodeHead(resp.Head)}) != nil {
		return
	}
	for {
		chunk, err := resp.Next(ctx)
		if errors.Is(err, io.EOF) {
			_ = s.Send(wire.Out{Type: wire.TypeEnd})
			return
		}
		if err != nil {
			kind, msg := classify(err)
			sendError(s, kind, msg)
			return
		}
		if window.Take(ctx, len(chunk)) != nil {
			return
		}
		if s.Send(wire.Out{Type: wire.TypeData, Payload: chunk}) != nil {
			return
		}
	}
}

func sendError(s wire.Stream, kind, msg string) {
	_ = s.Send(wire.Out{Type: wire.TypeError, Payload: wire.JSON(wire.Error{Kind: kind, Message: msg})})
}

// classify maps a call error to the kind a replica's handle raises.
func classify(err error) (string, string) {
	var we *wire.Error
	var bp *router.BackPressureError
	switch {
	case errors.As(err, &we):
		return we.Kind, we.Message
	case errors.As(err, &bp):
		return wire.ErrBackpressure, bp.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return wire.ErrTimeout, "The handle call timed out."
	case errors.Is(err, context.Canceled):
		return wire.ErrCancelled, "The handle call was cancelled."
	case errors.Is(err, handle.ErrNotFound):
		return wire.ErrNotFound, err.Error()
	}
	return wire.ErrUnavailable, err.Error()
}
