package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/replica"
)

// Environment the controller gives replica processes (see
// internal/serve/controller/process.go; repeated here so this package does
// not depend on the controller).
const (
	envReplicaID  = "RAYK8S_SERVE_REPLICA_ID"
	envApp        = "RAYK8S_SERVE_APP"
	envDeployment = "RAYK8S_SERVE_DEPLOYMENT"
	envImportPath = "RAYK8S_SERVE_IMPORT_PATH"
	envAppArgs    = "RAYK8S_SERVE_APP_ARGS"
	envConfig     = "RAYK8S_SERVE_REPLICA_CONFIG"
)

type replicaConfig struct {
	UserConfig                json.RawMessage `json:"user_config"`
	MaxOngoingRequests        int             `json:"max_ongoing_requests"`
	GracefulShutdownWaitLoopS float64         `json:"graceful_shutdown_wait_loop_s"`
	Deployment                struct {
		RayActorOptions struct {
			NumCPUs *float64 `json:"num_cpus"`
		} `json:"ray_actor_options"`
	} `json:"deployment"`
}

// Run is a built-in replica process: construct, reconfigure with the
// initial user_config, serve on the replica's socket until ctx ends (the
// agent's SIGTERM), then drain. A constructor error is returned before the
// socket exists, so the controller sees a failed start.
func Run(ctx context.Context, getenv func(string) string, log logr.Logger) error {
	id := getenv(envReplicaID)
	dir := getenv(replica.SocketDirEnv)
	if id == "" || dir == "" {
		return fmt.Errorf("%s and %s must be set; serve-replica is started by the node agent", envReplicaID, replica.SocketDirEnv)
	}
	name, ok := strings.CutPrefix(getenv(envImportPath), ImportPrefix)
	if !ok {
		return fmt.Errorf("%s=%q is not a built-in import path", envImportPath, getenv(envImportPath))
	}
	var cfg replicaConfig
	if raw := getenv(envConfig); raw != "" {
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			return fmt.Errorf("decoding %s: %w", envConfig, err)
		}
	}
	// A replica's Go code runs on as many threads as it reserved CPUs: with
	// more, every hand-off between goroutines wakes a second thread, and
	// they spin for work the reservation did not pay for.
	threads, set := threadBudget(cfg.Deployment.RayActorOptions.NumCPUs, runtime.GOMAXPROCS(0), getenv)
	if set {
		runtime.GOMAXPROCS(threads)
	}
	log.Info("Replica threads", "replicaID", id, "gomaxprocs", threads, "fromNumCPUs", set)
	dep, err := New(name, Context{ReplicaID: id, App: getenv(envApp), Deployment: getenv(envDeployment), Args: json.RawMessage(getenv(envAppArgs))})
	if err != nil {
		return fmt.Errorf("the replica's constructor failed: %w", err)
	}
	if err := dep.Reconfigure(cfg.UserConfig); err != nil {
		return fmt.Errorf("the replica's reconfigure failed: %w", err)
	}
	path := replica.SocketPath(dir, id)
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening on the replica socket: %w", err)
	}
	defer os.Remove(path)
	srv := replica.NewServer(dep, replica.Options{
		ReplicaID:          id,
		MaxOngoingRequests: cfg.MaxOngoingRequests,
		WaitLoop:           time.Duration(cfg.GracefulShutdownWaitLoopS * float64(time.Second)),
		Logger:             log,
	})
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	errCh := make(chan error, 1)
	go func() { errCh <- srv.Serve(serveCtx, l) }()
	log.Info("Replica is serving", "replicaID", id, "socket", path)
	select {
	case err := <-errCh:
		return err
	case <-ctx.Done():
	case <-orphaned():
		log.Info("The node agent is gone; exiting", "replicaID", id)
		return nil
	}
	// Calls keep being answered (rejected) while the replica drains; the
	// agent kills it after graceful_shutdown_timeout_s anyway.
	srv.Drain(context.Background())
	stopServing()
	if err := <-errCh; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// orphaned is closed when the process that started this one exits: a
// replica never outlives its node agent.
func orphaned() <-chan struct{} {
	ch := make(chan struct{})
	parent := os.Getppid()
	go func() {
		for os.Getppid() == parent {
			time.Sleep(time.Second)
		}
		close(ch)
	}()
	return ch
}
