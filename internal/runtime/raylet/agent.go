// Package raylet is the node agent that runs on every node, the head
// included: it registers the node with the control service, heartbeats,
// re-registers when the head comes back after a restart, runs the processes
// the head assigns (job entrypoints, Serve replicas and builds) through a
// ProcessManager, and serves the agent port's health and log endpoints.
package raylet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// DefaultReconnectTimeout matches Ray's gcs_rpc_server_reconnect_timeout_s
// default: an agent that cannot reach the head for this long gives up.
const DefaultReconnectTimeout = 60 * time.Second

// ErrNodeDead means the head declared this node dead; the agent must exit
// (Ray's raylet does the same, and Kubernetes restarts the pod).
var ErrNodeDead = errors.New("the head declared this node dead")

// NewNodeID returns a random node id in Ray's format (28 bytes, hex).
func NewNodeID() string {
	b := make([]byte, 28)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AgentOptions configures an Agent.
type AgentOptions struct {
	// Node describes this node; node_id must be set.
	Node *gcsv1.Node
	// Conn is the connection to the control service.
	Conn             grpc.ClientConnInterface
	Processes        *ProcessManager
	ReconnectTimeout time.Duration
	Clock            clock.WithTicker
	Logger           logr.Logger
}

// Agent keeps the node registered with the head and executes assignments.
type Agent struct {
	opts  AgentOptions
	nodes gcsv1.NodeServiceClient
	procs gcsv1.ProcessServiceClient

	registered atomic.Bool

	mu     sync.Mutex
	events []*gcsv1.ProcessStatus
	wake   chan struct{}
}

// NewAgent returns an Agent. Wire Agent.ReportProcessEvent into the
// ProcessManager's OnEvent so process events reach the head.
func NewAgent(opts AgentOptions) *Agent {
	if opts.ReconnectTimeout <= 0 {
		opts.ReconnectTimeout = DefaultReconnectTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Agent{
		opts:  opts,
		nodes: gcsv1.NewNodeServiceClient(opts.Conn),
		procs: gcsv1.NewProcessServiceClient(opts.Conn),
		wake:  make(chan struct{}, 1),
	}
}

// NodeID is this node's id.
func (a *Agent) NodeID() string { return a.opts.Node.NodeId }

// Registered reports whether the agent is currently registered.
func (a *Agent) Registered() bool { return a.registered.Load() }

// ReportProcessEvent queues a process event for delivery to the head.
// Delivery is retried until it succeeds, so exits are never lost while the
// head is briefly away.
func (a *Agent) ReportProcessEvent(st *gcsv1.ProcessStatus) {
	a.mu.Lock()
	a.events = append(a.events, st)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Run keeps the node registered until ctx is done (then it unregisters and
// returns nil), the head declares the node dead, or the head stays
// unreachable for longer than the reconnect timeout.
func (a *Agent) Run(ctx context.Context) error {
	log := a.opts.Logger.WithValues("nodeID", a.opts.Node.NodeId)
	go a.deliverEvents(ctx)
	lastContact := a.opts.Clock.Now()
	backoff := 100 * time.Millisecond
	// A restarted head gives the nodes it restores one heartbeat timeout to
	// register again, so retries never wait longer than the heartbeat
	// period the head last gave: with a short period (tests, fast failure
	// detection) a 2 s wait would outlast the timeout.
	maxBackoff := 2 * time.Second
	for {
		contacted, period, err := a.session(ctx)
		a.registered.Store(false)
		if ctx.Err() != nil {
			a.unregister()
			return nil
		}
		if errors.Is(err, ErrNodeDead) {
			return err
		}
		if contacted {
			lastContact = a.opts.Clock.Now()
			maxBackoff = min(2*time.Second, period)
			backoff = min(100*time.Millisecond, maxBackoff)
		}
		if a.opts.Clock.Since(lastContact) > a.opts.ReconnectTimeout {
			return fmt.Errorf("control service unreachable for more than %s: %w", a.opts.ReconnectTimeout, err)
		}
		log.V(1).Info("Reconnecting to the control service", "reason", err.Error(), "backoff", backoff)
		select {
		case <-ctx.Done():
			a.unregister()
			return nil
		case <-a.opts.Clock.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session registers once and then heartbeats and follows assignments until
// something fails. contacted reports whether registration succeeded, and
// period the heartbeat period the head asked for then.
func (a *Agent) session(ctx context.Context) (contacted bool, period time.Duration, err error) {
	regCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := a.nodes.RegisterNode(regCtx, &gcsv1.RegisterNodeRequest{Node: a.opts.Node, Processes: a.opts.Processes.Running()})
	cancel()
	if err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			return false, 0, fmt.Errorf("registering: %w", ErrNodeDead)
		}
		return false, 0, fmt.Errorf("registering: %w", err)
	}
	a.registered.Store(true)
	a.opts.Logger.Info("Registered with the control service", "nodeID", a.opts.Node.NodeId, "clusterID", resp.ClusterId)

	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go func() {
		stop(a.followAssignments(sctx))
	}()

	period = time.Duration(resp.HeartbeatPeriodMs) * time.Millisecond
	if period <= 0 {
		period = time.Second
	}
	t := a.opts.Clock.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-sctx.Done():
			if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return true, period, cause
			}
			return true, period, sctx.Err()
		case <-t.C():
		}
		hctx, cancel := context.WithTimeout(sctx, period)
		_, err := a.nodes.Heartbeat(hctx, &gcsv1.HeartbeatRequest{NodeId: a.opts.Node.NodeId})
		cancel()
		switch status.Code(err) {
		case codes.OK:
		case codes.FailedPrecondition:
			return true, period, fmt.Errorf("heartbeat: %w", ErrNodeDead)
		default:
			return true, period, fmt.Errorf("heartbeat: %w", err)
		}
	}
}

func (a *Agent) followAssignments(ctx context.Context) error {
	stream, err := a.procs.WatchAssignments(ctx, &gcsv1.WatchAssignmentsRequest{NodeId: a.opts.Node.NodeId})
	if err != nil {
		return fmt.Errorf("watching assignments: %w", err)
	}
	for {
		as, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.FailedPrecondition {
				return fmt.Errorf("watching assignments: %w", ErrNodeDead)
			}
			return fmt.Errorf("watching assignments: %w", err)
		}
		switch act := as.Action.(type) {
		case *gcsv1.Assignment_Start:
			// Processes outlive this stream: they are tied to the agent's
			// lifetime, not to one connection to the head.
			a.opts.Processes.Start(context.WithoutCancel(ctx), act.Start.Spec)
		case *gcsv1.Assignment_Stop:
			a.opts.Processes.Stop(act.Stop.ProcessId, time.Duration(act.Stop.GracePeriodMs)*time.Millisecond)
		}
	}
}

func (a *Agent) deliverEvents(ctx context.Context) {
	for {
		a.mu.Lock()
		pending := a.events
		a.events = nil
		a.mu.Unlock()
		for i, ev := range pending {
			if !a.send(ctx, ev) {
				a.mu.Lock()
				a.events = append(pending[i:], a.events...)
				a.mu.Unlock()
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		case <-a.opts.Clock.After(200 * time.Millisecond):
		}
	}
}

func (a *Agent) send(ctx context.Context, ev *gcsv1.ProcessStatus) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := a.procs.ReportProcessEvent(cctx, &gcsv1.ReportProcessEventRequest{NodeId: a.opts.Node.NodeId, Status: ev})
	return err == nil
}

func (a *Agent) unregister() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = a.nodes.UnregisterNode(ctx, &gcsv1.UnregisterNodeRequest{NodeId: a.opts.Node.NodeId, Reason: "node shut down"})
}
