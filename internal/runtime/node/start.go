package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/requestapi"
	coreagent "github.com/rayk8s/rayk8s/internal/runtime/core/agent"
	coresched "github.com/rayk8s/rayk8s/internal/runtime/core/sched"
	corestate "github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
	"github.com/rayk8s/rayk8s/internal/runtime/core/storemetrics"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/jobs"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
	"github.com/rayk8s/rayk8s/internal/runtime/raylet"
	"github.com/rayk8s/rayk8s/internal/runtime/raymetrics"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
	serveagent "github.com/rayk8s/rayk8s/internal/serve/agent"
	servecontroller "github.com/rayk8s/rayk8s/internal/serve/controller"
	servemetrics "github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Start binds every port, starts every component and returns. Failures to
// bind are returned right away; later component failures end the node and
// show in Err.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	s, err := newStarter(cfg)
	if err != nil {
		return nil, err
	}
	return s.start(ctx)
}

// starter holds what Start has built so far, so that one failed step
// releases everything the steps before it acquired.
type starter struct {
	cfg        Config
	log        logr.Logger
	n          *Node
	sessionDir string
	logsDir    string

	listeners []net.Listener
	conn      *grpc.ClientConn
	comps     []component

	gcsServer *gcs.Server
	// coreScheduler places tasks, actors and placement groups (head only).
	coreScheduler *coresched.Scheduler
	// autoscaling keeps each node's idleness and the pending demand the
	// cluster autoscaler reads; placements go through it.
	autoscaling     *gcs.AutoscalingState
	agentListener   net.Listener
	metricsListener net.Listener
	procs           *raylet.ProcessManager
	pipEnvs         *pipenv.Manager
	serveMetrics    *servemetrics.Metrics
	storeMetrics    *storemetrics.Collector
	serveController *servecontroller.Controller
	jobManager      *jobs.Manager
	metricsOpts     raymetrics.Options
	// tlsServer and tlsClient are the node's mutual-TLS configurations (nil without TLS).
	tlsServer, tlsClient *tls.Config
}

// newStarter fills in the node's defaults and creates its session directory.
func newStarter(cfg Config) (*starter, error) {
	if cfg.NodeID == "" {
		cfg.NodeID = raylet.NewNodeID()
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = "127.0.0.1"
	}
	sessionName := "session_" + time.Now().Format("2006-01-02_15-04-05_000000") + "_" + strconv.Itoa(os.Getpid())
	sessionDir, err := makeSession(cfg.TempDir, sessionName)
	if err != nil {
		return nil, err
	}
	return &starter{
		cfg:        cfg,
		log:        cfg.Logger,
		n:          &Node{cfg: cfg, sessionName: sessionName, done: make(chan struct{})},
		sessionDir: sessionDir,
		logsDir:    filepath.Join(sessionDir, "logs"),
	}, nil
}

// start runs the steps in order and hands the components to supervise; on
// a failed step it releases what earlier steps acquired.
func (s *starter) start(ctx context.Context) (*Node, error) {
	if err := s.build(ctx); err != nil {
		s.release()
		return nil, err
	}
	return s.run(ctx), nil
}

func (s *starter) build(ctx context.Context) error {
	if err := s.loadTLS(); err != nil {
		return err
	}
	if s.cfg.Head {
		if err := s.addControlService(ctx); err != nil {
			return err
		}
	} else {
		s.n.gcsAddr = s.cfg.GCSAddress
	}
	if err := s.dialControlService(); err != nil {
		return err
	}
	if err := s.listenAgentAndMetrics(); err != nil {
		return err
	}
	if err := s.makeSocketDir(); err != nil {
		return err
	}
	s.addNodeAgent()
	s.addServeAgent()
	if s.cfg.Head {
		s.addJobManager()
		s.addServeController()
		if s.cfg.IncludeDashboard {
			if err := s.addDashboard(ctx); err != nil {
				return err
			}
		}
		s.writeCurrentClusterFile()
	}
	s.addMetricsExporter()
	return nil
}

// release undoes a partial start: listeners, the control-service
// connection and the replica socket directory. The session directory stays,
// as Ray keeps old sessions.
func (s *starter) release() {
	for _, l := range s.listeners {
		_ = l.Close()
	}
	if s.conn != nil {
		_ = s.conn.Close()
	}
	if s.n.socketDir != "" {
		_ = os.RemoveAll(s.n.socketDir)
	}
}

func (s *starter) listen(host string, port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listening on %s:%d: %w", host, port, err)
	}
	s.listeners = append(s.listeners, l)
	return l, nil
}

func (s *starter) add(name string, run func(ctx context.Context) error) {
	s.comps = append(s.comps, component{name, run})
}

// addControlService binds the head's GCS port and creates the control
// service with its health checker.
func (s *starter) addControlService(ctx context.Context) error {
	gl, err := s.listen("", s.cfg.GCSPort)
	if err != nil {
		return err
	}
	s.n.gcsAddr = net.JoinHostPort(s.cfg.NodeIP, strconv.Itoa(gl.Addr().(*net.TCPAddr).Port))
	gcsServer, err := gcs.NewServer(ctx, gcs.Options{
		HeartbeatPeriod:  s.cfg.HeartbeatPeriod,
		FailureThreshold: s.cfg.FailureThreshold,
		Logger:           s.log.WithName("gcs"),
		StorageConfig:    s.cfg.GCSStorage,
		AuthToken:        s.cfg.AuthToken,
		TLS:              s.tlsServer,
		ClusterID:        raylet.NewNodeID()[:32],
		SessionName:      s.n.sessionName,
	})
	if err != nil {
		return err
	}
	s.gcsServer = gcsServer
	s.autoscaling = gcs.NewAutoscalingState(gcsServer, gcs.AutoscalingOptions{
		ProcessKinds: []string{jobs.ProcessKind, servecontroller.ReplicaKind},
	})
	gcsServer.RegisterService(s.autoscaling.Register)
	coreScheduler := coresched.New(coresched.Options{Cluster: gcsServer, Demand: s.autoscaling, Logger: s.log.WithName("core_scheduler")})
	gcsServer.RegisterService(coreScheduler.Register)
	s.coreScheduler = coreScheduler
	s.add("core_scheduler", coreScheduler.Run)
	s.add("gcs_server", func(ctx context.Context) error { return gcsServer.Serve(ctx, gl) })
	s.add("gcs_health_checker", gcsServer.Run)
	return nil
}

// dialControlService opens the node's one connection to the head's control
// service, shared by every component.
func (s *starter) dialControlService() error {
	conn, err := gcs.Dial(s.n.gcsAddr, gcs.WithAuthToken(s.cfg.AuthToken), gcs.WithTLS(s.tlsClient))
	if err != nil {
		return err
	}
	s.conn = conn
	return nil
}

// gcsCheck asks the control service whether it is alive, for the health
// endpoints of the head's agent and dashboard.
func (s *starter) gcsCheck(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := gcsv1.NewNodeServiceClient(s.conn).CheckAlive(ctx, &gcsv1.CheckAliveRequest{})
	return err
}

func (s *starter) listenAgentAndMetrics() error {
	al, err := s.listen("", s.cfg.AgentPort)
	if err != nil {
		return err
	}
	s.agentListener = al
	s.n.agentPort = al.Addr().(*net.TCPAddr).Port
	ml, err := s.listen("", s.cfg.MetricsPort)
	if err != nil {
		return err
	}
	s.metricsListener = ml
	s.n.metricsPort = ml.Addr().(*net.TCPAddr).Port
	return nil
}

// requireToken guards the agent port like the dashboard when token authentication is on:
// anyone who reaches it could otherwise run code (Ray core tasks), read objects and logs.
// The health checks stay open for Kubernetes probes.
func (s *starter) requireToken(h http.Handler) http.Handler {
	if s.cfg.AuthToken == "" {
		return h
	}
	return dashboard.RequireToken(s.cfg.AuthToken, dashboard.HealthPaths, h)
}

// agentClient makes c send the cluster's token, for calls to other nodes' agent ports.
func (s *starter) agentClient(c *http.Client) *http.Client {
	return dashboard.ClientWithToken(c, s.cfg.AuthToken)
}

// makeSocketDir gives replica sockets a short path of their own: a Unix
// socket path may not exceed 108 bytes, and session directories can be long.
func (s *starter) makeSocketDir() error {
	socketDir, err := replica.MakeSocketDir()
	if err != nil {
		return err
	}
	s.n.socketDir = socketDir
	return nil
}

// addNodeAgent creates the process manager and the raylet agent that
// registers the node and reports its processes, and the node's metrics.
func (s *starter) addNodeAgent() {
	var agent *raylet.Agent
	// runtime_env pip venvs outlive a session, as they are keyed by their
	// package list alone: the node's next session reuses them.
	s.pipEnvs = &pipenv.Manager{CacheDir: filepath.Join(filepath.Dir(s.sessionDir), "runtime_resources", "pip"), Python: s.cfg.ServePython}
	s.procs = raylet.NewProcessManager(raylet.ProcessManagerOptions{
		LogsDir:        s.logsDir,
		Env:            map[string]string{replica.SocketDirEnv: s.n.socketDir},
		SelfExecutable: s.cfg.RayExecutable,
		WorkingDirs: &raylet.WorkingDirResolver{
			CacheDir:     filepath.Join(s.sessionDir, "runtime_resources"),
			FetchPackage: packageFetcher(s.conn),
		},
		PipEnvs: s.pipEnvs,
		OnEvent: func(st *gcsv1.ProcessStatus) { agent.ReportProcessEvent(st) },
		Logger:  s.log.WithName("processes"),
	})
	hostname, _ := os.Hostname()
	agent = raylet.NewAgent(raylet.AgentOptions{
		Node: &gcsv1.Node{
			NodeId:         s.cfg.NodeID,
			NodeIpAddress:  s.cfg.NodeIP,
			IsHead:         s.cfg.Head,
			ResourcesTotal: s.cfg.Resources,
			Labels:         s.cfg.Labels,
			AgentPort:      int32(s.n.agentPort),
			MetricsPort:    int32(s.n.metricsPort),
			Hostname:       hostname,
			StartTimeMs:    time.Now().UnixMilli(),
			SessionName:    s.n.sessionName,
		},
		Conn:             s.conn,
		Processes:        s.procs,
		ReconnectTimeout: s.cfg.ReconnectTimeout,
		Logger:           s.log.WithName("raylet"),
	})
	s.add("raylet", agent.Run)
	procs := s.procs
	s.metricsOpts = raymetrics.Options{
		NodeResources:    s.cfg.Resources,
		RunningProcesses: func() int { return len(procs.Running()) },
		SessionName:      s.n.sessionName,
	}
}

// addServeAgent creates the node's Serve agent (proxy and routers) and the
// agent's HTTP port, which serves replica calls from other nodes and the
// raylet's health and log endpoints.
func (s *starter) addServeAgent() {
	// Serve's metrics read the routers (every node) and the controller's
	// replicas (head) at scrape time; both exist before the exporter runs.
	var serveAgent *serveagent.Agent
	sources := servemetrics.Sources{Routers: func() []servemetrics.RouterStat { return serveAgent.Handles().RouterStats() }}
	if s.cfg.Head {
		sources.Replicas = func() []servemetrics.ReplicaStat { return s.serveController.ReplicaStats() }
		sources.Autoscaling = func() []servemetrics.AutoscalingStat { return s.serveController.AutoscalingStats() }
	}
	s.serveMetrics = servemetrics.New(nil, sources)
	serveAgent = serveagent.New(serveagent.Options{
		NodeID:          s.cfg.NodeID,
		IsHead:          s.cfg.Head,
		SocketDir:       s.n.socketDir,
		Conn:            s.conn,
		DefaultHTTPHost: s.cfg.ServeHTTPHost,
		DrainPeriod:     s.cfg.ServeDrainPeriod,
		HTTPClient:      s.agentClient(s.peerClient()),
		Metrics:         s.serveMetrics,
		Logger:          s.log.WithName("serve"),
	})
	s.n.serve = serveAgent
	var agentGCSCheck raylet.GCSCheck
	if s.cfg.Head {
		agentGCSCheck = s.gcsCheck
	}
	// Ray core: the node's task and actor workers, reached by drivers over a Unix socket and by
	// other nodes' agents on the agent port.
	spillRoot := s.cfg.ObjectSpillingDir
	if spillRoot == "" {
		spillRoot = s.sessionDir
	}
	coreAgent := coreagent.New(coreagent.Options{NodeID: s.cfg.NodeID, NodeIP: s.cfg.NodeIP, IsHead: s.cfg.Head, GCSAddress: s.n.gcsAddr,
		SocketDir: s.n.socketDir, TempDir: s.cfg.TempDir, LogsDir: s.logsDir, Python: s.cfg.ServePython, Conn: s.conn,
		PipEnvs: s.pipEnvs, HTTPClient: s.agentClient(s.corePeerClient()), Logger: s.log.WithName("core"),
		// One directory per node, so that nodes sharing a spill directory delete only their own files.
		ObjectStoreMemory: s.cfg.ObjectStoreMemory, SpillDir: filepath.Join(spillRoot, "ray_spilled_objects_"+s.cfg.NodeID)})
	s.storeMetrics = storemetrics.New(coreAgent.Store().Stats)
	s.add("core_worker_service", coreAgent.Run)
	agentMux := http.NewServeMux()
	agentMux.Handle(serveagent.ReplicaCallPath, serveAgent.Handler())
	agentMux.Handle(coreagent.HTTPPath, coreAgent.Handler())
	agentMux.Handle("/", raylet.Handler(s.logsDir, agentGCSCheck))
	// Other nodes reach this node's replicas over HTTP/2 on this port.
	// With token authentication every path but the health checks needs the cluster's token.
	guarded := s.requireToken(agentMux)
	if s.tlsServer == nil {
		s.add("dashboard_agent", serveHTTP(s.agentListener, guarded, h2cProtocols()))
	} else {
		// Peers come with TLS; the kubelet's probes and log readers in plain text, which
		// must not reach replicas or objects.
		tlsConns, plainConns := raytls.Split(s.agentListener)
		s.add("dashboard_agent", serveHTTPS(tlsConns, guarded, s.tlsServer))
		s.add("dashboard_agent_plain", serveHTTP(plainConns, raytls.PlainGuard(guarded, serveagent.ReplicaCallPath, coreagent.HTTPPath), nil))
	}
	s.add("serve_agent", serveAgent.Run)

}

// addJobManager creates the head's job manager over the control service's
// storage; the head's metrics list its nodes and jobs.
func (s *starter) addJobManager() {
	s.jobManager = jobs.NewManager(jobs.Options{
		Store:                s.gcsServer.Storage(),
		Cluster:              s.autoscaling.Cluster(),
		GCSAddress:           s.n.gcsAddr,
		AllowDriverOnWorkers: s.cfg.AllowDriverOnWorkers,
		StopGracePeriod:      s.cfg.JobStopGracePeriod,
		StartTimeout:         s.cfg.JobStartTimeout,
		Logs:                 &jobs.HTTPLogReader{Client: s.agentClient(&http.Client{Timeout: 10 * time.Second})},
		Logger:               s.log.WithName("jobs"),
	})
	s.add("job_manager", s.jobManager.Run)
	s.metricsOpts.Nodes = s.gcsServer.Nodes
	s.metricsOpts.Jobs = s.jobManager.List
}

// addServeController creates the head's Serve controller and registers its
// gRPC service on the control service.
func (s *starter) addServeController() {
	s.serveController = servecontroller.New(servecontroller.Options{
		Cluster:    s.autoscaling.Cluster(),
		Demand:     s.autoscaling,
		Store:      s.gcsServer.Storage(),
		Replicas:   &servecontroller.TunnelClient{HTTP: s.agentClient(s.peerClient())},
		Python:     s.cfg.ServePython,
		GCSAddress: s.n.gcsAddr,
		Logger:     s.log.WithName("serve_controller"),
	})
	s.gcsServer.RegisterService(s.serveController.Register)
	s.add("serve_controller", s.serveController.Run)
}

// addDashboard binds the dashboard port, mounts the Jobs, packages and Serve
// APIs and publishes the dashboard's address in the control service KV.
func (s *starter) addDashboard(ctx context.Context) error {
	dl, err := s.listen(dashboardBindHost(s.cfg.DashboardHost), s.cfg.DashboardPort)
	if err != nil {
		return err
	}
	port := dl.Addr().(*net.TCPAddr).Port
	s.n.dashAddr = net.JoinHostPort(dashboardPublicHost(s.cfg.DashboardHost, s.cfg.NodeIP), strconv.Itoa(port))
	dash := dashboard.NewServer(dashboard.ServerOptions{SessionName: s.n.sessionName, GCSCheck: s.gcsCheck, AuthToken: s.cfg.AuthToken, Logger: s.log.WithName("dashboard")})
	jh := jobs.NewHandler(s.jobManager, s.log.WithName("jobs"))
	dash.Handle("/api/jobs/", jh)
	dash.Handle("/api/jobs", jh)
	dash.Handle("/api/packages/", jobs.NewPackagesHandler(s.gcsServer.Storage()))
	dash.Handle("/api/serve/", servecontroller.NewHandler(s.serveController, s.log.WithName("serve_api")))
	dash.Handle(requestapi.Path, requestapi.NewHandler(s.autoscaling, s.log.WithName("request_resources")))
	dash.Handle("/api/v0/", corestate.NewHandler(corestate.Options{Nodes: s.gcsServer.Nodes, SubmittedJobs: s.jobManager.List,
		PlacementGroups: s.coreScheduler.Groups, Client: s.agentClient(&http.Client{}), Logger: s.log.WithName("state_api")}))
	s.add("dashboard", serveHTTP(dl, dash, nil))
	if _, err := s.gcsServer.Storage().Put(ctx, DashboardKVNamespace, DashboardKVKey, []byte(s.n.dashAddr), true); err != nil {
		return fmt.Errorf("publishing the dashboard address: %w", err)
	}
	return nil
}

// writeCurrentClusterFile lets `ray status` and friends on this machine find
// the head without flags; failing to write it is not fatal.
func (s *starter) writeCurrentClusterFile() {
	if s.cfg.TempDir != "" {
		_ = os.WriteFile(filepath.Join(s.cfg.TempDir, CurrentClusterFile), []byte(s.n.gcsAddr+"\n"), 0o644)
	}
}

// addMetricsExporter serves the node's and Serve's metrics on the metrics
// port.
func (s *starter) addMetricsExporter() {
	reg := raymetrics.NewRegistry(s.metricsOpts)
	reg.MustRegister(s.serveMetrics, s.storeMetrics)
	s.add("metrics_exporter", serveHTTP(s.metricsListener, raymetrics.Handler(reg), nil))
}

// run hands the components to supervise, which owns the listeners and the
// connection from here on.
func (s *starter) run(ctx context.Context) *Node {
	n := s.n
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	stopParent := context.AfterFunc(ctx, cancel)
	go n.supervise(runCtx, s.comps, s.procs, s.conn, stopParent)
	s.log.Info("Started Ray node", "nodeID", s.cfg.NodeID, "head", s.cfg.Head, "gcsAddress", n.gcsAddr,
		"dashboard", n.dashAddr, "agentPort", n.agentPort, "metricsPort", n.metricsPort, "session", s.sessionDir)
	return n
}

// loadTLS reads the node's certificates when TLS is on.
func (s *starter) loadTLS() error {
	if s.cfg.TLS == nil {
		return nil
	}
	var err error
	if s.tlsServer, err = s.cfg.TLS.Server(); err != nil {
		return err
	}
	s.tlsClient, err = s.cfg.TLS.Client()
	return err
}

// tlsPeerClient is the core agent's client to other agents with TLS on; nil keeps its own.
func (s *starter) tlsPeerClient() *http.Client {
	if s.tlsClient == nil {
		return nil
	}
	return raytls.HTTPClient(s.tlsClient)
}

// corePeerClient is Ray core's client of other nodes' agents: HTTP/1.1 in plain text, or
// HTTP/2 over mutual TLS.
func (s *starter) corePeerClient() *http.Client {
	if c := s.tlsPeerClient(); c != nil {
		return c
	}
	return &http.Client{}
}

// peerClient is the HTTP client of node-to-node calls (Serve replicas, Ray core): HTTP/2 in
// plain text, or over mutual TLS.
func (s *starter) peerClient() *http.Client {
	if s.tlsClient != nil {
		return raytls.HTTPClient(s.tlsClient)
	}
	return wire.NewH2CClient()
}
