// Package controller is the Serve controller on the head (docs/serve.md;
// Ray's is described in https://docs.ray.io/en/latest/serve/architecture.html):
// it holds the declared applications, drives application → deployment →
// replica state machines on a control loop, places replica processes on
// nodes through the control service, health-checks and reconfigures them,
// streams routing tables to every node, and checkpoints its target state in
// the control service's KV so a restarted controller re-adopts its replicas.
package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/serve/config"
	"github.com/rayk8s/rayk8s/internal/serve/handle"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// Process kinds the controller owns.
const (
	ReplicaKind = "serve_replica"
	BuildKind   = "serve_build"
)

// Defaults of the control loop (RAY_SERVE_CONTROL_LOOP_INTERVAL_S) and of
// Ray's replica retry bounds.
const (
	DefaultLoopPeriod            = 100 * time.Millisecond
	DefaultReadyProbePeriod      = 100 * time.Millisecond
	maxPerReplicaRetries         = 3
	maxDeploymentConstructorFail = 20
	healthFailureThreshold       = 3
)

// Cluster is what the controller needs from the control service; *gcs.Server
// implements it.
type Cluster interface {
	PlaceProcess(gcs.Placement) (*gcsv1.Node, error)
	StopProcess(nodeID, processID string, grace time.Duration) error
	OnProcessEvent(kind string, fn gcs.ProcessEventFunc)
	OnNodeEvent(fn gcs.NodeEventFunc)
	Nodes() []*gcsv1.Node
	// Draining reports whether a node takes no new work because it is going
	// away (DrainNode).
	Draining(nodeID string) bool
}

// ReplicaClient makes control calls (health, reconfigure) on replicas.
// Control returns the multiplexed model IDs the replica reported holding
// (nil: it multiplexes none).
type ReplicaClient interface {
	Control(ctx context.Context, t handle.Target, kind string, body []byte) ([]string, error)
}

// Demand learns of replicas that found no node with room, so the cluster
// autoscaler adds nodes for them; *gcs.AutoscalingState implements it.
type Demand interface {
	SetPending(id, kind string, resources map[string]float64, infeasible bool)
	Withdraw(id string)
}

// Options configures a Controller.
type Options struct {
	Cluster Cluster
	// Demand, when set, is told of replicas waiting for room.
	Demand   Demand
	Store    gcs.Storage
	Replicas ReplicaClient
	// Python is the interpreter of Python replicas ("python3").
	Python string
	// GCSAddress is exported to replicas as RAY_ADDRESS.
	GCSAddress string
	LoopPeriod time.Duration
	// ReadyProbePeriod is how often a starting replica is asked whether it
	// is up.
	ReadyProbePeriod time.Duration
	// Async runs control calls; tests run them inline.
	Async  func(func())
	Clock  clock.WithTicker
	Logger logr.Logger
}

// Controller is the Serve controller.
type Controller struct {
	opts Options

	mu             sync.Mutex
	running        bool
	proxyLocation  string
	httpOptions    *dashboard.HTTPOptionsSchema
	grpcOptions    *dashboard.GRPCOptionsSchema
	http           config.HTTP
	targetCapacity *float64
	apps           map[string]*app
	events         []func()
	dirty          bool

	table    *servev1.RouteTable
	version  int64
	watchers map[chan *servev1.RouteTable]struct{}
	kick     chan struct{}
	// ready is closed once Run has restored the checkpoint and reconciled once, so that
	// no node is sent the empty table of a controller that has not recovered yet (a
	// restarted head would otherwise stop every worker's proxy for a moment).
	ready     chan struct{}
	readyOnce sync.Once
}

// New returns a Controller and subscribes it to process and node events.
func New(opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.LoopPeriod <= 0 {
		opts.LoopPeriod = DefaultLoopPeriod
	}
	if opts.ReadyProbePeriod <= 0 {
		opts.ReadyProbePeriod = DefaultReadyProbePeriod
	}
	if opts.Python == "" {
		opts.Python = "python3"
	}
	if opts.Async == nil {
		opts.Async = func(f func()) { go f() }
	}
	c := &Controller{
		opts:     opts,
		apps:     map[string]*app{},
		watchers: map[chan *servev1.RouteTable]struct{}{},
		kick:     make(chan struct{}, 1),
		table:    &servev1.RouteTable{},
		ready:    make(chan struct{}),
	}
	opts.Cluster.OnProcessEvent(ReplicaKind, c.onReplicaEvent)
	opts.Cluster.OnProcessEvent(BuildKind, c.onBuildEvent)
	opts.Cluster.OnNodeEvent(c.onNodeEvent)
	return c
}

// Run loads the checkpoint and runs the control loop until ctx is done.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.restore(ctx); err != nil {
		c.opts.Logger.Error(err, "Restoring the Serve checkpoint failed; starting empty")
	}
	t := c.opts.Clock.NewTicker(c.opts.LoopPeriod)
	defer t.Stop()
	for {
		c.Reconcile(ctx)
		c.readyOnce.Do(func() { close(c.ready) })
		select {
		case <-ctx.Done():
			c.closeWatchers()
			return nil
		case <-t.C():
		case <-c.kick:
		}
	}
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Deploy applies a validated config declaratively: applications left out
// are deleted, unchanged ones are left alone.
func (c *Controller) Deploy(ctx context.Context, p *config.Parsed) error {
	c.mu.Lock()
	now := c.opts.Clock.Now()
	s := p.Schema
	if !c.running {
		c.running = true
		c.proxyLocation = s.ProxyLocation
		if c.proxyLocation == "" {
			c.proxyLocation = dashboard.ProxyLocationEveryNode
		}
		c.httpOptions, c.grpcOptions = s.HTTPOptions, s.GRPCOptions
		c.http = config.ResolveHTTP(s.HTTPOptions)
	} else if !sameJSON(c.httpOptions, s.HTTPOptions) {
		// Ray applies http_options only when Serve starts.
		c.opts.Logger.Info("Ignoring changed http_options: they apply only when Serve starts")
	}
	capacityChanged := !sameJSON(c.targetCapacity, s.TargetCapacity)
	c.targetCapacity = s.TargetCapacity
	keep := map[string]bool{}
	for i := range s.Applications {
		spec := s.Applications[i]
		raw := p.RawApps[i]
		keep[spec.Name] = true
		a, ok := c.apps[spec.Name]
		if ok && !a.deleting && sameJSON(a.raw, raw) {
			if capacityChanged {
				a.resolve(c)
			}
			continue
		}
		if !ok {
			a = &app{name: spec.Name, deployments: map[string]*deployment{}}
			c.apps[spec.Name] = a
		}
		c.opts.Logger.Info("Deploying application", "app", spec.Name, "importPath", spec.ImportPath)
		a.update(c, spec, raw, now)
	}
	for name, a := range c.apps {
		if !keep[name] && !a.deleting {
			c.opts.Logger.Info("Deleting application", "app", name)
			a.startDelete()
		}
	}
	c.dirty = true
	c.mu.Unlock()
	c.poke()
	return c.checkpoint(ctx)
}

// Shutdown deletes every application and stops Serve (DELETE
// /api/serve/applications/). It returns once every replica is gone or ctx
// ends.
func (c *Controller) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	for _, a := range c.apps {
		a.startDelete()
	}
	c.dirty = true
	c.mu.Unlock()
	c.poke()
	t := c.opts.Clock.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		c.mu.Lock()
		empty := len(c.apps) == 0
		if empty {
			c.running = false
			c.httpOptions, c.grpcOptions, c.targetCapacity = nil, nil, nil
			c.dirty = true
		}
		c.mu.Unlock()
		if empty {
			c.poke()
			return c.checkpoint(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("shutting Serve down: %w", ctx.Err())
		case <-t.C():
		}
	}
}

// Reconcile runs one pass of the control loop; Run calls it every period
// and tests call it directly with a fake clock.
func (c *Controller) Reconcile(ctx context.Context) {
	c.mu.Lock()
	events := c.events
	c.events = nil
	for _, ev := range events {
		ev()
	}
	now := c.opts.Clock.Now()
	nodes := c.opts.Cluster.Nodes()
	names := make([]string, 0, len(c.apps))
	for n := range c.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := c.apps[n]
		a.reconcile(c, nodes, now)
		if a.deleting && a.empty() {
			c.opts.Logger.Info("Deleted application", "app", n)
			delete(c.apps, n)
			c.dirty = true
		}
	}
	table := c.buildTable()
	changed := !tablesEqual(table, c.table)
	if changed {
		c.version++
		table.Version = c.version
		c.table = table
		c.broadcastLocked(table)
	}
	dirty := c.dirty
	c.dirty = false
	c.mu.Unlock()
	if dirty {
		if err := c.checkpoint(ctx); err != nil {
			c.opts.Logger.Error(err, "Checkpointing Serve state failed")
		}
	}
}

// enqueue runs fn under the lock at the start of the next pass.
func (c *Controller) enqueue(fn func()) {
	c.mu.Lock()
	c.events = append(c.events, fn)
	c.mu.Unlock()
	c.poke()
}

func (c *Controller) onNodeEvent(n *gcsv1.Node) {
	if n.State != gcsv1.NodeState_NODE_STATE_DEAD {
		c.poke()
		return
	}
	id := n.NodeId
	c.enqueue(func() {
		for _, a := range c.apps {
			for _, d := range a.deployments {
				d.nodeDied(c, id)
			}
		}
	})
}

func sameJSON(a, b any) bool {
	ra, err1 := json.Marshal(a)
	rb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	var na, nb any
	if json.Unmarshal(ra, &na) != nil || json.Unmarshal(rb, &nb) != nil {
		return false
	}
	ca, _ := json.Marshal(na)
	cb, _ := json.Marshal(nb)
	return string(ca) == string(cb)
}
