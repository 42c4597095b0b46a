package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/serve/config"
	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// deployment is one deployment's state.
type deployment struct {
	app, name   string
	cfg         config.Deployment
	appSpec     dashboard.ServeApplicationSchema
	codeVersion string
	cfgVersion  string
	deleting    bool

	status  dashboard.DeploymentStatus
	trigger dashboard.DeploymentStatusTrigger
	message string
	// converging is true from a config change until the target is met.
	converging bool
	// failures counts constructor failures of the current code version
	// while none of its replicas has run.
	failures    int
	lastFailure string
	everRunning bool

	replicas []*replica
	// auto is set while the deployment autoscales.
	auto *autoscaler
}

// replica is one replica's state.
type replica struct {
	id          string
	codeVersion string
	// cfgVersion is the replica config the replica runs with.
	cfgVersion string
	state      dashboard.ReplicaState
	nodeID     string
	nodeIP     string
	agentAddr  string
	logFile    string
	pid        int
	startTime  time.Time
	// placed: the process is assigned to a node; up: its process runs.
	placed bool
	up     bool
	// pending: the replica is reported as demand for room (Options.Demand).
	pending bool

	probing        bool
	lastProbe      time.Time
	probeFailures  int
	lastHealth     time.Time
	healthFailures int
	reconfiguring  bool
	stopRequested  bool
	// models are the multiplexed model IDs the replica reported at its
	// last health check; the routing table carries them to every router.
	models []string
}

// setModels records a replica's reported models, republishing the table
// when they changed.
func (r *replica) setModels(c *Controller, models []string) {
	if slices.Equal(r.models, models) {
		return
	}
	r.models = slices.Clone(models)
	c.dirty = true
}

func (r *replica) target() handle.Target {
	return handle.Target{ReplicaID: r.id, NodeID: r.nodeID, AgentAddress: r.agentAddr}
}

func (r *replica) serving() bool {
	return r.state == dashboard.ReplicaStateRunning || r.state == dashboard.ReplicaStateUpdating
}

// setTarget installs a resolved config and starts converging when it
// differs from the current one.
func (d *deployment) setTarget(cfg config.Deployment, codeVersion, cfgVersion string, appSpec dashboard.ServeApplicationSchema, targetCapacity *float64) {
	// A first target is a code change too: code versions are never empty.
	codeChanged := codeVersion != d.codeVersion
	cfgChanged := cfgVersion != d.cfgVersion
	d.applyAutoscalingTarget(&cfg, targetCapacity)
	d.setAutoscaler(&cfg)
	scaled := cfg.NumReplicas != d.cfg.NumReplicas
	settingsChanged := !sameJSON(cfg.Schema, d.cfg.Schema)
	d.deleting = false
	d.cfg, d.appSpec = cfg, appSpec
	d.codeVersion, d.cfgVersion = codeVersion, cfgVersion
	if codeChanged {
		d.failures, d.lastFailure, d.everRunning = 0, "", false
	}
	switch {
	case codeChanged || cfgChanged:
		d.setStatus(dashboard.DeploymentStatusUpdating, dashboard.TriggerConfigUpdateStarted, "")
		d.converging = true
	case scaled:
		if cfg.NumReplicas > servingCount(d.replicas) {
			d.setStatus(dashboard.DeploymentStatusUpscaling, dashboard.TriggerConfigUpdateStarted, "")
		} else {
			d.setStatus(dashboard.DeploymentStatusDownscaling, dashboard.TriggerConfigUpdateStarted, "")
		}
		d.converging = true
	case settingsChanged && d.status == dashboard.DeploymentStatusDeployFailed:
		d.setStatus(dashboard.DeploymentStatusUpdating, dashboard.TriggerConfigUpdateStarted, "")
		d.failures = 0
		d.converging = true
	}
}

func (d *deployment) setStatus(s dashboard.DeploymentStatus, t dashboard.DeploymentStatusTrigger, msg string) {
	d.status, d.trigger, d.message = s, t, msg
}

func (d *deployment) startDelete() {
	d.deleting = true
	d.setStatus(dashboard.DeploymentStatusUpdating, dashboard.TriggerDeleting, "")
}

// retryLimit is Ray's bound on constructor failures before DEPLOY_FAILED.
func (d *deployment) retryLimit() int {
	return max(1, min(maxPerReplicaRetries*d.cfg.NumReplicas, maxDeploymentConstructorFail))
}

func (d *deployment) reconcile(c *Controller, nodes []*gcsv1.Node, now time.Time) {
	if d.auto != nil && !d.deleting && d.status != dashboard.DeploymentStatusDeployFailed {
		d.autoscale(c, now)
	}
	target := d.cfg.NumReplicas
	if d.deleting {
		target = 0
	}
	for _, r := range d.replicas {
		switch {
		case r.state == dashboard.ReplicaStateStopping:
			d.stop(c, r)
		case !r.placed:
			d.place(c, r, nodes)
		case r.state == dashboard.ReplicaStateStarting || r.state == dashboard.ReplicaStateRecovering:
			d.probe(c, r, now)
		case r.serving():
			d.healthCheck(c, r, now)
			if r.codeVersion == d.codeVersion && r.cfgVersion != d.cfgVersion && !r.reconfiguring {
				d.reconfigure(c, r)
			}
		}
	}

	// Replicas of the current code version count toward the target; older
	// ones keep serving until enough new ones run (rolling update). So do
	// replicas on a node that is going away (draining): their replacements
	// start elsewhere while they serve, as Ray migrates replicas off
	// draining nodes, and they stop once the replacements run.
	var current, old, leaving []*replica
	draining := map[string]bool{}
	for _, r := range d.replicas {
		if r.state == dashboard.ReplicaStateStopping {
			continue
		}
		if r.placed {
			gone, seen := draining[r.nodeID]
			if !seen {
				gone = c.opts.Cluster.Draining(r.nodeID)
				draining[r.nodeID] = gone
			}
			if gone {
				leaving = append(leaving, r)
				continue
			}
		}
		if r.codeVersion == d.codeVersion {
			current = append(current, r)
		} else {
			old = append(old, r)
		}
	}
	failed := d.status == dashboard.DeploymentStatusDeployFailed
	if need := target - len(current); need > 0 && !failed {
		for range need {
			r := d.newReplica(now)
			d.replicas = append(d.replicas, r)
			d.place(c, r, c.opts.Cluster.Nodes())
		}
		c.dirty = true
	} else if need < 0 {
		d.stopSome(c, current, -need)
	}
	currentRunning := servingCount(current)
	// Keep capacity: an old or leaving replica stops only once a new one
	// took its place. Old ones are kept before leaving ones, whose node is
	// going away.
	gap := max(0, target-currentRunning)
	if excess := len(leaving) - max(0, gap-len(old)); excess > 0 {
		d.stopSome(c, leaving, excess)
	}
	if excess := len(old) - gap; excess > 0 {
		d.stopSome(c, old, excess)
	} else if d.unplaced() > 0 && len(old) > 0 && d.stoppingOld() == 0 {
		// New replicas do not fit next to the old ones: free room in batches
		// of a fifth of the target, as Ray's rolling update does. While a new
		// replica is on its way, keep one replica serving until it runs, so
		// that calls always have a replica to go to.
		n := max(1, target/5)
		if d.startingCurrent() > 0 {
			n = min(n, currentRunning+servingCount(old)-1)
		}
		if n > 0 {
			d.stopSome(c, old, n)
		}
	}
	d.updateStatus(target, currentRunning)
}

func (d *deployment) unplaced() int {
	n := 0
	for _, r := range d.replicas {
		if !r.placed && r.state != dashboard.ReplicaStateStopping {
			n++
		}
	}
	return n
}

// startingCurrent counts the replicas of the current code version that are
// placed but not serving yet.
func (d *deployment) startingCurrent() int {
	n := 0
	for _, r := range d.replicas {
		if r.codeVersion == d.codeVersion && r.placed && !r.serving() && r.state != dashboard.ReplicaStateStopping {
			n++
		}
	}
	return n
}

func servingCount(rs []*replica) int {
	n := 0
	for _, r := range rs {
		if r.serving() {
			n++
		}
	}
	return n
}

func (d *deployment) stoppingOld() int {
	n := 0
	for _, r := range d.replicas {
		if r.state == dashboard.ReplicaStateStopping && r.codeVersion != d.codeVersion {
			n++
		}
	}
	return n
}

// stopSome stops n of rs, those that serve least first: unplaced, then
// starting, then the newest running.
func (d *deployment) stopSome(c *Controller, rs []*replica, n int) {
	cands := append([]*replica(nil), rs...)
	rank := func(r *replica) int {
		switch {
		case !r.placed:
			return 0
		case !r.serving():
			return 1
		}
		return 2
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if rank(cands[i]) != rank(cands[j]) {
			return rank(cands[i]) < rank(cands[j])
		}
		return cands[i].startTime.After(cands[j].startTime)
	})
	for _, r := range cands[:min(n, len(cands))] {
		r.state = dashboard.ReplicaStateStopping
		d.stop(c, r)
	}
}

func (d *deployment) updateStatus(target, currentRunning int) {
	if d.deleting {
		return
	}
	if d.status == dashboard.DeploymentStatusDeployFailed {
		if currentRunning >= target && target > 0 {
			d.setStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerUnspecified, "")
		}
		return
	}
	settled := currentRunning == target
	for _, r := range d.replicas {
		if r.codeVersion != d.codeVersion || r.cfgVersion != d.cfgVersion || r.state == dashboard.ReplicaStateStopping {
			settled = false
		}
	}
	if !settled {
		return
	}
	switch {
	case d.converging && d.status == dashboard.DeploymentStatusUpscaling:
		d.setStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerUpscaleCompleted, "")
	case d.converging && d.status == dashboard.DeploymentStatusDownscaling:
		d.setStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerDownscaleCompleted, "")
	case d.converging:
		d.setStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerConfigUpdateCompleted, "")
	case d.status != dashboard.DeploymentStatusHealthy:
		d.setStatus(dashboard.DeploymentStatusHealthy, dashboard.TriggerUnspecified, "")
	}
	d.converging = false
}

func (d *deployment) newReplica(now time.Time) *replica {
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	return &replica{
		id:          d.app + "#" + d.name + "#" + suffix,
		codeVersion: d.codeVersion,
		cfgVersion:  d.cfgVersion,
		state:       dashboard.ReplicaStateStarting,
		startTime:   now,
		logFile:     "serve_replica_" + safeName(d.app) + "_" + safeName(d.name) + "_" + suffix + ".log",
	}
}

func safeName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-', ch == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// place puts a replica's process on a node: the node where this deployment
// has the fewest replicas (spread), among those with room.
func (d *deployment) place(c *Controller, r *replica, nodes []*gcsv1.Node) {
	spec, err := c.replicaSpec(d, r)
	if err != nil {
		d.constructorFailed(c, r, err.Error())
		return
	}
	perNode := map[string]int{}
	for _, o := range d.replicas {
		if o.placed && o.state != dashboard.ReplicaStateStopping {
			perNode[o.nodeID]++
		}
	}
	total := c.replicasPerNode()
	cands := make([]*gcsv1.Node, 0, len(nodes))
	for _, n := range nodes {
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE || !gcs.Fits(n.ResourcesAvailable, spec.Resources) || c.opts.Cluster.Draining(n.NodeId) {
			continue
		}
		if d.cfg.MaxReplicasPerNode > 0 && perNode[n.NodeId] >= d.cfg.MaxReplicasPerNode {
			continue
		}
		cands = append(cands, n)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if perNode[a.NodeId] != perNode[b.NodeId] {
			return perNode[a.NodeId] < perNode[b.NodeId]
		}
		if total[a.NodeId] != total[b.NodeId] {
			return total[a.NodeId] < total[b.NodeId]
		}
		return a.NodeId < b.NodeId
	})
	for _, n := range cands {
		node, err := c.opts.Cluster.PlaceProcess(gcs.Placement{Spec: spec, NodeID: n.NodeId})
		if err != nil {
			continue
		}
		r.placed = true
		if r.pending {
			r.pending = false
			c.opts.Demand.Withdraw(r.id)
		}
		r.nodeID, r.nodeIP = node.NodeId, node.NodeIpAddress
		r.agentAddr = node.NodeIpAddress + ":" + strconv.Itoa(int(node.AgentPort))
		c.opts.Logger.Info("Placed replica", "replicaID", r.id, "nodeID", node.NodeId, "ip", node.NodeIpAddress)
		c.dirty = true
		return
	}
	// No node has room: the replica stays STARTING, and is pending demand
	// for the cluster autoscaler until a node with room joins.
	if c.opts.Demand != nil && !r.pending {
		r.pending = true
		c.opts.Demand.SetPending(r.id, ReplicaKind, spec.Resources, false)
	}
}

// unplacedMessage names what replicas that found no node wait for ("" when
// every replica is placed).
func (d *deployment) unplacedMessage() string {
	n := d.unplaced()
	if n == 0 || d.deleting {
		return ""
	}
	return fmt.Sprintf("%d replica(s) wait for a node with room: each needs %s; no alive node has that available now (the cluster autoscaler, when enabled, adds one).",
		n, formatResources(d.cfg.Resources, d.cfg.MaxReplicasPerNode))
}

func formatResources(res map[string]float64, perNode int) string {
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %s", k, strconv.FormatFloat(res[k], 'f', -1, 64)))
	}
	out := "{" + strings.Join(parts, ", ") + "}"
	if perNode > 0 {
		out += fmt.Sprintf(" and at most %d replica(s) per node (max_replicas_per_node)", perNode)
	}
	return out
}

// probe asks a starting (or recovering) replica whether it is up; the
// first answer makes it RUNNING.
func (d *deployment) probe(c *Controller, r *replica, now time.Time) {
	if r.probing || (!r.up && r.state == dashboard.ReplicaStateStarting) || now.Sub(r.lastProbe) < c.opts.ReadyProbePeriod {
		return
	}
	r.probing, r.lastProbe = true, now
	t, timeout := r.target(), d.cfg.HealthCheckTimeout
	c.opts.Async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		models, err := c.opts.Replicas.Control(ctx, t, wire.KindHealth, nil)
		cancel()
		c.enqueue(func() {
			r.probing = false
			if err == nil {
				r.setModels(c, models)
			}
			if r.state != dashboard.ReplicaStateStarting && r.state != dashboard.ReplicaStateRecovering {
				return
			}
			var we *wire.Error
			if err != nil && !errors.As(err, &we) {
				r.probeFailures++
				// A recovered replica that never answers is gone.
				if r.state == dashboard.ReplicaStateRecovering && r.probeFailures > 50 {
					d.remove(r)
				}
				return
			}
			c.opts.Logger.Info("Replica is running", "replicaID", r.id, "nodeID", r.nodeID)
			r.state = dashboard.ReplicaStateRunning
			r.lastHealth = c.opts.Clock.Now()
			d.everRunning = true
			d.failures = 0
			c.dirty = true
		})
	})
}

// healthCheck runs check_health every health_check_period_s; three
// failures in a row replace the replica.
func (d *deployment) healthCheck(c *Controller, r *replica, now time.Time) {
	if r.probing || now.Sub(r.lastHealth) < d.cfg.HealthCheckPeriod {
		return
	}
	r.probing, r.lastHealth = true, now
	t, timeout := r.target(), d.cfg.HealthCheckTimeout
	c.opts.Async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		models, err := c.opts.Replicas.Control(ctx, t, wire.KindHealth, nil)
		cancel()
		c.enqueue(func() {
			r.probing = false
			if !r.serving() {
				return
			}
			if err == nil {
				r.healthFailures = 0
				r.setModels(c, models)
				return
			}
			r.healthFailures++
			c.opts.Logger.Info("Replica health check failed", "replicaID", r.id, "failures", r.healthFailures, "reason", err.Error())
			if r.healthFailures < healthFailureThreshold {
				return
			}
			msg := fmt.Sprintf("Replica %s failed health checks %d times in a row: %v", r.id, r.healthFailures, err)
			if d.converging && d.trigger != dashboard.TriggerAutoscaling {
				d.setStatus(dashboard.DeploymentStatusDeployFailed, dashboard.TriggerHealthCheckFailed, msg)
			} else {
				d.setStatus(dashboard.DeploymentStatusUnhealthy, dashboard.TriggerHealthCheckFailed, msg)
			}
			r.state = dashboard.ReplicaStateStopping
			d.stop(c, r)
			c.dirty = true
		})
	})
}

// reconfigure applies user_config and max_ongoing_requests in place.
func (d *deployment) reconfigure(c *Controller, r *replica) {
	r.reconfiguring = true
	r.state = dashboard.ReplicaStateUpdating
	version := d.cfgVersion
	body := wire.JSON(wire.Reconfigure{
		UserConfig:                d.cfg.UserConfig,
		MaxOngoingRequests:        d.cfg.MaxOngoingRequests,
		GracefulShutdownWaitLoopS: d.cfg.GracefulShutdownWaitLoop.Seconds(),
	})
	t, timeout := r.target(), d.cfg.HealthCheckTimeout
	c.opts.Async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := c.opts.Replicas.Control(ctx, t, wire.KindReconfigure, body)
		cancel()
		c.enqueue(func() {
			r.reconfiguring = false
			if r.state != dashboard.ReplicaStateUpdating {
				return
			}
			if err != nil {
				c.opts.Logger.Info("Reconfiguring replica failed; replacing it", "replicaID", r.id, "reason", err.Error())
				d.lastFailure = err.Error()
				r.state = dashboard.ReplicaStateStopping
				d.stop(c, r)
				return
			}
			r.cfgVersion = version
			r.state = dashboard.ReplicaStateRunning
			c.dirty = true
		})
	})
}

// stop asks the node to stop the replica's process: SIGTERM, the replica
// drains, SIGKILL after graceful_shutdown_timeout_s. Routing tables no
// longer list it from this pass on.
func (d *deployment) stop(c *Controller, r *replica) {
	if r.stopRequested {
		return
	}
	if !r.placed {
		if r.pending {
			r.pending = false
			c.opts.Demand.Withdraw(r.id)
		}
		d.remove(r)
		return
	}
	r.stopRequested = true
	c.dirty = true
	c.opts.Logger.Info("Stopping replica", "replicaID", r.id, "nodeID", r.nodeID)
	grace := d.cfg.GracefulShutdownTimeout + d.cfg.GracefulShutdownWaitLoop
	if err := c.opts.Cluster.StopProcess(r.nodeID, r.id, grace); err != nil {
		// The node is gone and its processes with it.
		d.remove(r)
	}
}

func (d *deployment) remove(r *replica) {
	for i, o := range d.replicas {
		if o == r {
			d.replicas = append(d.replicas[:i], d.replicas[i+1:]...)
			return
		}
	}
}

func (d *deployment) find(id string) *replica {
	for _, r := range d.replicas {
		if r.id == id {
			return r
		}
	}
	return nil
}

// constructorFailed records a replica that failed to start; past the
// retry limit the deployment is DEPLOY_FAILED and stops retrying.
func (d *deployment) constructorFailed(c *Controller, r *replica, msg string) {
	d.remove(r)
	if r.state == dashboard.ReplicaStateStopping {
		return
	}
	d.failures++
	d.lastFailure = msg
	c.dirty = true
	c.opts.Logger.Info("Replica failed to start", "replicaID", r.id, "failures", d.failures, "limit", d.retryLimit())
	full := fmt.Sprintf("A replica failed to start with the following error %d time(s):\n%s", d.failures, msg)
	if d.failures >= d.retryLimit() && !d.hasRunningCurrent() {
		d.setStatus(dashboard.DeploymentStatusDeployFailed, dashboard.TriggerReplicaStartupFailed,
			fmt.Sprintf("The deployment failed to start %d times in a row. This may be due to a problem with its constructor or initial health check failing. See controller logs for details. Error:\n%s", d.failures, msg))
		for _, o := range d.replicas {
			if o.codeVersion == d.codeVersion && !o.serving() && o.state != dashboard.ReplicaStateStopping {
				o.state = dashboard.ReplicaStateStopping
				d.stop(c, o)
			}
		}
		return
	}
	if !d.converging && d.status == dashboard.DeploymentStatusHealthy {
		d.setStatus(dashboard.DeploymentStatusUnhealthy, dashboard.TriggerReplicaStartupFailed, full)
	} else if d.status != dashboard.DeploymentStatusUnhealthy {
		d.message = full
	}
}

func (d *deployment) hasRunningCurrent() bool {
	for _, r := range d.replicas {
		if r.codeVersion == d.codeVersion && r.serving() {
			return true
		}
	}
	return false
}

// processEvent handles a replica process event from its node.
func (d *deployment) processEvent(c *Controller, r *replica, st *gcsv1.ProcessStatus) {
	switch st.State {
	case gcsv1.ProcessState_PROCESS_STATE_RUNNING:
		r.up = true
		r.pid = int(st.Pid)
		if !r.placed {
			r.placed = true
		}
		return
	case gcsv1.ProcessState_PROCESS_STATE_EXITED, gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START:
	default:
		return
	}
	c.dirty = true
	switch {
	case r.state == dashboard.ReplicaStateStopping || r.stopRequested:
		d.remove(r)
	case r.state == dashboard.ReplicaStateStarting:
		d.constructorFailed(c, r, failureMessage(st))
	default:
		c.opts.Logger.Info("Replica died; replacing it", "replicaID", r.id, "exitCode", st.ExitCode)
		d.remove(r)
	}
}

func (d *deployment) nodeDied(c *Controller, nodeID string) {
	d.forgetNodeMetrics(nodeID)
	for _, r := range append([]*replica(nil), d.replicas...) {
		if r.placed && r.nodeID == nodeID {
			c.opts.Logger.Info("Replica lost with its node", "replicaID", r.id, "nodeID", nodeID)
			d.remove(r)
			c.dirty = true
		}
	}
}
