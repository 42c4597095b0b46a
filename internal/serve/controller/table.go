package controller

import (
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// buildTable computes the routing table: routes of applications whose code
// is known, and every deployment with its serving replicas.
func (c *Controller) buildTable() *servev1.RouteTable {
	t := &servev1.RouteTable{ServeRunning: c.running, ProxyLocation: c.proxyLocation}
	if !c.running {
		return t
	}
	t.Http = &servev1.HTTPOptions{
		Host:               c.http.Host,
		Port:               int32(c.http.Port),
		RootPath:           c.http.RootPath,
		RequestTimeoutMs:   c.http.RequestTimeout.Milliseconds(),
		KeepAliveTimeoutMs: c.http.KeepAliveTimeout.Milliseconds(),
	}
	t.Grpc = grpcOptions(c.grpcOptions)
	names := make([]string, 0, len(c.apps))
	for n := range c.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := c.apps[n]
		if a.deleting || a.build == nil {
			continue
		}
		if a.spec.RoutePrefix.Set && a.spec.RoutePrefix.Value == nil {
			// route_prefix: null keeps the application off HTTP.
		} else {
			prefix := "/"
			if a.spec.RoutePrefix.Value != nil {
				prefix = *a.spec.RoutePrefix.Value
			}
			t.Routes = append(t.Routes, &servev1.Route{RoutePrefix: prefix, App: a.name, Ingress: a.ingress})
		}
		for _, dn := range a.sortedDeployments() {
			d := a.deployments[dn]
			if d.deleting {
				continue
			}
			td := &servev1.Deployment{
				App:                a.name,
				Name:               d.name,
				Ingress:            d.name == a.ingress,
				MaxOngoingRequests: int32(d.cfg.MaxOngoingRequests),
				MaxQueuedRequests:  int32(d.cfg.MaxQueuedRequests),
			}
			if d.auto != nil {
				td.AutoscalingMetricsIntervalMs = d.auto.cfg.MetricsInterval.Milliseconds()
			}
			for _, r := range d.replicas {
				if r.serving() && !r.stopRequested {
					td.Replicas = append(td.Replicas, &servev1.Replica{ReplicaId: r.id, NodeId: r.nodeID, AgentAddress: r.agentAddr, MultiplexedModelIds: r.models})
				}
			}
			if len(td.Replicas) == 0 && d.status == dashboard.DeploymentStatusDeployFailed {
				td.UnavailableMessage = "Cannot route requests to deployment '" + d.name + "' of application '" + a.name + "' because it is unavailable (DEPLOY_FAILED)."
			}
			t.Deployments = append(t.Deployments, td)
		}
	}
	return t
}

func tablesEqual(a, b *servev1.RouteTable) bool {
	ac, bc := proto.Clone(a).(*servev1.RouteTable), proto.Clone(b).(*servev1.RouteTable)
	ac.Version, bc.Version = 0, 0
	return proto.Equal(ac, bc)
}

// Table returns the current routing table.
func (c *Controller) Table() *servev1.RouteTable {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table
}

// Watch returns the current table and a channel of later ones. The channel
// is closed when cancel is called, the controller stops, or the watcher
// falls behind (it then watches again and gets a fresh snapshot).
func (c *Controller) Watch() (*servev1.RouteTable, <-chan *servev1.RouteTable, func()) {
	ch := make(chan *servev1.RouteTable, 16)
	c.mu.Lock()
	c.watchers[ch] = struct{}{}
	t := c.table
	c.mu.Unlock()
	return t, ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.watchers[ch]; ok {
			delete(c.watchers, ch)
			close(ch)
		}
	}
}

func (c *Controller) broadcastLocked(t *servev1.RouteTable) {
	for ch := range c.watchers {
		select {
		case ch <- t:
		default:
			delete(c.watchers, ch)
			close(ch)
		}
	}
}

func (c *Controller) closeWatchers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.watchers {
		delete(c.watchers, ch)
		close(ch)
	}
}

// Register adds the routing table service to a gRPC server.
func (c *Controller) Register(g grpc.ServiceRegistrar) {
	servev1.RegisterServeControllerServiceServer(g, &routeService{c: c})
}

type routeService struct {
	servev1.UnimplementedServeControllerServiceServer
	c *Controller
}

func (s *routeService) WatchRoutes(_ *servev1.WatchRoutesRequest, stream grpc.ServerStreamingServer[servev1.RouteTable]) error {
	select {
	case <-s.c.ready:
	case <-stream.Context().Done():
		return nil
	}
	t, ch, cancel := s.c.Watch()
	defer cancel()
	if err := stream.Send(t); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case t, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(t); err != nil {
				return err
			}
		}
	}
}

// Ray's default gRPC proxy port.
const defaultGRPCPort = 9000

// grpcOptions is the table's gRPC section: nil (no gRPC proxy) unless
// grpc_servicer_functions names at least one servicer, as in Ray.
func grpcOptions(g *dashboard.GRPCOptionsSchema) *servev1.GRPCOptions {
	if g == nil || len(g.GRPCServicerFunctions) == 0 {
		return nil
	}
	out := &servev1.GRPCOptions{Port: defaultGRPCPort, ServicerFunctions: g.GRPCServicerFunctions}
	if g.Port != nil {
		out.Port = int32(*g.Port)
	}
	if g.RequestTimeoutS != nil {
		out.RequestTimeoutMs = int64(*g.RequestTimeoutS * 1000)
	}
	return out
}
