// Package agent is the Ray core part of a node agent: it serves the node's
// Python drivers, task workers and actors over a Unix socket (package
// corewire), keeps the node's object store, a pool of task worker
// processes and one process per actor, and asks the head's scheduler for a
// resource lease before running each task or actor. See docs/ray-core.md.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	"github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// SocketName is the agent's socket inside the node's socket directory; the
// node agent exports that directory to every process it starts
// (RAYK8S_SERVE_SOCKET_DIR), which is how job entrypoints find it.
const SocketName = "core.sock"

// NodesDirName holds one file per running node under the Ray temp dir,
// naming its GCS address and core socket, so that `ray.init()` in a shell
// on the machine (kubectl exec) finds the local node.
const NodesDirName = "rayk8s-core-nodes"

// Options configures an Agent.
type Options struct {
	NodeID     string
	NodeIP     string
	IsHead     bool
	GCSAddress string
	// SocketDir is where the agent's socket is created.
	SocketDir string
	// TempDir is the Ray temp dir (the nodes file goes under it).
	TempDir string
	// LogsDir receives the workers' output files.
	LogsDir string
	// Python runs the workers; empty means /usr/bin/python3 when present.
	Python string
	// PipEnvs builds the venvs of runtime_env pip; nil refuses pip.
	PipEnvs *pipenv.Manager
	// Conn reaches the head's control service.
	Conn grpc.ClientConnInterface
	// HTTPClient reaches other nodes' agents (with mutual TLS it presents the node's certificate;
	// with token authentication it carries the cluster's token); nil means a plain client.
	HTTPClient *http.Client
	// ObjectStoreMemory is how many bytes of objects the node keeps in
	// memory before spilling to SpillDir; zero means no limit.
	ObjectStoreMemory int64
	// SpillDir receives spilled objects; the agent deletes it when it stops.
	SpillDir string
	Logger   logr.Logger
}

// Agent is a node's Ray core service.
type Agent struct {
	opts   Options
	store  *Store
	sched  corev1.SchedulerClient
	nodes  gcsv1.NodeServiceClient
	kv     gcsv1.KVServiceClient
	pool   *pool
	peers  *peers
	logs   chan logLines
	socket string

	mu     sync.Mutex
	jobs   map[string]*job
	actors map[string]*actor

	// tmu guards tasks: the state API's rows of tasks submitted here.
	tmu   sync.Mutex
	tasks *taskTable
	// deadActors are the rows of actors owned here that died, newest last,
	// at most maxDeadActors: the state API lists them as DEAD, as Ray does.
	deadActors []stateapi.Actor
	// ctls are the tasks submitted here that have not finished, by the
	// prefix their ids share with their returns (ray.cancel).
	ctls map[string]*taskCtl

	// lmu guards shapes: tasks waiting for leases, by job and resource shape.
	lmu    sync.Mutex
	shapes map[string]*shapeQueue
}

// job is what the agent knows of a driver connected to it.
type job struct {
	id        string
	namespace string
	env       map[string]string
	// pip is the job's runtime_env pip, the default of its tasks and actors.
	pip        *pipenv.Spec
	sysPath    []string
	pyPath     string
	driverNode string
	// conn is the driver's connection; nil for jobs of other nodes' drivers.
	conn   *corewire.Conn
	ctx    context.Context
	cancel context.CancelFunc

	finish sync.Once
	mu     sync.Mutex
	// peers are the nodes running some of this job's work.
	peers map[string]bool
	// started is when the driver connected (zero for other nodes' jobs).
	started time.Time
	// groups are the job's non-detached placement groups, removed with it.
	groups []string
}

// notify sends a message to the job's driver, when it is connected here.
func (j *job) notify(op string, body any) {
	if j.conn != nil {
		_ = j.conn.Notify(op, body)
	}
}

// New returns an Agent; Run serves it.
func New(opts Options) *Agent {
	if opts.Python == "" {
		opts.Python = "python3"
		if _, err := os.Stat("/usr/bin/python3"); err == nil {
			opts.Python = "/usr/bin/python3"
		}
	}
	a := &Agent{
		opts:   opts,
		store:  NewStore(StoreOptions{Limit: opts.ObjectStoreMemory, SpillDir: opts.SpillDir, Logger: opts.Logger.WithName("object-store")}),
		sched:  corev1.NewSchedulerClient(opts.Conn),
		nodes:  gcsv1.NewNodeServiceClient(opts.Conn),
		kv:     gcsv1.NewKVServiceClient(opts.Conn),
		socket: filepath.Join(opts.SocketDir, SocketName),
		jobs:   map[string]*job{},
		actors: map[string]*actor{},
		shapes: map[string]*shapeQueue{},
		tasks:  newTaskTable(maxTaskRows),
		ctls:   map[string]*taskCtl{},
	}
	a.pool = newPool(a)
	a.logs = make(chan logLines, 4096)
	client := a.opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	a.peers = &peers{a: a, client: client, addrs: map[string]string{}}
	return a
}

// SocketPath is where drivers and workers connect.
func (a *Agent) SocketPath() string { return a.socket }

// Store is the node's object store.
func (a *Agent) Store() *Store { return a.store }

// Run serves the socket until ctx ends, then stops every worker.
func (a *Agent) Run(ctx context.Context) error {
	_ = os.Remove(a.socket)
	l, err := net.Listen("unix", a.socket)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", a.socket, err)
	}
	nodesFile := a.writeNodesFile()
	defer func() {
		if nodesFile != "" {
			_ = os.Remove(nodesFile)
		}
		if err := a.store.Close(); err != nil {
			a.opts.Logger.Error(err, "Deleting spilled objects failed", "dir", a.opts.SpillDir)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	go a.runLogForwarder(ctx)
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				a.shutdown()
				return nil
			}
			return fmt.Errorf("accepting on %s: %w", a.socket, err)
		}
		c := corewire.NewConn(nc, a.handle)
		// Submissions arrive as notifications, so a driver needs no round
		// trip per task or actor call; handled in order, they are queued
		// before any later request of the same caller is read. A get is
		// answered by whoever stores its last object, with no goroutine
		// of its own unless it must fetch or give back a lease. A worker's
		// output is queued for its driver before the reply that follows it
		// is read, and its lines stay in order.
		c.Inline("submit_task", "actor_call", "get", "actor_direct", "log")
		go func() {
			_ = c.Serve()
			a.disconnected(c)
		}()
	}
}

// nodeFile is the JSON written under NodesDirName.
type nodeFile struct {
	NodeID     string `json:"node_id"`
	NodeIP     string `json:"node_ip_address"`
	GCSAddress string `json:"gcs_address"`
	Socket     string `json:"socket"`
	IsHead     bool   `json:"is_head"`
	PID        int    `json:"pid"`
}

func (a *Agent) writeNodesFile() string {
	if a.opts.TempDir == "" {
		return ""
	}
	dir := filepath.Join(a.opts.TempDir, NodesDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		a.opts.Logger.Error(err, "Recording the node for local drivers failed")
		return ""
	}
	raw, _ := json.Marshal(nodeFile{NodeID: a.opts.NodeID, NodeIP: a.opts.NodeIP, GCSAddress: a.opts.GCSAddress, Socket: a.socket, IsHead: a.opts.IsHead, PID: os.Getpid()})
	path := filepath.Join(dir, a.opts.NodeID+".json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		a.opts.Logger.Error(err, "Recording the node for local drivers failed")
		return ""
	}
	return path
}

func (a *Agent) shutdown() {
	a.mu.Lock()
	actors := make([]*actor, 0, len(a.actors))
	for _, ac := range a.actors {
		actors = append(actors, ac)
	}
	a.mu.Unlock()
	for _, ac := range actors {
		ac.kill("the node is shutting down")
	}
	a.pool.shutdown()
}

// peer is what a connection is: a driver (job) or a worker process.
type peer struct {
	job    *job
	worker *worker
}

func (a *Agent) disconnected(c *corewire.Conn) {
	p, _ := c.Value.(*peer)
	if p == nil {
		return
	}
	if p.worker != nil {
		p.worker.exitedConn()
		a.failOwed(p.worker)
	}
	if j := p.job; j != nil {
		a.finishJob(j)
	}
}

// finishJob ends a job whose driver left (or said goodbye) here and tells
// the nodes that ran its work; it runs once per job.
func (a *Agent) finishJob(j *job) {
	j.finish.Do(func() {
		a.opts.Logger.V(1).Info("Driver left; releasing its job", "jobID", j.id)
		a.endJob(j)
		j.mu.Lock()
		nodes := make([]string, 0, len(j.peers))
		for n := range j.peers {
			nodes = append(nodes, n)
		}
		j.mu.Unlock()
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if _, err := a.callPeer(ctx, n, &corewire.Message{Header: corewire.Header{Op: "job_end", Body: corewire.JSON(map[string]string{"job": j.id})}}); err != nil {
					a.opts.Logger.Info("Telling a node that a job ended failed", "nodeID", n, "jobID", j.id, "err", err.Error())
				}
			}()
		}
		wg.Wait()
	})
}

// endJob releases what a job holds on this node: its work, its
// non-detached actors and its objects.
func (a *Agent) endJob(j *job) {
	j.cancel()
	a.mu.Lock()
	delete(a.jobs, j.id)
	var owned []*actor
	for _, ac := range a.actors {
		if ac.job == j.id && !ac.detached {
			owned = append(owned, ac)
		}
	}
	a.mu.Unlock()
	for _, ac := range owned {
		ac.kill("The actor is dead because its owner (the job's driver) has died.")
	}
	a.removeJobGroups(j)
	a.pool.dropIdle(j)
	a.store.DropJob(j.id)
	a.dropTasks(j.id)
}

// errorf builds an error reply the Python side raises as pyType.
func errorf(pyType, format string, args ...any) error {
	return &corewire.RemoteError{Type: pyType, Message: fmt.Sprintf(format, args...)}
}

func (a *Agent) handle(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	if m.ID == 0 {
		// A notification has nobody to hear its error: log it.
		resp, err := a.dispatch(c, m)
		if err != nil {
			a.opts.Logger.Info("Dropped a request that failed", "op", m.Op, "err", err.Error())
		}
		return resp, err
	}
	return a.dispatch(c, m)
}

func (a *Agent) dispatch(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	switch m.Op {
	case "hello":
		return a.hello(c, m)
	case "nodes":
		return a.listNodes()
	case "put":
		return a.put(c, m)
	case "get":
		return a.get(c, m)
	case "wait":
		return a.wait(c, m)
	case "submit_task":
		return a.submitTask(m)
	case "create_actor":
		return a.createActor(m)
	case "actor_call":
		return a.actorCall(m)
	case "get_actor":
		return a.getActor(m)
	case "actor_direct":
		return a.actorDirect(m)
	case "expect":
		return a.expect(c, m)
	case "direct_done":
		return a.directDone(m)
	case "kill_actor":
		return a.killActor(m)
	case "demand":
		return a.demand()
	case "create_pg":
		return a.createGroup(m)
	case "pg_wait":
		return a.waitGroup(c, m)
	case "pg_ready":
		return a.groupReady(m)
	case "remove_pg":
		return a.removeGroup(m)
	case "list_pgs":
		return a.listGroups()
	case "cancel":
		return a.cancel(c, m)
	case "cancel_actor_call":
		return a.cancelActorCall(m)
	case "goodbye":
		// ray.shutdown(): the job's actors and objects are gone when it
		// returns, and the output its workers sent before their last results
		// has reached the driver, which prints it before it exits.
		a.flushLogs()
		if p, _ := c.Value.(*peer); p != nil && p.job != nil {
			a.finishJob(p.job)
		}
		return nil, nil
	case "log":
		a.forwardLog(m)
		return nil, nil
	}
	// Only a driver or worker from another version of the ray package sends an op this agent lacks.
	return nil, errorf("RaySystemError", "the node agent does not know the request %q: the ray package and the node's ray binary are of different versions", m.Op)
}

type helloBody struct {
	Role      string            `json:"role"`
	WorkerID  string            `json:"worker_id"`
	Namespace string            `json:"namespace"`
	EnvVars   map[string]string `json:"env_vars"`
	SysPath   []string          `json:"sys_path"`
	PyPath    string            `json:"py_path"`
	Pip       *pipenv.Spec      `json:"pip"`
}

func (a *Agent) hello(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	var b helloBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	reply := map[string]any{"node_id": a.opts.NodeID, "node_ip_address": a.opts.NodeIP, "gcs_address": a.opts.GCSAddress}
	switch b.Role {
	case "driver":
		ns := b.Namespace
		id := newJobID()
		if ns == "" {
			ns = newID(16)
		}
		ctx, cancel := context.WithCancel(context.Background())
		j := &job{id: id, namespace: ns, env: b.EnvVars, pip: b.Pip, sysPath: b.SysPath, pyPath: b.PyPath, conn: c, driverNode: a.opts.NodeID, ctx: ctx, cancel: cancel, peers: map[string]bool{}, started: time.Now()}
		a.mu.Lock()
		a.jobs[id] = j
		a.mu.Unlock()
		c.Value = &peer{job: j}
		reply["job_id"] = id
		reply["namespace"] = ns
	case "worker":
		w := a.pool.registered(b.WorkerID, c)
		if w == nil {
			return nil, errorf("RuntimeError", "unknown worker id %q", b.WorkerID)
		}
		c.Value = &peer{worker: w}
	default:
		return nil, errorf("ValueError", "hello: role %q is neither driver nor worker", b.Role)
	}
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(reply)}}, nil
}

func (a *Agent) jobOf(id string) (*job, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	j, ok := a.jobs[id]
	return j, ok
}

// nodeJSON is a node as the Python side formats it for ray.nodes().
type nodeJSON struct {
	NodeID      string             `json:"node_id"`
	NodeIP      string             `json:"node_ip_address"`
	Hostname    string             `json:"hostname"`
	Alive       bool               `json:"alive"`
	IsHead      bool               `json:"is_head"`
	Total       map[string]float64 `json:"resources_total"`
	Available   map[string]float64 `json:"resources_available"`
	Labels      map[string]string  `json:"labels"`
	AgentPort   int32              `json:"agent_port"`
	MetricsPort int32              `json:"metrics_port"`
	DeathReason string             `json:"death_reason"`
	StartTimeMs int64              `json:"start_time_ms"`
}

func (a *Agent) listNodes() (*corewire.Message, error) {
	resp, err := a.nodes.ListNodes(context.Background(), &gcsv1.ListNodesRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes from the head: %w", err)
	}
	out := make([]nodeJSON, 0, len(resp.Nodes))
	for _, n := range resp.Nodes {
		out = append(out, nodeJSON{
			NodeID: n.NodeId, NodeIP: n.NodeIpAddress, Hostname: n.Hostname,
			Alive: n.State == gcsv1.NodeState_NODE_STATE_ALIVE, IsHead: n.IsHead,
			Total: n.ResourcesTotal, Available: n.ResourcesAvailable, Labels: n.Labels,
			AgentPort: n.AgentPort, MetricsPort: n.MetricsPort, DeathReason: n.DeathReason, StartTimeMs: n.StartTimeMs,
		})
	}
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(out)}}, nil
}

func (a *Agent) demand() (*corewire.Message, error) {
	resp, err := a.sched.Demand(context.Background(), &corev1.DemandRequest{})
	if err != nil {
		return nil, fmt.Errorf("reading the pending demand from the head: %w", err)
	}
	type d struct {
		ID         string             `json:"id"`
		Resources  map[string]float64 `json:"resources"`
		Infeasible bool               `json:"infeasible"`
	}
	out := []d{}
	for _, x := range resp.Demands {
		out = append(out, d{x.LeaseId, x.Resources, x.Infeasible})
	}
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(out)}}, nil
}

type putBody struct {
	ObjectID string `json:"object_id"`
	Job      string `json:"job"`
	// IsErr marks an error value: a direct call's result made available
	// here when it leaves its caller.
	IsErr bool `json:"is_err,omitempty"`
}

func (a *Agent) put(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	var b putBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	if b.ObjectID == "" || len(m.Parts) != 1 {
		return nil, errorf("ValueError", "put: object_id and exactly one value are required")
	}
	a.store.Put(b.ObjectID, b.Job, m.Parts[0], b.IsErr)
	if p, _ := c.Value.(*peer); p != nil && p.worker != nil {
		p.worker.paid(b.ObjectID)
	}
	return nil, nil
}

type getBody struct {
	ObjectIDs []string `json:"object_ids"`
	Owners    []string `json:"owners"`
	Job       string   `json:"job"`
	// TimeoutMs < 0 waits forever.
	TimeoutMs int64 `json:"timeout_ms"`
}

// get answers ray.get. Its handler runs on the connection's reading
// goroutine: when the objects are (or will be) in this node's store and
// waiting costs the caller nothing else, the answer is sent by whoever
// stores the last of them, with no goroutine waiting per get; other gets
// wait in a goroutine of their own.
func (a *Agent) get(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	var b getBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	for i, id := range b.ObjectIDs {
		if err := a.checkKnown(id, ownerAt(b.Owners, i)); err != nil {
			return nil, err
		}
	}
	if a.getWaitsInStore(c, &b) {
		a.getWhenReady(c, m, &b)
		return nil, corewire.ErrLater
	}
	go func() {
		resp, err := a.getBlocking(c, &b)
		c.Answer(m, resp, err)
	}()
	return nil, corewire.ErrLater
}

// getWaitsInStore reports whether a get needs nothing but values this
// node's store holds or will hold: none to fetch from another node, and no
// lease to give back while the calling task is blocked.
func (a *Agent) getWaitsInStore(c *corewire.Conn, b *getBody) bool {
	allReady := true
	for i, id := range b.ObjectIDs {
		if a.store.Ready(id) {
			continue
		}
		allReady = false
		if o := ownerAt(b.Owners, i); o != "" && o != a.opts.NodeID {
			return false
		}
	}
	if allReady {
		return true
	}
	p, _ := c.Value.(*peer)
	if p == nil || p.worker == nil {
		return true
	}
	cur := p.worker.current()
	return cur == nil || cur.Resources["CPU"] <= 0
}

// getWhenReady answers m once the store holds every object of b, or with
// GetTimeoutError when b's timeout passes first.
func (a *Agent) getWhenReady(c *corewire.Conn, m *corewire.Message, b *getBody) {
	var timer atomic.Pointer[time.Timer]
	cancel := a.store.OnReady(b.ObjectIDs, func() {
		if t := timer.Load(); t != nil {
			t.Stop()
		}
		for _, id := range b.ObjectIDs {
			if !a.store.InMemory(id) {
				// Read back from disk off the goroutine that stored the value.
				go func() {
					resp, err := a.getReply(b.ObjectIDs)
					c.Answer(m, resp, err)
				}()
				return
			}
		}
		resp, err := a.getReply(b.ObjectIDs)
		c.Answer(m, resp, err)
	})
	if b.TimeoutMs >= 0 {
		timer.Store(time.AfterFunc(msDuration(b.TimeoutMs), func() {
			if cancel() {
				c.Answer(m, nil, errorf("GetTimeoutError", "Get timed out: some object(s) not ready."))
			}
		}))
	}
}

// getBlocking is a get that fetches objects from other nodes or gives the
// calling task's lease back while it waits.
func (a *Agent) getBlocking(c *corewire.Conn, b *getBody) (*corewire.Message, error) {
	ctx, cancel := timeoutCtx(c, b.TimeoutMs)
	defer cancel()
	reacquire := a.releaseWhileBlocked(c, b.ObjectIDs)
	err := a.ensureAll(ctx, b.Job, refsOf(b.ObjectIDs, b.Owners))
	reacquire()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, errorf("GetTimeoutError", "Get timed out: some object(s) not ready.")
		}
		return nil, errorf("RuntimeError", "get abandoned: the caller disconnected")
	}
	return a.getReply(b.ObjectIDs)
}

// getReplyBody is the body of get's answer; the values are its parts.
type getReplyBody struct {
	Errors []bool `json:"errors"`
}

// getReply is get's answer once every object of ids is ready here.
func (a *Agent) getReply(ids []string) (*corewire.Message, error) {
	out := &corewire.Message{Parts: make([][]byte, 0, len(ids))}
	errs := make([]bool, len(ids))
	for i, id := range ids {
		data, isErr, ok := a.store.Value(id)
		if !ok {
			// Dropped between waiting and reading: its job ended.
			return nil, errorf("ObjectLostError", "Object %s is lost: its job has exited", id)
		}
		errs[i] = isErr
		out.Parts = append(out.Parts, data)
	}
	out.Body = corewire.JSON(getReplyBody{Errors: errs})
	return out, nil
}

type waitBody struct {
	ObjectIDs  []string `json:"object_ids"`
	Owners     []string `json:"owners"`
	Job        string   `json:"job"`
	NumReturns int      `json:"num_returns"`
	TimeoutMs  int64    `json:"timeout_ms"`
}

func (a *Agent) wait(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	var b waitBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	ctx, cancel := timeoutCtx(nil, b.TimeoutMs)
	defer cancel()
	for _, r := range refsOf(b.ObjectIDs, b.Owners) {
		if r.Owner != "" && r.Owner != a.opts.NodeID && !a.store.Ready(r.ID) {
			// Fetched into the local store, where WaitSome sees it arrive.
			go func() { _ = a.ensure(ctx, b.Job, r) }()
		}
	}
	reacquire := a.releaseWhileBlocked(c, b.ObjectIDs)
	ready := a.store.WaitSome(ctx, b.ObjectIDs, b.NumReturns)
	reacquire()
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(map[string]any{"ready": ready})}}, nil
}

// timeoutCtx ends after ms milliseconds (never when ms < 0) or when c closes.
func timeoutCtx(c *corewire.Conn, ms int64) (context.Context, context.CancelFunc) {
	var ctx context.Context
	var cancel context.CancelFunc
	if ms >= 0 {
		ctx, cancel = context.WithTimeout(context.Background(), msDuration(ms))
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	if c != nil {
		go func() {
			select {
			case <-c.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// refsOf pairs ids with their owners (missing owners mean this node).
func refsOf(ids, owners []string) []objRef {
	out := make([]objRef, len(ids))
	for i, id := range ids {
		out[i].ID = id
		if i < len(owners) {
			out[i].Owner = owners[i]
		}
	}
	return out
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newJobID is 4 bytes of hex like Ray's JobID; random rather than a
// cluster-wide counter, so drivers on different nodes need no coordination.
func newJobID() string { return newID(4) }

// checkKnown refuses an object this node owns but never heard of: an
// ObjectRef from another cluster or session, or one whose job has ended.
// Waiting for it would never end.
func (a *Agent) checkKnown(id, owner string) error {
	if owner != "" && owner != a.opts.NodeID {
		return nil
	}
	if a.store.Known(id) {
		return nil
	}
	return errorf("ObjectLostError", "Object %s is not known to this cluster: no ray.put or task of a running job here created it (an ObjectRef from another cluster or session?)", id)
}

func ownerAt(owners []string, i int) string {
	if i < len(owners) {
		return owners[i]
	}
	return ""
}
