// Package node assembles a Ray node from the runtime's components: on the
// head the control service, the dashboard with the job manager, and on
// every node the agent, its HTTP port and the metrics exporter. `ray start`
// runs one; tests start them in-process.
package node

import (
	"context"
	"crypto/tls"
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

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/jobs"
	"github.com/rayk8s/rayk8s/internal/runtime/raylet"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
	serveagent "github.com/rayk8s/rayk8s/internal/serve/agent"
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
	// ObjectStoreMemory is how many bytes of objects the node keeps in memory
	// before spilling the least recently used to disk; zero means no limit.
	ObjectStoreMemory int64
	// ObjectSpillingDir is where spilled objects go, in a subdirectory per
	// node; empty means the session directory.
	ObjectSpillingDir string

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

	// GCSStorage is where the head keeps its tables (Redis for GCS fault
	// tolerance); the zero value keeps them in memory.
	GCSStorage gcs.StorageConfig
	// AuthToken turns on token authentication: the head requires it on the
	// dashboard and the GCS port, every node on its agent port (health checks
	// aside), and every node sends it to the head and to other nodes' agents.
	AuthToken string
	// TLS turns on mutual TLS (RAY_USE_TLS): the GCS port, every connection to the head and the
	// node-to-node traffic of Serve replicas and Ray core use the node's certificate and accept
	// only peers with a certificate of the same CA. Health endpoints on the agent port stay
	// plain HTTP for the kubelet's probes.
	TLS *raytls.Files

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
	n.drainForShutdown(conn)
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

// shutdownDrainMargin is how long past the longest shutdown (the Serve
// drain, then up to 10 s each for the proxy's and the processes' ends) a
// stopping node's drain lasts, should the node not end.
const shutdownDrainMargin = 30 * time.Second

// drainForShutdown tells the head that this worker node is stopping, so
// that no task, actor, replica or job is placed on it while its proxy
// drains and its processes stop; work placed there runs on until then.
// Without the head the node stops all the same.
func (n *Node) drainForShutdown(conn *grpc.ClientConn) {
	if n.cfg.Head || conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := gcsv1.NewAutoscalerStateServiceClient(conn).DrainNode(ctx, &gcsv1.DrainNodeRequest{
		NodeId:     n.cfg.NodeID,
		Kind:       gcsv1.DrainNodeReason_DRAIN_NODE_REASON_PREEMPTION,
		Reason:     "the node is shutting down",
		DeadlineMs: time.Now().Add(n.cfg.ServeDrainPeriod + shutdownDrainMargin).UnixMilli(),
	})
	if err != nil {
		n.cfg.Logger.Info("Could not tell the head that the node is stopping; new work may still be placed here until it ends", "reason", err.Error())
		return
	}
	if !resp.IsAccepted {
		n.cfg.Logger.Info("The head did not drain the stopping node", "reason", resp.RejectionReason)
	}
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

// serveHTTPS serves h with mutual TLS on l (connections Split classified as TLS) until ctx ends.
func serveHTTPS(l net.Listener, h http.Handler, cfg *tls.Config) func(ctx context.Context) error {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	return serveHTTP(tls.NewListener(l, cfg), h, &p)
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
