// Package node assembles a Ray node from the runtime's components: on the
// head the control service, the dashboard with the job manager, and on
// every node the agent, its HTTP port and the metrics exporter. `ray start`
// runs one; tests start them in-process.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	coreagent "github.com/rayk8s/rayk8s/internal/runtime/core/agent"
	coresched "github.com/rayk8s/rayk8s/internal/runtime/core/sched"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/jobs"
	"github.com/rayk8s/rayk8s/internal/runtime/raylet"
	"github.com/rayk8s/rayk8s/internal/runtime/raymetrics"
	serveagent "github.com/rayk8s/rayk8s/internal/serve/agent"
	servecontroller "github.com/rayk8s/rayk8s/internal/serve/controller"
	servemetrics "github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// DashboardKVNamespace and DashboardKVKey hold the dashboard's host:port in
// the control service KV; the `ray job` CLI resolves a GCS address with it.
const (
	DashboardKVNamespace = "dashboard"
	DashboardKVKey       = "dashboard"
)

// DefaultServeDrainPeriod is the `ray start` default of
// Config.ServeDrainPeriod: long enough for kube-proxy to drop a terminating
// pod from a Service and for kept-alive clients to reconnect, well within a
// pod's default 30 s termination grace period.
const DefaultServeDrainPeriod = 5 * time.Second

// CurrentClusterFile is written under the temp dir by the head with its GCS
// address, so `ray status` and friends find a local cluster without flags.
const CurrentClusterFile = "ray_current_cluster"

// Config describes the node to start. Zero ports pick free ones.
type Config struct {
	Head bool
	// GCSAddress is the head's host:port (workers only; the head computes it).
	GCSAddress string
	NodeIP     string
	// GCSPort is the control service port (head only).
	GCSPort          int
	IncludeDashboard bool
	DashboardHost    string
	DashboardPort    int
	AgentPort        int
	MetricsPort      int
	Resources        map[string]float64
	Labels           map[string]string
	TempDir          string
	NodeID           string

	HeartbeatPeriod      time.Duration
	FailureThreshold     int
	ReconnectTimeout     time.Duration
	JobStopGracePeriod   time.Duration
	JobStartTimeout      time.Duration
	AllowDriverOnWorkers bool

	// ServeHTTPHost is the proxy's bind host when the Serve config leaves
	// http_options.host unset (RAY_SERVE_DEFAULT_HTTP_HOST, default 0.0.0.0).
	ServeHTTPHost string
	// ServePython is the interpreter of Python replicas (default python3).
	ServePython string
	// ServeDrainPeriod is how long the proxy fails health checks and closes
	// kept-alive connections before it stops when the node shuts down
	// (RAYK8S_SERVE_DRAIN_PERIOD_S, default DefaultServeDrainPeriod).
	ServeDrainPeriod time.Duration
	// RayExecutable is the `ray` binary built-in replicas run as (`ray
	// serve-replica`); empty means this process's own executable.
	RayExecutable string

	Logger logr.Logger
}

// Node is a running node.
type Node struct {
	cfg         Config
	sessionName string
	gcsAddr     string
	dashAddr    string
	agentPort   int
	metricsPort int
	socketDir   string
	serve       *serveagent.Agent

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// GCSAddress is the control service's host:port.
func (n *Node) GCSAddress() string { return n.gcsAddr }

// DashboardURL is http://host:port of the dashboard (head only).
func (n *Node) DashboardURL() string {
	if n.dashAddr == "" {
		return ""
	}
	return "http://" + n.dashAddr
}

// AgentPort is the agent's HTTP port.
func (n *Node) AgentPort() int { return n.agentPort }

// MetricsPort is the metrics export port.
func (n *Node) MetricsPort() int { return n.metricsPort }

// NodeID is this node's id.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// ReplicaSocketDir holds the node's replica sockets.
func (n *Node) ReplicaSocketDir() string { return n.socketDir }

// Serve is the node's Serve agent (proxy, routers).
func (n *Node) Serve() *serveagent.Agent { return n.serve }

// Done is closed once every component has stopped.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why the node stopped: nil after Stop, the first component failure
// otherwise. Valid after Done is closed.
func (n *Node) Err() error { return n.err }

// Stop shuts the node down and waits for it.
func (n *Node) Stop() error {
	n.cancel()
	<-n.done
	return n.err
}

type component struct {
	name string
	run  func(ctx context.Context) error
}

// Start binds every port, starts every component and returns. Failures to
// bind are returned right away; later component failures end the node and
// show in Err.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.NodeID == "" {
		cfg.NodeID = raylet.NewNodeID()
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = "127.0.0.1"
	}
	log := cfg.Logger
	sessionName := "session_" + time.Now().Format("2006-01-02_15-04-05_000000") + "_" + strconv.Itoa(os.Getpid())
	sessionDir, err := makeSession(cfg.TempDir, sessionName)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, sessionName: sessionName, done: make(chan struct{})}
	logsDir := filepath.Join(sessionDir, "logs")

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}
	listen := func(host string, port int) (net.Listener, error) {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listening on %s:%d: %w", host, port, err)
		}
		listeners = append(listeners, l)
		return l, nil
	}

	var comps []component
	var gcsServer *gcs.Server
	var jobManager *jobs.Manager
	var serveController *servecontroller.Controller

	if cfg.Head {
		gl, err := listen("", cfg.GCSPort)
		if err != nil {
			return nil, err
		}
		n.gcsAddr = net.JoinHostPort(cfg.NodeIP, strconv.Itoa(gl.Addr().(*net.TCPAddr).Port))
		gcsServer, err = gcs.NewServer(ctx, gcs.Options{
			HeartbeatPeriod:  cfg.HeartbeatPeriod,
			FailureThreshold: cfg.FailureThreshold,
			Logger:           log.WithName("gcs"),
			ClusterID:        raylet.NewNodeID()[:32],
			SessionName:      sessionName,
		})
		if err != nil {
			closeAll()
			return nil, err
		}
		coreScheduler := coresched.New(coresched.Options{Cluster: gcsServer, Logger: log.WithName("core_scheduler")})
		gcsServer.RegisterService(coreScheduler.Register)
		comps = append(comps,
			component{"core_scheduler", coreScheduler.Run},
			component{"gcs_server", func(ctx context.Context) error { return gcsServer.Serve(ctx, gl) }},
			component{"gcs_health_checker", gcsServer.Run},
		)
	} else {
		n.gcsAddr = cfg.GCSAddress
	}

	conn, err := gcs.Dial(n.gcsAddr)
	if err != nil {
		closeAll()
		return nil, err
	}
	gcsCheck := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := gcsv1.NewNodeServiceClient(conn).CheckAlive(ctx, &gcsv1.CheckAliveRequest{})
		return err
	}

	al, err := listen("", cfg.AgentPort)
	if err != nil {
		return nil, err
	}
	n.agentPort = al.Addr().(*net.TCPAddr).Port
	ml, err := listen("", cfg.MetricsPort)
	if err != nil {
		return nil, err
	}
	n.metricsPort = ml.Addr().(*net.TCPAddr).Port

	// Replica sockets live in a short path of their own: a Unix socket path
	// may not exceed 108 bytes, and session directories can be long.
	socketDir, err := replica.MakeSocketDir()
	if err != nil {
		closeAll()
		return nil, err
	}
	n.socketDir = socketDir

	var agent *raylet.Agent
	procs := raylet.NewProcessManager(raylet.ProcessManagerOptions{
		LogsDir:        logsDir,
		Env:            map[string]string{replica.SocketDirEnv: socketDir},
		SelfExecutable: cfg.RayExecutable,
		WorkingDirs: &raylet.WorkingDirResolver{
			CacheDir:     filepath.Join(sessionDir, "runtime_resources"),
			FetchPackage: packageFetcher(conn),
		},
		OnEvent: func(st *gcsv1.ProcessStatus) { agent.ReportProcessEvent(st) },
		Logger:  log.WithName("processes"),
	})
	hostname, _ := os.Hostname()
	agent = raylet.NewAgent(raylet.AgentOptions{
		Node: &gcsv1.Node{
			NodeId:         cfg.NodeID,
			NodeIpAddress:  cfg.NodeIP,
			IsHead:         cfg.Head,
			ResourcesTotal: cfg.Resources,
			Labels:         cfg.Labels,
			AgentPort:      int32(n.agentPort),
			MetricsPort:    int32(n.metricsPort),
			Hostname:       hostname,
			StartTimeMs:    time.Now().UnixMilli(),
			SessionName:    sessionName,
		},
		Conn:             conn,
		Processes:        procs,
		ReconnectTimeout: cfg.ReconnectTimeout,
		Logger:           log.WithName("raylet"),
	})
	var agentGCSCheck raylet.GCSCheck
	if cfg.Head {
		agentGCSCheck = gcsCheck
	}
	// Serve's metrics read the routers (every node) and the controller's
	// replicas (head) at scrape time; both exist before the exporter runs.
	var serveAgent *serveagent.Agent
	serveSources := servemetrics.Sources{Routers: func() []servemetrics.RouterStat { return serveAgent.Handles().RouterStats() }}
	if cfg.Head {
		serveSources.Replicas = func() []servemetrics.ReplicaStat { return serveController.ReplicaStats() }
	}
	serveMetrics := servemetrics.New(nil, serveSources)
	serveAgent = serveagent.New(serveagent.Options{
		NodeID:          cfg.NodeID,
		IsHead:          cfg.Head,
		SocketDir:       socketDir,
		Conn:            conn,
		DefaultHTTPHost: cfg.ServeHTTPHost,
		DrainPeriod:     cfg.ServeDrainPeriod,
		Metrics:         serveMetrics,
		Logger:          log.WithName("serve"),
	})
	n.serve = serveAgent
	coreAgent := coreagent.New(coreagent.Options{NodeID: cfg.NodeID, NodeIP: cfg.NodeIP, IsHead: cfg.Head, GCSAddress: n.gcsAddr,
		SocketDir: socketDir, TempDir: cfg.TempDir, LogsDir: logsDir, Python: cfg.ServePython, Conn: conn, Logger: log.WithName("core")})
	agentMux := http.NewServeMux()
	agentMux.Handle(serveagent.ReplicaCallPath, serveAgent.Handler())
	agentMux.Handle(coreagent.HTTPPath, coreAgent.Handler())
	agentMux.Handle("/", raylet.Handler(logsDir, agentGCSCheck))
	comps = append(comps,
		component{"core_worker_service", coreAgent.Run},
		component{"raylet", agent.Run},
		// Other nodes reach this node's replicas over HTTP/2 on this port.
		component{"dashboard_agent", serveHTTP(al, agentMux, h2cProtocols())},
		component{"serve_agent", serveAgent.Run},
	)

	metricsOpts := raymetrics.Options{
		NodeResources:    cfg.Resources,
		RunningProcesses: func() int { return len(procs.Running()) },
		SessionName:      sessionName,
	}

	if cfg.Head {
		jobManager = jobs.NewManager(jobs.Options{
			Store:                gcsServer.Storage(),
			Cluster:              gcsServer,
			GCSAddress:           n.gcsAddr,
			AllowDriverOnWorkers: cfg.AllowDriverOnWorkers,
			StopGracePeriod:      cfg.JobStopGracePeriod,
			StartTimeout:         cfg.JobStartTimeout,
			Logger:               log.WithName("jobs"),
		})
		comps = append(comps, component{"job_manager", jobManager.Run})
		serveController = servecontroller.New(servecontroller.Options{
			Cluster:    gcsServer,
			Store:      gcsServer.Storage(),
			Replicas:   &servecontroller.TunnelClient{HTTP: wire.NewH2CClient()},
			Python:     cfg.ServePython,
			GCSAddress: n.gcsAddr,
			Logger:     log.WithName("serve_controller"),
		})
		gcsServer.RegisterService(serveController.Register)
		comps = append(comps, component{"serve_controller", serveController.Run})
		metricsOpts.Nodes = gcsServer.Nodes
		metricsOpts.Jobs = jobManager.List
		if cfg.IncludeDashboard {
			dl, err := listen(dashboardBindHost(cfg.DashboardHost), cfg.DashboardPort)
			if err != nil {
				return nil, err
			}
			port := dl.Addr().(*net.TCPAddr).Port
			n.dashAddr = net.JoinHostPort(dashboardPublicHost(cfg.DashboardHost, cfg.NodeIP), strconv.Itoa(port))
			dash := dashboard.NewServer(dashboard.ServerOptions{SessionName: sessionName, GCSCheck: gcsCheck, Logger: log.WithName("dashboard")})
			jh := jobs.NewHandler(jobManager, log.WithName("jobs"))
			dash.Handle("/api/jobs/", jh)
			dash.Handle("/api/jobs", jh)
			dash.Handle("/api/packages/", jobs.NewPackagesHandler(gcsServer.Storage()))
			dash.Handle("/api/serve/", servecontroller.NewHandler(serveController, log.WithName("serve_api")))
			comps = append(comps, component{"dashboard", serveHTTP(dl, dash, nil)})
			if _, err := gcsServer.Storage().Put(ctx, DashboardKVNamespace, DashboardKVKey, []byte(n.dashAddr), true); err != nil {
				closeAll()
				return nil, fmt.Errorf("publishing the dashboard address: %w", err)
			}
		}
		if cfg.TempDir != "" {
			_ = os.WriteFile(filepath.Join(cfg.TempDir, CurrentClusterFile), []byte(n.gcsAddr+"\n"), 0o644)
		}
	}
	metricsReg := raymetrics.NewRegistry(metricsOpts)
	metricsReg.MustRegister(serveMetrics)
	comps = append(comps, component{"metrics_exporter", serveHTTP(ml, raymetrics.Handler(metricsReg), nil)})

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.cancel = cancel
	stopParent := context.AfterFunc(ctx, cancel)
	go n.supervise(runCtx, comps, procs, conn, stopParent)
	log.Info("Started Ray node", "nodeID", cfg.NodeID, "head", cfg.Head, "gcsAddress", n.gcsAddr,
		"dashboard", n.dashAddr, "agentPort", n.agentPort, "metricsPort", n.metricsPort, "session", sessionDir)
	return n, nil
}

// supervise runs the components; the first one to return while the node is
// meant to run takes the node down (Ray's --block semantics).
func (n *Node) supervise(ctx context.Context, comps []component, procs *raylet.ProcessManager, conn *grpc.ClientConn, stopParent func() bool) {
	defer close(n.done)
	defer stopParent()
	compCtx, cancelComps := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var once sync.Once
	var failure error
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(compCtx)
			if ctx.Err() != nil {
				return
			}
			once.Do(func() {
				if err == nil {
					err = errors.New("exited unexpectedly")
				}
				failure = fmt.Errorf("component %s died: %w", c.name, err)
				n.cfg.Logger.Error(err, "Component died; shutting the node down", "component", c.name)
				n.cancel()
			})
		}()
	}
	<-ctx.Done()
	// The Serve proxy drains before the replicas it routes to stop, so that
	// requests still arriving during the drain are served.
	if n.serve != nil {
		n.serve.Drain()
	}
	// Processes go next so their exits can still reach the head.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	procs.Shutdown(shutdownCtx, 2*time.Second)
	cancel()
	cancelComps()
	wg.Wait()
	_ = conn.Close()
	_ = os.RemoveAll(n.socketDir)
	n.err = failure
}

// serveHTTP serves h on l until ctx ends. protocols nil means the
// http.Server default (HTTP/1 here, as there is no TLS).
func serveHTTP(l net.Listener, h http.Handler, protocols *http.Protocols) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: protocols}
		errCh := make(chan error, 1)
		go func() { errCh <- srv.Serve(l) }()
		select {
		case err := <-errCh:
			return fmt.Errorf("serving HTTP on %s: %w", l.Addr(), err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				_ = srv.Close()
			}
			return nil
		}
	}
}

// h2cProtocols is HTTP/2 without TLS (h2c) next to HTTP/1.
func h2cProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

func dashboardBindHost(host string) string {
	switch host {
	case "", "localhost":
		return "127.0.0.1"
	case "0.0.0.0", "::":
		return ""
	}
	return host
}

// dashboardPublicHost is the host others reach the dashboard at.
func dashboardPublicHost(host, nodeIP string) string {
	switch host {
	case "0.0.0.0", "::":
		return nodeIP
	case "", "localhost":
		return "127.0.0.1"
	}
	return host
}

// makeSession creates <temp>/session_<...>/logs and points session_latest
// at it, like Ray.
func makeSession(tempDir, name string) (string, error) {
	if tempDir == "" {
		tempDir = filepath.Join(os.TempDir(), "ray")
	}
	dir := filepath.Join(tempDir, name)
	for _, d := range []string{filepath.Join(dir, "logs"), filepath.Join(dir, "runtime_resources")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("creating session directory: %w", err)
		}
	}
	latest := filepath.Join(tempDir, "session_latest")
	tmp := latest + ".tmp" + strconv.Itoa(os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(name, tmp); err == nil {
		_ = os.Rename(tmp, latest)
	}
	return dir, nil
}

func packageFetcher(conn grpc.ClientConnInterface) raylet.PackageFetcher {
	kv := gcsv1.NewKVServiceClient(conn)
	return func(ctx context.Context, uri string) ([]byte, error) {
		resp, err := kv.Get(ctx, &gcsv1.KVGetRequest{Namespace: jobs.PackagesKVNamespace, Key: uri}, grpc.MaxCallRecvMsgSize(jobs.MaxPackageBytes+1<<20))
		if err != nil {
			return nil, fmt.Errorf("fetching package %s: %w", uri, err)
		}
		if !resp.Found {
			return nil, fmt.Errorf("package %s does not exist", uri)
		}
		return resp.Value, nil
	}
}
