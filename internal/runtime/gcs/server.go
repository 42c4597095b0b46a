// Package gcs is the head's control service: the node table with heartbeats
// and node death, the namespaced internal KV, and placement of processes
// (job entrypoints, Serve replicas and builds) onto node agents. It speaks the
// gRPC protocol in proto/gcs/v1 on the GCS port.
package gcs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

const (
	// DefaultHeartbeatPeriod matches Ray's health_check_period_ms.
	DefaultHeartbeatPeriod = 3 * time.Second
	// DefaultFailureThreshold matches Ray's health_check_failure_threshold.
	DefaultFailureThreshold = 5

	nodesNamespace = "@rayk8s_nodes"
)

// ErrNoCapacity means no alive node can take the process right now; the
// caller keeps it pending and retries when nodes or processes change.
var ErrNoCapacity = errors.New("no alive node has the requested resources available")

// ErrUnknownNode is returned for a node id the table does not hold.
var ErrUnknownNode = errors.New("unknown node")

// ErrNodeDead is returned when a node the head declared dead talks to it.
var ErrNodeDead = errors.New("node is dead")

// Options configures a Server.
type Options struct {
	// HeartbeatPeriod is how often agents heartbeat.
	HeartbeatPeriod time.Duration
	// FailureThreshold is how many heartbeat periods may pass without a
	// heartbeat before the node is declared dead.
	FailureThreshold int
	Clock            clock.WithTicker
	Logger           logr.Logger
	// Storage, when set, is used as is. Otherwise NewServer opens the one
	// StorageConfig selects (memory, or Redis for fault tolerance), and Serve
	// closes it when it returns.
	Storage       Storage
	StorageConfig StorageConfig
	// AuthToken, when set, must come with every RPC except the CheckAlive
	// health check (Ray's token authentication, RAY_AUTH_MODE=token).
	AuthToken string
	// TLS, when set, serves mutual TLS only (raytls.Files.Server): plain-text peers and
	// peers without a certificate of the cluster's CA are refused.
	TLS         *tls.Config
	ClusterID   string
	SessionName string
}

// ProcessEventFunc receives the process events agents report.
type ProcessEventFunc func(nodeID string, status *gcsv1.ProcessStatus)

// NodeEventFunc receives every change of a node in the table.
type NodeEventFunc func(node *gcsv1.Node)

type nodeEntry struct {
	node      *gcsv1.Node
	lastSeen  time.Time
	processes map[string]*gcsv1.ProcessSpec
	queue     []*gcsv1.Assignment
	// wake is closed and replaced whenever queue grows.
	wake chan struct{}
	// previousHead marks the head node of an earlier control service
	// process, restored from storage: the head node lives in the control
	// service's process, so it died with it. It takes no placements and is
	// declared dead at the first heartbeat check.
	previousHead bool
	// drainUntil, while in the future, keeps new work off the node: the
	// autoscaler is removing it, or it is shutting down (DrainNode);
	// shuttingDown says the latter.
	drainUntil   time.Time
	shuttingDown bool
}

// Server holds the control service state. The gRPC services in grpc.go are
// thin adapters over its methods, which in-process users (the job manager,
// the dashboard) call directly.
type Server struct {
	opts Options

	mu           sync.Mutex
	nodes        map[string]*nodeEntry
	watchers     map[chan *gcsv1.Node]struct{}
	procHandlers map[string][]ProcessEventFunc
	nodeHandlers []NodeEventFunc
	services     []func(grpc.ServiceRegistrar)
	// unpersisted holds the ids of nodes whose latest record the storage
	// did not take; they are written again, and the head reports itself
	// unhealthy until they are.
	unpersisted map[string]struct{}
	// closeStorage closes storage NewServer opened itself.
	closeStorage func() error
}

// RegisterService adds a gRPC service of another head component (the Serve
// controller) to the control service port. Call it before Serve.
func (s *Server) RegisterService(register func(grpc.ServiceRegistrar)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services = append(s.services, register)
}

// NewServer returns a Server with defaults filled in and the persisted node
// table loaded from storage.
func NewServer(ctx context.Context, opts Options) (*Server, error) {
	if opts.HeartbeatPeriod <= 0 {
		opts.HeartbeatPeriod = DefaultHeartbeatPeriod
	}
	if opts.FailureThreshold <= 0 {
		opts.FailureThreshold = DefaultFailureThreshold
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	s := &Server{
		nodes:        map[string]*nodeEntry{},
		watchers:     map[chan *gcsv1.Node]struct{}{},
		procHandlers: map[string][]ProcessEventFunc{},
		unpersisted:  map[string]struct{}{},
		closeStorage: func() error { return nil },
	}
	if opts.Storage == nil {
		st, err := NewStorageFromConfig(ctx, opts.StorageConfig, opts.Logger)
		if err != nil {
			return nil, err
		}
		opts.Storage = st
		if c, ok := st.(io.Closer); ok {
			s.closeStorage = c.Close
		}
	}
	s.opts = opts
	if err := s.load(ctx); err != nil {
		_ = s.closeStorage()
		return nil, err
	}
	return s, nil
}

// load restores nodes from storage. Alive nodes get a fresh deadline: they
// either heartbeat again or are declared dead as usual.
func (s *Server) load(ctx context.Context) error {
	keys, err := s.opts.Storage.Keys(ctx, nodesNamespace, "")
	if err != nil {
		return fmt.Errorf("listing stored nodes: %w", err)
	}
	now := s.opts.Clock.Now()
	for _, k := range keys {
		raw, ok, err := s.opts.Storage.Get(ctx, nodesNamespace, k)
		if err != nil {
			return fmt.Errorf("loading node %s: %w", k, err)
		}
		if !ok {
			continue
		}
		n := &gcsv1.Node{}
		if err := proto.Unmarshal(raw, n); err != nil {
			return fmt.Errorf("decoding node %s: %w", k, err)
		}
		s.nodes[n.NodeId] = &nodeEntry{node: n, lastSeen: now, processes: map[string]*gcsv1.ProcessSpec{}, wake: make(chan struct{}),
			previousHead: n.IsHead && n.State == gcsv1.NodeState_NODE_STATE_ALIVE}
	}
	return nil
}

// HeartbeatPeriod is the period agents are told to heartbeat at.
func (s *Server) HeartbeatPeriod() time.Duration { return s.opts.HeartbeatPeriod }

// ClusterID identifies this cluster (one per head process lifetime).
func (s *Server) ClusterID() string { return s.opts.ClusterID }

// SessionName is the head's Ray session name.
func (s *Server) SessionName() string { return s.opts.SessionName }

// Storage is the store behind the KV and the tables.
func (s *Server) Storage() Storage { return s.opts.Storage }

// OnProcessEvent registers fn for events of processes whose spec kind is kind.
func (s *Server) OnProcessEvent(kind string, fn ProcessEventFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procHandlers[kind] = append(s.procHandlers[kind], fn)
}

// OnNodeEvent registers fn for node changes.
func (s *Server) OnNodeEvent(fn NodeEventFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodeHandlers = append(s.nodeHandlers, fn)
}

// RegisterNode adds or refreshes a node. Processes the agent still runs are
// accounted against its resources.
func (s *Server) RegisterNode(ctx context.Context, n *gcsv1.Node, running []*gcsv1.ProcessStatus) error {
	if n.GetNodeId() == "" {
		return errors.New("node_id is required")
	}
	s.mu.Lock()
	e, ok := s.nodes[n.NodeId]
	if ok && e.node.State == gcsv1.NodeState_NODE_STATE_DEAD {
		s.mu.Unlock()
		return fmt.Errorf("registering node %s: %w", n.NodeId, ErrNodeDead)
	}
	node := proto.Clone(n).(*gcsv1.Node)
	node.State = gcsv1.NodeState_NODE_STATE_ALIVE
	if node.StartTimeMs == 0 {
		node.StartTimeMs = s.opts.Clock.Now().UnixMilli()
	}
	if !ok {
		e = &nodeEntry{processes: map[string]*gcsv1.ProcessSpec{}, wake: make(chan struct{})}
		s.nodes[n.NodeId] = e
	}
	e.node = node
	e.lastSeen = s.opts.Clock.Now()
	e.previousHead = false
	for _, p := range running {
		if p.GetSpec() != nil && p.State == gcsv1.ProcessState_PROCESS_STATE_RUNNING {
			e.processes[p.Spec.ProcessId] = p.Spec
		}
	}
	snapshot := s.snapshotLocked(e)
	s.mu.Unlock()

	s.opts.Logger.Info("Registered node", "nodeID", n.NodeId, "ip", n.NodeIpAddress, "head", n.IsHead, "known", ok)
	err := s.persist(ctx, snapshot)
	s.publish(snapshot)
	if err != nil {
		// The agent registers again; meanwhile the record is retried.
		return fmt.Errorf("registering node %s: %w", n.NodeId, err)
	}
	return nil
}

// Heartbeat records that the node is alive.
func (s *Server) Heartbeat(nodeID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.nodes[nodeID]
	if !ok {
		return fmt.Errorf("heartbeat from %s: %w", nodeID, ErrUnknownNode)
	}
	if e.node.State == gcsv1.NodeState_NODE_STATE_DEAD {
		return fmt.Errorf("heartbeat from %s: %w", nodeID, ErrNodeDead)
	}
	e.lastSeen = s.opts.Clock.Now()
	return nil
}

// UnregisterNode marks a node dead on its own request (graceful shutdown).
func (s *Server) UnregisterNode(ctx context.Context, nodeID, reason string) error {
	if reason == "" {
		reason = "node shut down"
	}
	if !s.markDead(ctx, nodeID, reason) {
		return fmt.Errorf("unregistering %s: %w", nodeID, ErrUnknownNode)
	}
	return nil
}

// CheckHeartbeats declares dead every alive node whose last heartbeat is
// older than HeartbeatPeriod*FailureThreshold. Run calls it periodically;
// tests call it directly with a fake clock.
func (s *Server) CheckHeartbeats(ctx context.Context) {
	timeout := s.opts.HeartbeatPeriod * time.Duration(s.opts.FailureThreshold)
	now := s.opts.Clock.Now()
	var expired, previousHeads []string
	var undrained []*gcsv1.Node
	s.mu.Lock()
	for id, e := range s.nodes {
		switch {
		case e.node.State != gcsv1.NodeState_NODE_STATE_ALIVE:
		case e.previousHead:
			previousHeads = append(previousHeads, id)
		case now.Sub(e.lastSeen) > timeout:
			expired = append(expired, id)
		case !e.drainUntil.IsZero() && !now.Before(e.drainUntil):
			// The node outlived its drain: it takes work again, and the
			// event lets waiting placements try it.
			e.drainUntil, e.shuttingDown = time.Time{}, false
			undrained = append(undrained, s.snapshotLocked(e))
		}
	}
	s.mu.Unlock()
	for _, n := range undrained {
		s.publish(n)
	}
	for _, id := range expired {
		s.markDead(ctx, id, fmt.Sprintf("missed heartbeats for more than %s", timeout))
	}
	for _, id := range previousHeads {
		s.markDead(ctx, id, "the head restarted")
	}
	s.retryUnpersisted(ctx)
}

// retryUnpersisted writes the current records of nodes whose last write
// failed.
func (s *Server) retryUnpersisted(ctx context.Context) {
	s.mu.Lock()
	var snapshots []*gcsv1.Node
	for id := range s.unpersisted {
		if e, ok := s.nodes[id]; ok {
			snapshots = append(snapshots, s.snapshotLocked(e))
		}
	}
	s.mu.Unlock()
	for _, n := range snapshots {
		_ = s.persist(ctx, n)
	}
}

// CheckHealth reports whether the control service can keep its promises:
// its storage answers and holds every node record the head has. A head that
// fails it would otherwise serve from a memory copy its storage no longer
// matches, which a restarted head would not see.
func (s *Server) CheckHealth(ctx context.Context) error {
	if hc, ok := s.opts.Storage.(HealthChecker); ok {
		if err := hc.CheckHealth(ctx); err != nil {
			return fmt.Errorf("the GCS storage is unreachable: %w", err)
		}
	}
	s.retryUnpersisted(ctx)
	s.mu.Lock()
	n := len(s.unpersisted)
	s.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("the GCS storage has not taken the records of %d nodes", n)
	}
	return nil
}

func (s *Server) markDead(ctx context.Context, nodeID, reason string) bool {
	s.mu.Lock()
	e, ok := s.nodes[nodeID]
	if !ok {
		s.mu.Unlock()
		return false
	}
	if e.node.State == gcsv1.NodeState_NODE_STATE_DEAD {
		s.mu.Unlock()
		return true
	}
	e.node.State = gcsv1.NodeState_NODE_STATE_DEAD
	e.node.EndTimeMs = s.opts.Clock.Now().UnixMilli()
	e.node.DeathReason = reason
	e.processes = map[string]*gcsv1.ProcessSpec{}
	e.queue = nil
	close(e.wake)
	e.wake = make(chan struct{})
	snapshot := s.snapshotLocked(e)
	s.mu.Unlock()

	s.opts.Logger.Info("Marking node dead", "nodeID", nodeID, "reason", reason)
	_ = s.persist(ctx, snapshot) // logged there, retried by CheckHeartbeats
	s.publish(snapshot)
	return true
}

// Run checks heartbeats until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	t := s.opts.Clock.NewTicker(s.opts.HeartbeatPeriod / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			s.CheckHeartbeats(ctx)
		}
	}
}

// Nodes returns a snapshot of the node table sorted with the head first.
func (s *Server) Nodes() []*gcsv1.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*gcsv1.Node, 0, len(s.nodes))
	for _, e := range s.nodes {
		out = append(out, s.snapshotLocked(e))
	}
	sortNodes(out)
	return out
}

// Node returns one node by id.
func (s *Server) Node(id string) (*gcsv1.Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.nodes[id]
	if !ok {
		return nil, false
	}
	return s.snapshotLocked(e), true
}

func sortNodes(nodes []*gcsv1.Node) {
	slices.SortFunc(nodes, func(a, b *gcsv1.Node) int {
		switch {
		case a.IsHead != b.IsHead:
			if a.IsHead {
				return -1
			}
			return 1
		case a.State != b.State:
			return int(a.State) - int(b.State)
		case a.NodeIpAddress != b.NodeIpAddress:
			if a.NodeIpAddress < b.NodeIpAddress {
				return -1
			}
			return 1
		}
		if a.NodeId < b.NodeId {
			return -1
		}
		return 1
	})
}

// snapshotLocked copies the node with resources_available filled in.
func (s *Server) snapshotLocked(e *nodeEntry) *gcsv1.Node {
	n := proto.Clone(e.node).(*gcsv1.Node)
	used := make([]map[string]float64, 0, len(e.processes))
	for _, p := range e.processes {
		used = append(used, p.Resources)
	}
	if n.State == gcsv1.NodeState_NODE_STATE_ALIVE {
		n.ResourcesAvailable = Subtract(n.ResourcesTotal, used...)
	} else {
		n.ResourcesAvailable = map[string]float64{}
	}
	return n
}

func (s *Server) persist(ctx context.Context, n *gcsv1.Node) error {
	raw, err := proto.Marshal(n)
	if err == nil {
		_, err = s.opts.Storage.Put(ctx, nodesNamespace, n.NodeId, raw, true)
	}
	s.mu.Lock()
	if err != nil {
		s.unpersisted[n.NodeId] = struct{}{}
	} else {
		delete(s.unpersisted, n.NodeId)
	}
	s.mu.Unlock()
	if err != nil {
		s.opts.Logger.Error(err, "Persisting node failed; retrying and reporting unhealthy until it is stored", "nodeID", n.NodeId)
		return fmt.Errorf("persisting node %s: %w", n.NodeId, err)
	}
	return nil
}

func (s *Server) publish(n *gcsv1.Node) {
	s.mu.Lock()
	handlers := slices.Clone(s.nodeHandlers)
	for ch := range s.watchers {
		select {
		case ch <- n:
		default:
			// A watcher that cannot keep up is dropped; it reconnects and
			// gets a fresh snapshot.
			delete(s.watchers, ch)
			close(ch)
		}
	}
	s.mu.Unlock()
	for _, h := range handlers {
		h(n)
	}
}

// Watch returns the current table and a channel of later changes. The
// channel is closed when cancel is called or the watcher falls behind.
func (s *Server) Watch() (snapshot []*gcsv1.Node, changes <-chan *gcsv1.Node, cancel func()) {
	ch := make(chan *gcsv1.Node, 256)
	s.mu.Lock()
	snapshot = make([]*gcsv1.Node, 0, len(s.nodes))
	for _, e := range s.nodes {
		snapshot = append(snapshot, s.snapshotLocked(e))
	}
	s.watchers[ch] = struct{}{}
	s.mu.Unlock()
	sortNodes(snapshot)
	return snapshot, ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.watchers[ch]; ok {
			delete(s.watchers, ch)
			close(ch)
		}
	}
}

// Placement asks for a process to run somewhere in the cluster.
type Placement struct {
	Spec *gcsv1.ProcessSpec
	// HeadOnly pins the process to the head node (Ray's default for job
	// entrypoints without resource requests).
	HeadOnly bool
	// NodeID pins the process to one node when set.
	NodeID string
	// LabelSelector restricts nodes to those with matching labels.
	LabelSelector map[string]string
}

// PlaceProcess picks an alive node that has the spec's resources available,
// reserves them and queues a start assignment for the node's agent. It
// prefers the head, then the node with the most free CPU. ErrNoCapacity
// means nothing fits right now.
func (s *Server) PlaceProcess(p Placement) (*gcsv1.Node, error) {
	if p.Spec.GetProcessId() == "" {
		return nil, errors.New("process_id is required")
	}
	s.mu.Lock()
	var best *nodeEntry
	var bestAvail map[string]float64
	for _, e := range s.nodes {
		n := e.node
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE || e.previousHead || s.drainingLocked(e) {
			continue
		}
		if p.HeadOnly && !n.IsHead || p.NodeID != "" && n.NodeId != p.NodeID {
			continue
		}
		if !MatchLabels(n.Labels, p.LabelSelector) {
			continue
		}
		avail := s.snapshotLocked(e).ResourcesAvailable
		if !Fits(avail, p.Spec.Resources) {
			continue
		}
		if best == nil || betterNode(e, avail, best, bestAvail) {
			best, bestAvail = e, avail
		}
	}
	if best == nil {
		s.mu.Unlock()
		return nil, ErrNoCapacity
	}
	best.processes[p.Spec.ProcessId] = p.Spec
	s.enqueueLocked(best, &gcsv1.Assignment{Action: &gcsv1.Assignment_Start{Start: &gcsv1.StartProcess{Spec: p.Spec}}})
	snapshot := s.snapshotLocked(best)
	s.mu.Unlock()
	s.publish(snapshot)
	return snapshot, nil
}

func betterNode(a *nodeEntry, aAvail map[string]float64, b *nodeEntry, bAvail map[string]float64) bool {
	if a.node.IsHead != b.node.IsHead {
		return a.node.IsHead
	}
	if aAvail["CPU"] != bAvail["CPU"] {
		return aAvail["CPU"] > bAvail["CPU"]
	}
	return a.node.NodeId < b.node.NodeId
}

// StopProcess queues a stop assignment for a process on a node.
func (s *Server) StopProcess(nodeID, processID string, grace time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.nodes[nodeID]
	if !ok {
		return fmt.Errorf("stopping %s: %w", processID, ErrUnknownNode)
	}
	if e.node.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		return fmt.Errorf("stopping %s on %s: %w", processID, nodeID, ErrNodeDead)
	}
	s.enqueueLocked(e, &gcsv1.Assignment{Action: &gcsv1.Assignment_Stop{Stop: &gcsv1.StopProcess{ProcessId: processID, GracePeriodMs: grace.Milliseconds()}}})
	return nil
}

func (s *Server) enqueueLocked(e *nodeEntry, a *gcsv1.Assignment) {
	e.queue = append(e.queue, a)
	close(e.wake)
	e.wake = make(chan struct{})
}

// NextAssignments blocks until the node has assignments queued and returns
// them, or returns ctx's error. Callers that fail to deliver them hand them
// back with Requeue.
func (s *Server) NextAssignments(ctx context.Context, nodeID string) ([]*gcsv1.Assignment, error) {
	for {
		s.mu.Lock()
		e, ok := s.nodes[nodeID]
		if !ok {
			s.mu.Unlock()
			return nil, fmt.Errorf("watching assignments of %s: %w", nodeID, ErrUnknownNode)
		}
		if e.node.State != gcsv1.NodeState_NODE_STATE_ALIVE {
			s.mu.Unlock()
			return nil, fmt.Errorf("watching assignments of %s: %w", nodeID, ErrNodeDead)
		}
		if len(e.queue) > 0 {
			q := e.queue
			e.queue = nil
			s.mu.Unlock()
			return q, nil
		}
		wake := e.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Requeue puts undelivered assignments back at the front of the node's queue.
func (s *Server) Requeue(nodeID string, as []*gcsv1.Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.nodes[nodeID]
	if !ok || e.node.State != gcsv1.NodeState_NODE_STATE_ALIVE {
		return
	}
	e.queue = append(slices.Clone(as), e.queue...)
	close(e.wake)
	e.wake = make(chan struct{})
}

// ReportProcessEvent records a process event from an agent: exits release
// the resources the process held. Registered handlers for the process kind
// then see the event.
func (s *Server) ReportProcessEvent(nodeID string, st *gcsv1.ProcessStatus) {
	if st.GetSpec() == nil {
		return
	}
	var snapshot *gcsv1.Node
	s.mu.Lock()
	if e, ok := s.nodes[nodeID]; ok && st.State != gcsv1.ProcessState_PROCESS_STATE_RUNNING {
		if _, held := e.processes[st.Spec.ProcessId]; held {
			delete(e.processes, st.Spec.ProcessId)
			snapshot = s.snapshotLocked(e)
		}
	}
	handlers := slices.Clone(s.procHandlers[st.Spec.Kind])
	s.mu.Unlock()
	if snapshot != nil {
		s.publish(snapshot)
	}
	for _, h := range handlers {
		h(nodeID, st)
	}
}

// ClusterResources sums total and available resources over alive nodes.
func ClusterResources(nodes []*gcsv1.Node) (total, available map[string]float64) {
	total, available = map[string]float64{}, map[string]float64{}
	for _, n := range nodes {
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
			continue
		}
		for k, v := range n.ResourcesTotal {
			total[k] += v
		}
		for k, v := range n.ResourcesAvailable {
			available[k] += v
		}
	}
	return total, available
}
