package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/protobuf/proto"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/serve/config"
	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// fakeCluster places processes on fixed nodes and lets tests report their
// events.
type fakeCluster struct {
	mu       sync.Mutex
	nodes    []*gcsv1.Node
	procs    map[string]*gcsv1.ProcessSpec
	onNode   map[string]string
	stopped  []string
	handlers map[string][]gcs.ProcessEventFunc
	// draining nodes take no placements, as the control service's do.
	draining map[string]bool
}

func newFakeCluster(nodes ...string) *fakeCluster {
	fc := &fakeCluster{procs: map[string]*gcsv1.ProcessSpec{}, onNode: map[string]string{}, handlers: map[string][]gcs.ProcessEventFunc{},
		draining: map[string]bool{}}
	for i, id := range nodes {
		fc.nodes = append(fc.nodes, &gcsv1.Node{NodeId: id, NodeIpAddress: fmt.Sprintf("127.0.0.%d", i+1), IsHead: i == 0, AgentPort: 5000,
			State: gcsv1.NodeState_NODE_STATE_ALIVE, ResourcesTotal: map[string]float64{"CPU": 2}})
	}
	return fc
}

func (f *fakeCluster) Nodes() []*gcsv1.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*gcsv1.Node
	for _, n := range f.nodes {
		c := proto.Clone(n).(*gcsv1.Node)
		var used []map[string]float64
		for id, spec := range f.procs {
			if f.onNode[id] == n.NodeId {
				used = append(used, spec.Resources)
			}
		}
		c.ResourcesAvailable = gcs.Subtract(n.ResourcesTotal, used...)
		out = append(out, c)
	}
	return out
}

func (f *fakeCluster) PlaceProcess(p gcs.Placement) (*gcsv1.Node, error) {
	for _, n := range f.Nodes() {
		if (p.NodeID == "" || n.NodeId == p.NodeID) && (!p.HeadOnly || n.IsHead) && gcs.Fits(n.ResourcesAvailable, p.Spec.Resources) && !f.Draining(n.NodeId) {
			f.mu.Lock()
			f.procs[p.Spec.ProcessId] = p.Spec
			f.onNode[p.Spec.ProcessId] = n.NodeId
			f.mu.Unlock()
			return n, nil
		}
	}
	return nil, gcs.ErrNoCapacity
}

func (f *fakeCluster) StopProcess(_, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = append(f.stopped, id)
	return nil
}

func (f *fakeCluster) OnProcessEvent(kind string, fn gcs.ProcessEventFunc) {
	f.handlers[kind] = append(f.handlers[kind], fn)
}
func (f *fakeCluster) OnNodeEvent(gcs.NodeEventFunc) {}

func (f *fakeCluster) Draining(nodeID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.draining[nodeID]
}

func (f *fakeCluster) drain(nodeID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.draining[nodeID] = true
}

// report sends a process event as the node agent would, and frees the
// resources of exited processes.
func (f *fakeCluster) report(id string, state gcsv1.ProcessState, tail string) {
	f.mu.Lock()
	spec, node := f.procs[id], f.onNode[id]
	if state != gcsv1.ProcessState_PROCESS_STATE_RUNNING {
		delete(f.procs, id)
	}
	handlers := f.handlers[spec.GetKind()]
	f.mu.Unlock()
	for _, h := range handlers {
		h(node, &gcsv1.ProcessStatus{Spec: spec, State: state, LogTail: tail, ExitCode: 1})
	}
}

// fakeReplicas answers control calls; unhealthy replicas fail health checks.
type fakeReplicas struct {
	mu          sync.Mutex
	unhealthy   map[string]bool
	reconfigure map[string]int
	// models are what each replica reports holding.
	models map[string][]string
}

func (f *fakeReplicas) Control(_ context.Context, t handle.Target, kind string, _ []byte) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kind == wire.KindReconfigure {
		f.reconfigure[t.ReplicaID]++
	}
	if kind == wire.KindHealth && f.unhealthy[t.ReplicaID] {
		return nil, errors.New("check_health raised")
	}
	return f.models[t.ReplicaID], nil
}

type harness struct {
	t       *testing.T
	c       *Controller
	cluster *fakeCluster
	reps    *fakeReplicas
	clock   *clocktesting.FakeClock
	store   gcs.Storage
	pending []func()
}

func newHarness(t *testing.T, store gcs.Storage, nodes ...string) *harness {
	return newHarnessOn(t, store, newFakeCluster(nodes...))
}

func newHarnessOn(t *testing.T, store gcs.Storage, cluster *fakeCluster) *harness {
	h := &harness{t: t, cluster: cluster, reps: &fakeReplicas{unhealthy: map[string]bool{}, reconfigure: map[string]int{}, models: map[string][]string{}},
		clock: clocktesting.NewFakeClock(time.Unix(1_000_000, 0)), store: store}
	if h.store == nil {
		h.store = gcs.NewMemoryStorage()
	}
	h.c = New(Options{Cluster: h.cluster, Store: h.store, Replicas: h.reps, Clock: h.clock, Logger: logr.Discard(),
		// Control calls run between passes, so the test decides when.
		Async: func(f func()) { h.pending = append(h.pending, f) }})
	return h
}

// pass runs one control loop pass, then the control calls it started.
func (h *harness) pass() {
	h.c.Reconcile(context.Background())
	p := h.pending
	h.pending = nil
	for _, f := range p {
		f()
	}
}

func (h *harness) deploy(body string) {
	h.t.Helper()
	p, err := config.Parse([]byte(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Deploy(context.Background(), p); err != nil {
		h.t.Fatal(err)
	}
}

// replicas returns the replicas of a deployment by state.
func (h *harness) replicas(app, dep string) map[dashboard.ReplicaState][]string {
	out := map[dashboard.ReplicaState][]string{}
	d := h.c.Details().Applications[app].Deployments[dep]
	for _, r := range d.Replicas {
		out[r.State] = append(out[r.State], r.ReplicaID)
	}
	return out
}

// startAll reports every placed, not yet running replica process as
// running and lets the probes mark them RUNNING.
func (h *harness) startAll() {
	for id, spec := range h.cluster.snapshotProcs() {
		if spec.Kind == ReplicaKind {
			h.cluster.report(id, gcsv1.ProcessState_PROCESS_STATE_RUNNING, "")
		}
	}
	h.clock.Step(time.Second)
	h.pass()
	h.pass()
}

func (f *fakeCluster) snapshotProcs() map[string]*gcsv1.ProcessSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*gcsv1.ProcessSpec{}
	for k, v := range f.procs {
		out[k] = v
	}
	return out
}

func (h *harness) appStatus(name string) (dashboard.ApplicationStatus, string) {
	a, ok := h.c.Details().Applications[name]
	if !ok {
		return dashboard.ApplicationStatusNotStarted, ""
	}
	return a.Status, a.Message
}

const echoApp = `{"applications": [{"name": "app", "import_path": "builtin:echo", "route_prefix": "/e",
  "deployments": [{"name": "echo", "num_replicas": 4, "ray_actor_options": {"num_cpus": 0.5}%s}]}]}`

func TestDeploySpreadsReplicasAndBecomesRunning(t *testing.T) {
	h := newHarness(t, nil, "head", "w1")
	h.deploy(fmt.Sprintf(echoApp, ""))
	h.pass()
	if st, _ := h.appStatus("app"); st != dashboard.ApplicationStatusDeploying {
		t.Fatalf("status = %s, want DEPLOYING", st)
	}
	perNode := map[string]int{}
	for id := range h.cluster.snapshotProcs() {
		perNode[h.cluster.onNode[id]]++
	}
	if perNode["head"] != 2 || perNode["w1"] != 2 {
		t.Fatalf("replicas per node = %v, want 2 and 2 (spread)", perNode)
	}
	if tbl := h.c.Table(); len(tbl.Deployments) != 1 || len(tbl.Deployments[0].Replicas) != 0 || len(tbl.Routes) != 1 {
		t.Fatalf("table before replicas run = %v", tbl)
	}
	h.startAll()
	if st, msg := h.appStatus("app"); st != dashboard.ApplicationStatusRunning {
		t.Fatalf("status = %s (%s), want RUNNING", st, msg)
	}
	d := h.c.Details().Applications["app"].Deployments["echo"]
	if d.Status != dashboard.DeploymentStatusHealthy || d.StatusTrigger != dashboard.TriggerConfigUpdateCompleted {
		t.Fatalf("deployment = %s/%s", d.Status, d.StatusTrigger)
	}
	tbl := h.c.Table()
	if len(tbl.Deployments[0].Replicas) != 4 || tbl.Deployments[0].MaxOngoingRequests != 5 || tbl.Routes[0].RoutePrefix != "/e" {
		t.Fatalf("table = %v", tbl)
	}
	// An unchanged PUT changes nothing.
	v := tbl.Version
	h.deploy(fmt.Sprintf(echoApp, ""))
	h.pass()
	if h.c.Table().Version != v || len(h.cluster.snapshotProcs()) != 4 {
		t.Fatal("an identical PUT changed the deployment")
	}
}

func TestConstructorFailuresEndInDeployFailed(t *testing.T) {
	h := newHarness(t, nil, "head")
	h.deploy(`{"applications": [{"name": "app", "import_path": "builtin:echo", "deployments": [{"name": "echo", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}}]}]}`)
	for i := range 3 {
		h.pass()
		procs := h.cluster.snapshotProcs()
		if len(procs) != 1 {
			t.Fatalf("attempt %d: %d processes, want 1", i, len(procs))
		}
		for id := range procs {
			h.cluster.report(id, gcsv1.ProcessState_PROCESS_STATE_RUNNING, "")
			h.cluster.report(id, gcsv1.ProcessState_PROCESS_STATE_EXITED, "Traceback (most recent call last):\nValueError: bad model path")
		}
		h.pass()
	}
	st, msg := h.appStatus("app")
	if st != dashboard.ApplicationStatusDeployFailed || !strings.Contains(msg, "'echo'") {
		t.Fatalf("app = %s %q, want DEPLOY_FAILED naming echo", st, msg)
	}
	d := h.c.Details().Applications["app"].Deployments["echo"]
	if !strings.Contains(d.Message, "ValueError: bad model path") || d.StatusTrigger != dashboard.TriggerReplicaStartupFailed {
		t.Fatalf("deployment message = %q (%s)", d.Message, d.StatusTrigger)
	}
	h.pass()
	if n := len(h.cluster.snapshotProcs()); n != 0 {
		t.Fatalf("%d processes started after DEPLOY_FAILED, want none", n)
	}
	if msg := h.c.Table().Deployments[0].UnavailableMessage; msg == "" {
		t.Fatal("a failed deployment with no replicas is not marked unavailable for routers")
	}
}

func TestHealthChecksReplaceUnhealthyReplica(t *testing.T) {
	h := newHarness(t, nil, "head")
	h.deploy(`{"applications": [{"name": "app", "import_path": "builtin:echo", "deployments": [{"name": "echo", "num_replicas": 1, "health_check_period_s": 10, "ray_actor_options": {"num_cpus": 0.1}}]}]}`)
	h.pass()
	h.startAll()
	bad := h.replicas("app", "echo")[dashboard.ReplicaStateRunning][0]
	h.reps.unhealthy[bad] = true
	for i := range 2 {
		h.clock.Step(10 * time.Second)
		h.pass()
		h.pass()
		if got := h.replicas("app", "echo")[dashboard.ReplicaStateRunning]; len(got) != 1 {
			t.Fatalf("after %d failures running = %v, want the replica kept", i+1, got)
		}
	}
	// A check that is not yet due does not run.
	h.clock.Step(5 * time.Second)
	h.pass()
	h.pass()
	if got := h.replicas("app", "echo")[dashboard.ReplicaStateRunning]; len(got) != 1 {
		t.Fatalf("replica replaced before its third check: %v", got)
	}
	h.clock.Step(5 * time.Second)
	h.pass()
	h.pass()
	if st, _ := h.appStatus("app"); st != dashboard.ApplicationStatusUnhealthy {
		t.Fatalf("status = %s, want UNHEALTHY", st)
	}
	if got := h.replicas("app", "echo"); len(got[dashboard.ReplicaStateStopping]) != 1 || len(got[dashboard.ReplicaStateStarting]) != 1 {
		t.Fatalf("replicas = %v, want the bad one stopping and a replacement starting", got)
	}
	if tbl := h.c.Table(); len(tbl.Deployments[0].Replicas) != 0 {
		t.Fatal("a stopping replica stays in the routing table")
	}
	h.cluster.report(bad, gcsv1.ProcessState_PROCESS_STATE_EXITED, "")
	h.startAll()
	if st, _ := h.appStatus("app"); st != dashboard.ApplicationStatusRunning {
		t.Fatalf("status after replacement = %s, want RUNNING", st)
	}
}

func TestTableCarriesModelsAndGRPCOptions(t *testing.T) {
	h := newHarness(t, nil, "head")
	h.deploy(`{"grpc_options": {"port": 9100, "grpc_servicer_functions": ["user_pb2_grpc.add_UserServicer_to_server"], "request_timeout_s": 1.5},
	  "applications": [{"name": "app", "import_path": "builtin:echo", "deployments": [{"name": "echo", "num_replicas": 1, "health_check_period_s": 10, "ray_actor_options": {"num_cpus": 0.1}}]}]}`)
	h.pass()
	h.startAll()
	g := h.c.Table().GetGrpc()
	if g.GetPort() != 9100 || g.GetRequestTimeoutMs() != 1500 || len(g.GetServicerFunctions()) != 1 {
		t.Fatalf("table gRPC options = %v, want port 9100, 1500ms, one servicer function", g)
	}
	id := h.replicas("app", "echo")[dashboard.ReplicaStateRunning][0]
	h.reps.mu.Lock()
	h.reps.models[id] = []string{"customer-7"}
	h.reps.mu.Unlock()
	h.clock.Step(10 * time.Second)
	h.pass()
	h.pass()
	reps := h.c.Table().Deployments[0].Replicas
	if len(reps) != 1 || len(reps[0].MultiplexedModelIds) != 1 || reps[0].MultiplexedModelIds[0] != "customer-7" {
		t.Fatalf("table replicas = %v, want the replica with model customer-7", reps)
	}
}

func TestTableHasNoGRPCWithoutServicerFunctions(t *testing.T) {
	h := newHarness(t, nil, "head")
	h.deploy(`{"grpc_options": {"port": 9100}, "applications": [{"name": "app", "import_path": "builtin:echo", "deployments": [{"name": "echo", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}}]}]}`)
	h.pass()
	if g := h.c.Table().GetGrpc(); g != nil {
		t.Fatalf("table gRPC options = %v, want none (no servicer functions, no gRPC proxy)", g)
	}
}

func TestUserConfigReconfiguresInPlaceAndCodeChangeRolls(t *testing.T) {
	h := newHarness(t, nil, "head", "w1")
	h.deploy(fmt.Sprintf(echoApp, `, "user_config": {"message": "a"}`))
	h.pass()
	h.startAll()
	before := h.replicas("app", "echo")[dashboard.ReplicaStateRunning]

	h.deploy(fmt.Sprintf(echoApp, `, "user_config": {"message": "b"}`))
	h.pass()
	if st, _ := h.appStatus("app"); st != dashboard.ApplicationStatusDeploying {
		t.Fatalf("status during reconfigure = %s", st)
	}
	if len(h.c.Table().Deployments[0].Replicas) != 4 {
		t.Fatal("replicas being reconfigured left the routing table")
	}
	h.pass()
	after := h.replicas("app", "echo")[dashboard.ReplicaStateRunning]
	if strings.Join(before, ",") != strings.Join(after, ",") {
		t.Fatalf("user_config change replaced replicas: %v → %v", before, after)
	}
	for _, id := range after {
		if h.reps.reconfigure[id] != 1 {
			t.Fatalf("replica %s reconfigured %d times", id, h.reps.reconfigure[id])
		}
	}
	if st, _ := h.appStatus("app"); st != dashboard.ApplicationStatusRunning {
		t.Fatalf("status = %s", st)
	}

	// A code change (num_cpus is heavyweight) rolls: the nodes have room for
	// 4+4 replicas at 0.25 CPU, and old replicas stop only as new ones run.
	h.deploy(strings.Replace(fmt.Sprintf(echoApp, ""), `"num_cpus": 0.5`, `"num_cpus": 0.25`, 1))
	h.pass()
	if got := h.replicas("app", "echo"); len(got[dashboard.ReplicaStateRunning]) != 4 || len(got[dashboard.ReplicaStateStarting]) != 0 && len(h.c.Table().Deployments[0].Replicas) != 4 {
		t.Fatalf("old replicas stopped before new ones ran: %v", got)
	}
	if tbl := h.c.Table(); len(tbl.Deployments[0].Replicas) != 4 {
		t.Fatalf("routing table lost capacity during the roll: %d replicas", len(tbl.Deployments[0].Replicas))
	}
	h.startAll()
	got := h.replicas("app", "echo")
	if len(got[dashboard.ReplicaStateRunning]) != 4 || len(got[dashboard.ReplicaStateStopping]) != 4 {
		t.Fatalf("after new replicas run: %v", got)
	}
	for _, id := range before {
		h.cluster.report(id, gcsv1.ProcessState_PROCESS_STATE_EXITED, "")
	}
	h.pass()
	if st, _ := h.appStatus("app"); st != dashboard.ApplicationStatusRunning {
		t.Fatalf("status after roll = %s", st)
	}
}

// A roll that needs the old replicas' room stops the last old replica only once a new one serves,
// when a new one is already on its way: the deployment never has no replica to route to. (Seen
// on the local cluster, 1 CPU per node: a 1→2 replica roll stalled every request for a second.)
func TestRollThatNeedsRoomKeepsAReplicaServing(t *testing.T) {
	h := newHarness(t, nil, "head", "w1")
	app := `{"applications": [{"name": "app", "import_path": "builtin:echo", "route_prefix": "/e", %s
	  "deployments": [{"name": "echo", "num_replicas": %d, "ray_actor_options": {"num_cpus": 2}}]}]}`
	h.deploy(fmt.Sprintf(app, "", 1))
	h.pass()
	h.startAll()
	old := h.replicas("app", "echo")[dashboard.ReplicaStateRunning]
	if len(old) != 1 {
		t.Fatalf("before the roll: %v", h.replicas("app", "echo"))
	}
	serving := func(step string) {
		t.Helper()
		if n := len(h.c.Table().Deployments[0].Replicas); n == 0 {
			t.Fatalf("%s: no replica in the routing table (%v)", step, h.replicas("app", "echo"))
		}
	}

	h.deploy(fmt.Sprintf(app, `"args": {"message": "v2"},`, 2))
	for i := range 3 {
		h.pass()
		serving(fmt.Sprintf("pass %d after the change", i))
	}
	if got := h.replicas("app", "echo"); len(got[dashboard.ReplicaStateRunning]) != 1 || got[dashboard.ReplicaStateRunning][0] != old[0] ||
		len(got[dashboard.ReplicaStateStopping]) != 0 || len(h.cluster.snapshotProcs()) != 2 {
		t.Fatalf("while the first new replica starts: %v (%d processes), want the old one RUNNING next to one new process",
			got, len(h.cluster.snapshotProcs()))
	}
	// The first new replica runs: now the old one makes room for the second.
	h.startAll()
	serving("first new replica running")
	if got := h.replicas("app", "echo"); len(got[dashboard.ReplicaStateStopping]) != 1 || got[dashboard.ReplicaStateStopping][0] != old[0] {
		t.Fatalf("after the first new replica runs: %v, want the old one STOPPING", got)
	}
	h.cluster.report(old[0], gcsv1.ProcessState_PROCESS_STATE_EXITED, "")
	h.pass()
	serving("old replica gone")
	h.startAll()
	if got := h.replicas("app", "echo"); len(got[dashboard.ReplicaStateRunning]) != 2 || len(got) != 1 {
		t.Fatalf("after the roll: %v, want 2 RUNNING", got)
	}

	// With no new replica on its way (none fits anywhere), an old one must make room, even if
	// that leaves none serving for a moment.
	h2 := newHarness(t, nil, "head")
	h2.deploy(fmt.Sprintf(app, "", 1))
	h2.pass()
	h2.startAll()
	h2.deploy(fmt.Sprintf(app, `"args": {"message": "v2"},`, 1))
	h2.pass()
	if got := h2.replicas("app", "echo"); len(got[dashboard.ReplicaStateStopping]) != 1 {
		t.Fatalf("single-slot roll: %v, want the old replica STOPPING to make room", got)
	}
}

// TestReplicasLeaveADrainingNode: the replicas of a node that is going away
// are replaced elsewhere while they keep serving, and stop once their
// replacements run; with no room elsewhere they serve on.
func TestReplicasLeaveADrainingNode(t *testing.T) {
	h := newHarness(t, nil, "head", "w1")
	h.deploy(fmt.Sprintf(echoApp, ""))
	h.pass()
	h.startAll()
	onW1 := map[string]bool{}
	for id := range h.cluster.snapshotProcs() {
		if h.cluster.onNode[id] == "w1" {
			onW1[id] = true
		}
	}
	if len(onW1) != 2 {
		t.Fatalf("replicas on w1 = %v, want 2", onW1)
	}

	h.cluster.drain("w1")
	h.pass()
	got := h.replicas("app", "echo")
	if len(got[dashboard.ReplicaStateRunning]) != 4 || len(got[dashboard.ReplicaStateStarting]) != 2 || len(got[dashboard.ReplicaStateStopping]) != 0 {
		t.Fatalf("after w1 began draining: %v, want its 2 replicas still RUNNING and 2 replacements STARTING", got)
	}
	for id := range h.cluster.snapshotProcs() {
		if !onW1[id] && h.cluster.onNode[id] != "head" {
			t.Errorf("replacement %s placed on %s, want head", id, h.cluster.onNode[id])
		}
	}
	if n := len(h.c.Table().Deployments[0].Replicas); n != 4 {
		t.Errorf("routing table while replacements start has %d replicas, want the 4 serving", n)
	}
	if st, _ := h.appStatus("app"); st != dashboard.ApplicationStatusRunning {
		t.Errorf("app status while replicas move = %s, want RUNNING", st)
	}

	h.startAll()
	got = h.replicas("app", "echo")
	if len(got[dashboard.ReplicaStateStopping]) != 2 || !onW1[got[dashboard.ReplicaStateStopping][0]] || !onW1[got[dashboard.ReplicaStateStopping][1]] {
		t.Fatalf("once the replacements run: %v, want w1's 2 replicas STOPPING", got)
	}
	for _, r := range h.c.Table().Deployments[0].Replicas {
		if onW1[r.ReplicaId] {
			t.Errorf("a replica of the draining node is still routed to: %s", r.ReplicaId)
		}
	}

	// No room elsewhere: the draining node's replicas serve on, and their
	// replacements wait as demand for a new node.
	app := `{"applications": [{"name": "app", "import_path": "builtin:echo", "route_prefix": "/e",
	  "deployments": [{"name": "echo", "num_replicas": 4, "ray_actor_options": {"num_cpus": 1}}]}]}`
	h2 := newHarness(t, nil, "head", "w1")
	h2.deploy(app)
	h2.pass()
	h2.startAll()
	h2.cluster.drain("w1")
	h2.pass()
	h2.pass()
	if got := h2.replicas("app", "echo"); len(got[dashboard.ReplicaStateRunning]) != 4 || len(got[dashboard.ReplicaStateStopping]) != 0 {
		t.Fatalf("draining with no room elsewhere: %v, want all 4 still RUNNING", got)
	}
}

func TestDeleteAndCheckpointRestore(t *testing.T) {
	store := gcs.NewMemoryStorage()
	h := newHarness(t, store, "head")
	h.deploy(`{"applications": [
	  {"name": "a", "import_path": "builtin:echo", "route_prefix": "/a", "deployments": [{"name": "echo", "ray_actor_options": {"num_cpus": 0.1}}]},
	  {"name": "b", "import_path": "builtin:noop", "route_prefix": "/b", "deployments": [{"name": "noop", "ray_actor_options": {"num_cpus": 0.1}}]}]}`)
	h.pass()
	h.startAll()
	running := h.replicas("a", "echo")[dashboard.ReplicaStateRunning]

	// A new controller on the same store re-adopts the running replicas.
	h2 := newHarnessOn(t, store, h.cluster)
	if err := h2.c.restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h2.replicas("a", "echo")[dashboard.ReplicaStateRecovering]; strings.Join(got, ",") != strings.Join(running, ",") {
		t.Fatalf("restored replicas = %v, want %v recovering", got, running)
	}
	h2.pass()
	h2.pass()
	if got := h2.replicas("a", "echo")[dashboard.ReplicaStateRunning]; strings.Join(got, ",") != strings.Join(running, ",") {
		t.Fatalf("re-adopted replicas = %v, want %v running", got, running)
	}
	if n := len(h.cluster.snapshotProcs()); n != 2 {
		t.Fatalf("%d processes after restore, want the 2 adopted ones", n)
	}

	// Leaving "b" out of the config deletes it.
	h2.deploy(`{"applications": [{"name": "a", "import_path": "builtin:echo", "route_prefix": "/a", "deployments": [{"name": "echo", "ray_actor_options": {"num_cpus": 0.1}}]}]}`)
	h2.pass()
	if st, _ := h2.appStatus("b"); st != dashboard.ApplicationStatusDeleting {
		t.Fatalf("b = %s, want DELETING", st)
	}
	for _, r := range h2.c.Table().Routes {
		if r.App == "b" {
			t.Fatal("a deleting application keeps its route")
		}
	}
	for id, spec := range h.cluster.snapshotProcs() {
		if strings.HasPrefix(spec.ProcessId, "b#") {
			h.cluster.report(id, gcsv1.ProcessState_PROCESS_STATE_EXITED, "")
		}
	}
	h2.pass()
	if st, _ := h2.appStatus("b"); st != dashboard.ApplicationStatusNotStarted {
		t.Fatalf("b = %s after its replicas stopped, want gone", st)
	}
}
