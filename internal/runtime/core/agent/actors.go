package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// KV namespaces of the actor directory in the control service.
const (
	actorsKV      = "@rayk8s_core_actors"
	namedActorsKV = "@rayk8s_core_named_actors"
)

// actorDied is a reason an actor died, worded as Ray words it for users
// (whole sentences, which Go error strings otherwise avoid).
type actorDied string

func (e actorDied) Error() string { return string(e) }

// actorInfo is an actor's directory entry; get_actor answers with it.
type actorInfo struct {
	ActorID        string         `json:"actor_id"`
	ClassName      string         `json:"class_name"`
	Methods        []string       `json:"methods"`
	MethodReturns  map[string]int `json:"method_returns,omitempty"`
	IsAsync        bool           `json:"is_async"`
	Name           string         `json:"name,omitempty"`
	Namespace      string         `json:"namespace,omitempty"`
	NodeID         string         `json:"node_id"`
	Detached       bool           `json:"detached"`
	MaxConcurrency int            `json:"max_concurrency"`
	// MaxRestarts is -1 for unlimited restarts.
	MaxRestarts int `json:"max_restarts"`
	// MaxTaskRetries is how often a call that failed because the process
	// died runs again on the restarted process (-1: unlimited).
	MaxTaskRetries int `json:"max_task_retries"`
	// EnvVars is the actor's runtime_env env_vars.
	EnvVars map[string]string `json:"env_vars,omitempty"`
	// Pip is the actor's runtime_env pip (nil: the job's).
	Pip *pipenv.Spec `json:"pip,omitempty"`
	// Resources is what the actor holds while alive.
	Resources map[string]float64 `json:"resources,omitempty"`
}

type actorBody struct {
	actorInfo
	Job         string   `json:"job"`
	Deps        []objRef `json:"deps"`
	GetIfExists bool     `json:"get_if_exists"`
	affinity
}

type actorCall struct {
	body callBody
	args []byte
	// retries counts the runs lost to the process dying (max_task_retries).
	retries int
}

// actor is this node's entry for one actor. The node that created it (the
// owner, named in the directory) keeps it for its whole life; the node it
// runs on (the executor) has the process; other nodes that call it keep a
// proxy. An entry with a target forwards calls there in order; one without
// runs them on its own process.
type actor struct {
	a    *Agent
	info actorInfo
	// job is the creating job on the owner and the executor; proxies have none.
	job string
	// detached actors outlive their job.
	detached bool
	owner    bool
	target   string
	// group is the placement group whose bundle the actor holds, if any.
	group string

	mu    sync.Mutex
	queue []*actorCall
	// sending is set while a call has left the queue but is not yet sent,
	// so that no later call overtakes it.
	sending bool
	wake    chan struct{}
	w       *worker
	// live is w once its constructor finished: calls go only there.
	live *worker
	// What a restart needs, and how many happened.
	j         *job
	ctx       context.Context
	initParts [][]byte
	restarts  int
	// changed is closed and replaced whenever w or dead changes.
	changed chan struct{}
	lease   *leased
	dead    bool
	reason  string
	// ready is closed once the actor is alive or dead.
	ready chan struct{}
	// direct is the Unix socket the live process serves callers on
	// directly (empty: none); inflight counts calls this agent sent to the
	// process that have not been answered. A caller switches to the direct
	// socket only while nothing of the agent's is queued or in flight, so
	// its calls keep their order.
	direct   string
	inflight int
	// stopPlacing ends the wait for the actor's lease when it dies first
	// (killed, or its handles gone), so its demand goes with it.
	stopPlacing context.CancelFunc
}

func (a *Agent) newActor(info actorInfo, jobID string, owner bool, target string) *actor {
	return &actor{a: a, info: info, job: jobID, detached: info.Detached, owner: owner, target: target,
		wake: make(chan struct{}, 1), ready: make(chan struct{}), changed: make(chan struct{})}
}

func (a *Agent) createActor(m *corewire.Message) (*corewire.Message, error) {
	var b actorBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	j, ok := a.jobOf(b.Job)
	if !ok {
		return nil, errorf("RuntimeError", "job %s has no driver connected to this node", b.Job)
	}
	if len(m.Parts) != 2 {
		return nil, errorf("ValueError", "create_actor: expected the class and its arguments")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info := b.actorInfo
	info.NodeID = a.opts.NodeID
	if info.Namespace == "" {
		info.Namespace = j.namespace
	}
	if info.Name != "" {
		resp, err := a.kv.Put(ctx, &gcsv1.KVPutRequest{Namespace: namedActorsKV, Key: info.Namespace + "/" + info.Name, Value: []byte(info.ActorID)})
		if err != nil {
			return nil, fmt.Errorf("registering actor name %q: %w", info.Name, err)
		}
		if !resp.Added {
			if b.GetIfExists {
				existing, err := a.lookupNamed(ctx, info.Name, info.Namespace)
				if err != nil {
					return nil, err
				}
				return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(map[string]any{"existing": existing})}}, nil
			}
			return nil, errorf("ValueError", "The name %s (namespace=%s) is already taken. Please use a different name or get the existing actor using ray.get_actor('%s', namespace='%s')", info.Name, info.Namespace, info.Name, info.Namespace)
		}
	}
	if _, err := a.kv.Put(ctx, &gcsv1.KVPutRequest{Namespace: actorsKV, Key: info.ActorID, Value: corewire.JSON(info), Overwrite: true}); err != nil {
		return nil, fmt.Errorf("registering actor %s: %w", info.ActorID, err)
	}
	b.actorInfo = info
	ac := a.newActor(info, j.id, true, "")
	ac.group = b.GroupID
	a.mu.Lock()
	a.actors[info.ActorID] = ac
	a.mu.Unlock()
	go ac.runOwner(j, &b, m.Parts)
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(map[string]any{"actor_id": info.ActorID})}}, nil
}

// ctxFor is the context the actor's work runs in: a detached actor must
// not die with its driver.
func (ac *actor) ctxFor(j *job) context.Context {
	if ac.detached {
		return context.Background()
	}
	return j.ctx
}

// runOwner places the actor, starts it here or on the leased node, then
// feeds it calls in order.
func (ac *actor) runOwner(j *job, b *actorBody, parts [][]byte) {
	ctx := ac.ctxFor(j)
	placeCtx, stop := context.WithCancel(ctx)
	defer stop()
	ac.mu.Lock()
	ac.stopPlacing = stop
	dead := ac.dead
	ac.mu.Unlock()
	var err error
	if dead {
		err = errors.New(ac.deathReason())
	} else {
		err = ac.place(placeCtx, j, b, parts)
	}
	if err != nil {
		ac.die(err.Error())
	}
	close(ac.ready)
	ac.dispatch(ctx)
}

func (ac *actor) place(ctx context.Context, j *job, b *actorBody, parts [][]byte) error {
	a := ac.a
	if err := a.ensureAll(ctx, j.id, b.Deps); err != nil {
		return errors.New("the actor's job exited before its arguments were ready")
	}
	leaseID := "actor:" + ac.info.ActorID
	node, err := a.lease(ctx, leaseID, b.Resources, b.affinity, ac.info.ActorID, func(msg string) { j.notify("warning", map[string]string{"message": msg}) })
	if err != nil {
		return fmt.Errorf("scheduling the actor failed: %w", err)
	}
	if node.nodeID == a.opts.NodeID {
		return ac.startProcess(ctx, j, node, parts)
	}
	ac.mu.Lock()
	ac.target = node.nodeID
	dead := ac.dead
	ac.mu.Unlock()
	if dead {
		a.returnLease(node)
		return errors.New(ac.deathReason())
	}
	j.usePeer(node.nodeID)
	all, errs := a.inline(b.Deps, append([][]byte{}, parts...))
	_, err = a.callPeer(ctx, node.nodeID, &corewire.Message{
		Header: corewire.Header{Op: "start_actor", Body: corewire.JSON(map[string]any{"actor": b, "job": j.info(), "dep_errors": errs})},
		Parts:  all,
	})
	if err != nil {
		var re *corewire.RemoteError
		if !errors.As(err, &re) {
			// The request never reached the node: the lease is still ours.
			a.returnLease(node)
		}
		return err
	}
	return nil
}

// startActorForPeer runs on the node an owner leased for the actor.
func (a *Agent) startActorForPeer(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		Actor     actorBody `json:"actor"`
		Job       jobInfo   `json:"job"`
		DepErrors []bool    `json:"dep_errors"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	if len(m.Parts) < 2 {
		return nil, errorf("ValueError", "start_actor: expected the class and its arguments")
	}
	j := a.ensureJob(b.Job)
	if err := a.adopt(j.id, b.Actor.Deps, b.DepErrors, m.Parts[2:]); err != nil {
		return nil, err
	}
	ac := a.newActor(b.Actor.actorInfo, j.id, false, "")
	a.mu.Lock()
	a.actors[ac.info.ActorID] = ac
	a.mu.Unlock()
	ctx := ac.ctxFor(j)
	err := ac.startProcess(ctx, j, &leased{id: "actor:" + ac.info.ActorID, nodeID: a.opts.NodeID}, m.Parts[:2])
	if err != nil {
		ac.die(err.Error())
	}
	close(ac.ready)
	go ac.dispatch(ctx)
	if err != nil {
		return nil, errorf("RayActorError", "%s", err.Error())
	}
	return nil, nil
}

// startProcess starts the actor's own worker process and runs its
// constructor; the lease is the actor's from then on.
func (ac *actor) startProcess(ctx context.Context, j *job, node *leased, parts [][]byte) error {
	a := ac.a
	ac.mu.Lock()
	ac.lease = node
	dead := ac.dead
	ac.mu.Unlock()
	if dead {
		// Killed while waiting for resources: die already ran without a lease.
		a.returnLease(node)
		return errors.New(ac.deathReason())
	}
	ac.mu.Lock()
	ac.j, ac.ctx, ac.initParts = j, ctx, parts
	ac.mu.Unlock()
	_, err := ac.spawn(ctx, j, parts)
	return err
}

// spawn starts a process for the actor and runs its constructor. crashed
// means the process died while constructing: its watcher decides between
// restart and death.
func (ac *actor) spawn(ctx context.Context, j *job, parts [][]byte) (crashed bool, err error) {
	a := ac.a
	// An actor's process is its own: its libraries get the CPUs it holds.
	threads := int(math.Ceil(ac.info.Resources["CPU"]))
	w, err := a.pool.start(ctx, j, "actor:"+ac.info.ActorID, ac.info.EnvVars, j.pipOf(ac.info.Pip), threads)
	if err != nil {
		return false, fmt.Errorf("starting the actor's process failed: %w", err)
	}
	ac.mu.Lock()
	ac.w = w
	ac.changedLocked()
	dead := ac.dead
	ac.mu.Unlock()
	if dead {
		w.kill()
		return false, errors.New(ac.deathReason())
	}
	go ac.watch(w)
	reply, err := w.conn.Call(&corewire.Message{
		Header: corewire.Header{Op: "execute", Body: corewire.JSON(map[string]any{
			"kind": "actor_init", "task_id": ac.info.ActorID, "job": j.id, "name": ac.info.ClassName,
			"num_returns": 1, "namespace": ac.info.Namespace, "actor_id": ac.info.ActorID,
			"max_concurrency": ac.info.MaxConcurrency, "is_async": ac.info.IsAsync, "resources": ac.info.Resources,
		})},
		Parts: parts,
	})
	if err != nil {
		return true, actorDied("The actor died unexpectedly before its constructor finished.")
	}
	var rb struct {
		Errors       []bool `json:"errors"`
		Message      string `json:"message"`
		DirectSocket string `json:"direct_socket"`
	}
	if err := reply.Decode(&rb); err != nil {
		return false, err
	}
	if len(rb.Errors) == 1 && rb.Errors[0] {
		return false, actorDied("The actor died because of an error raised in its creation task, " + rb.Message)
	}
	ac.mu.Lock()
	if ac.w == w {
		ac.live = w
		ac.direct = rb.DirectSocket
		ac.changedLocked()
	}
	ac.mu.Unlock()
	return false, nil
}

// watch restarts the actor when its process w exits, while max_restarts
// allows (calls that were running fail; queued ones wait for the new
// process), and lets it die otherwise.
func (ac *actor) watch(w *worker) {
	<-w.exited
	w.kill()
	ac.mu.Lock()
	if ac.w == w && ac.direct != "" {
		ac.a.removeDirectSocket(ac.direct)
		ac.direct = ""
	}
	if ac.dead || ac.w != w {
		ac.mu.Unlock()
		return
	}
	if limit := ac.info.MaxRestarts; limit != -1 && ac.restarts >= limit {
		ac.mu.Unlock()
		ac.die("The actor died unexpectedly: its worker process exited.")
		return
	}
	ac.restarts++
	ac.w, ac.live, ac.direct = nil, nil, ""
	ac.changedLocked()
	ctx, j, parts, n := ac.ctx, ac.j, ac.initParts, ac.restarts
	ac.mu.Unlock()
	ac.a.opts.Logger.Info("Restarting an actor whose process exited", "actorID", ac.info.ActorID, "restart", n)
	go func() {
		if crashed, err := ac.spawn(ctx, j, parts); err != nil && !crashed {
			ac.die(err.Error())
		}
	}()
}

func (ac *actor) changedLocked() {
	close(ac.changed)
	ac.changed = make(chan struct{})
}

// process returns the actor's live process, waiting out a restart; dead
// reports that there will be none.
func (ac *actor) process() (w *worker, dead bool, reason string) {
	for {
		ac.mu.Lock()
		w, dead, reason, changed := ac.live, ac.dead, ac.reason, ac.changed
		ac.mu.Unlock()
		if dead {
			return nil, true, reason
		}
		if w != nil {
			select {
			case <-w.exited:
				// Exited: its watcher is about to restart or bury the actor.
			default:
				return w, false, ""
			}
		}
		<-changed
	}
}

// dispatch feeds queued calls to the process or the target node, in order.
func (ac *actor) dispatch(ctx context.Context) {
	a := ac.a
	for {
		call := ac.next()
		if call == nil {
			return
		}
		if err := a.ensureAll(ctx, call.body.Job, call.body.Deps); err != nil {
			ac.doneSending()
			return
		}
		ac.mu.Lock()
		target := ac.target
		ac.mu.Unlock()
		if target != "" {
			ac.forward(ctx, target, call)
		} else {
			ac.send(call)
		}
		ac.doneSending()
	}
}

func (ac *actor) doneSending() {
	ac.mu.Lock()
	ac.sending = false
	ac.mu.Unlock()
}

// submit queues a call, or sends it to the actor's process at once, on the
// caller's goroutine (a connection's reader), when nothing is ahead of it
// and sending cannot block: no call queued or being sent, a live process
// here, arguments already in the store. That saves waking the dispatcher
// per call.
func (ac *actor) submit(c *actorCall) {
	if !ac.a.depsReady(c.body.Deps) {
		ac.enqueue(c)
		return
	}
	ac.mu.Lock()
	w := ac.live
	if ac.dead || ac.target != "" || len(ac.queue) > 0 || ac.sending || w == nil {
		ac.mu.Unlock()
		ac.enqueue(c)
		return
	}
	select {
	case <-w.exited:
		ac.mu.Unlock()
		ac.enqueue(c)
		return
	default:
	}
	ac.sending = true
	ac.inflight++
	ac.mu.Unlock()
	err := w.conn.StartFunc(ac.executeMessage(c), ac.onReply(c))
	ac.mu.Lock()
	ac.sending = false
	if err != nil {
		ac.inflight--
	}
	if err != nil && !ac.dead {
		// Not sent: the process is gone; the dispatcher waits out a restart.
		ac.queue = append([]*actorCall{c}, ac.queue...)
	}
	dead, reason, wake := ac.dead, ac.reason, len(ac.queue) > 0
	ac.mu.Unlock()
	if err != nil && dead {
		ac.failCall(c, reason)
	}
	if wake {
		select {
		case ac.wake <- struct{}{}:
		default:
		}
	}
}

// depsReady reports whether every object of refs is in this node's store.
func (a *Agent) depsReady(refs []objRef) bool {
	for _, r := range refs {
		if !a.store.Ready(r.ID) {
			return false
		}
	}
	return true
}

// send hands a call to the actor's process, waiting out restarts, and
// stores its results when the reply comes; when the actor is dead the call
// fails.
func (ac *actor) send(call *actorCall) {
	done := ac.onReply(call)
	ac.a.recordActorCall(call.body.TaskID, ac.info.ActorID, ac.callName(call), call.body.Job, taskRunning, "")
	for {
		w, dead, reason := ac.process()
		if dead {
			ac.failCall(call, reason)
			return
		}
		ac.mu.Lock()
		ac.inflight++
		ac.mu.Unlock()
		err := w.conn.StartFunc(ac.executeMessage(call), done)
		if err == nil {
			return
		}
		ac.mu.Lock()
		ac.inflight--
		ac.mu.Unlock()
		// Not sent: the process is gone. Calls it already had fail; this
		// one goes to the next process, if there is one.
		<-w.exited
	}
}

// onReply stores the results of call when the process answers: on the
// connection's reading goroutine, so no goroutine per call waits for it.
func (ac *actor) onReply(call *actorCall) func(*corewire.Message, error) {
	return func(reply *corewire.Message, err error) {
		ac.mu.Lock()
		ac.inflight--
		ac.mu.Unlock()
		if err != nil {
			if !ac.retry(call) {
				ac.failCall(call, "The actor died unexpectedly before finishing this task.")
			}
			return
		}
		ac.storeReply(call, reply)
	}
}

// executeBody is the body of an execute request to a worker process.
type executeBody struct {
	Kind       string `json:"kind"`
	TaskID     string `json:"task_id"`
	Job        string `json:"job"`
	Method     string `json:"method,omitempty"`
	NumReturns int    `json:"num_returns"`
	Namespace  string `json:"namespace"`
	// Reason is why a __ray_terminate__ call was sent (callBody.Reason).
	Reason string `json:"reason,omitempty"`
	// Tasks only.
	Name                string             `json:"name,omitempty"`
	FnID                string             `json:"fn_id,omitempty"`
	Resources           map[string]float64 `json:"resources,omitempty"`
	RetryExceptionTypes string             `json:"retry_exception_types,omitempty"`
}

func (ac *actor) executeMessage(call *actorCall) *corewire.Message {
	return &corewire.Message{
		Header: corewire.Header{Op: "execute", Body: corewire.JSON(&executeBody{
			Kind: "actor_call", TaskID: call.body.TaskID, Job: call.body.Job, Method: call.body.Method,
			NumReturns: len(call.body.Returns), Namespace: ac.info.Namespace, Reason: call.body.Reason,
		})},
		Parts: [][]byte{call.args},
	}
}

// forward hands a call to the node that runs (or owns) the actor and
// fetches its results from there. The hand-over is synchronous, which
// keeps one caller's calls in order.
func (ac *actor) forward(ctx context.Context, target string, call *actorCall) {
	a := ac.a
	body := call.body
	body.Remote = true
	parts, errs := a.inline(body.Deps, [][]byte{call.args})
	body.DepErrors = errs
	_, err := a.callPeer(ctx, target, &corewire.Message{Header: corewire.Header{Op: "actor_call", Body: corewire.JSON(body)}, Parts: parts})
	if err != nil {
		ac.failCall(call, fmt.Sprintf("The actor is unreachable: %v", err))
		return
	}
	for _, id := range body.Returns {
		go func() { _ = a.ensure(ctx, body.Job, objRef{ID: id, Owner: target}) }()
	}
}

func (ac *actor) storeReply(call *actorCall, reply *corewire.Message) {
	returns, jobID := call.body.Returns, call.body.Job
	var rb struct {
		Errors    []bool `json:"errors"`
		Cancelled bool   `json:"cancelled"`
	}
	if err := reply.Decode(&rb); err != nil || len(reply.Parts) != len(returns) || len(rb.Errors) != len(returns) {
		for _, id := range returns {
			ac.a.store.Put(id, jobID, agentError("RaySystemError", "the actor's reply does not match the call's return values"), true)
		}
		ac.a.recordActorCall(call.body.TaskID, ac.info.ActorID, ac.callName(call), jobID, taskFailed, "WORKER_DIED")
		return
	}
	state, errType := taskFinished, ""
	for i, id := range returns {
		ac.a.store.Put(id, jobID, reply.Parts[i], rb.Errors[i])
		if rb.Errors[i] {
			state, errType = taskFailed, "TASK_EXECUTION_EXCEPTION"
		}
	}
	if rb.Cancelled {
		errType = "TASK_CANCELLED"
	}
	ac.a.recordActorCall(call.body.TaskID, ac.info.ActorID, ac.callName(call), jobID, state, errType)
}

// callName is an actor call's name in the state API, as Ray gives it:
// "Class.method".
func (ac *actor) callName(call *actorCall) string {
	return ac.info.ClassName + "." + call.body.Method
}

func (ac *actor) failCall(c *actorCall, reason string) {
	for _, id := range c.body.Returns {
		ac.a.store.Put(id, c.body.Job, agentError("RayActorError", reason), true)
	}
	if ac.target == "" {
		ac.a.recordActorCall(c.body.TaskID, ac.info.ActorID, ac.callName(c), c.body.Job, taskFailed, "ACTOR_DIED")
	}
}

func (ac *actor) deathReason() string {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return ac.reason
}

// next returns the next queued call, waiting for one; nil once the actor
// is dead and its queue drained.
func (ac *actor) next() *actorCall {
	for {
		ac.mu.Lock()
		if len(ac.queue) > 0 && !ac.sending {
			c := ac.queue[0]
			ac.queue = ac.queue[1:]
			ac.sending = true
			ac.mu.Unlock()
			return c
		}
		if ac.dead && len(ac.queue) == 0 {
			ac.mu.Unlock()
			return nil
		}
		ac.mu.Unlock()
		<-ac.wake
	}
}

// retry queues a call whose process died again, first in line, while
// max_task_retries allows; the restarted process (if any) runs it.
func (ac *actor) retry(c *actorCall) bool {
	limit := ac.info.MaxTaskRetries
	if limit == 0 || limit > 0 && c.retries >= limit {
		return false
	}
	c.retries++
	ac.mu.Lock()
	dead, reason := ac.dead, ac.reason
	if !dead {
		ac.queue = append([]*actorCall{c}, ac.queue...)
	}
	ac.mu.Unlock()
	if dead {
		ac.failCall(c, reason)
		return true
	}
	ac.a.opts.Logger.V(1).Info("Retrying an actor call after its process died", "actorID", ac.info.ActorID, "method", c.body.Method, "retry", c.retries)
	select {
	case ac.wake <- struct{}{}:
	default:
	}
	return true
}

func (ac *actor) enqueue(c *actorCall) {
	ac.mu.Lock()
	dead, reason := ac.dead, ac.reason
	if !dead {
		ac.queue = append(ac.queue, c)
	}
	ac.mu.Unlock()
	if dead {
		ac.failCall(c, reason)
		return
	}
	select {
	case ac.wake <- struct{}{}:
	default:
	}
}

// die marks the actor dead (once), stops its process, returns its lease
// and removes it from the directory.
func (ac *actor) die(reason string) {
	ac.mu.Lock()
	if ac.dead {
		ac.mu.Unlock()
		return
	}
	ac.dead, ac.reason = true, reason
	ac.changedLocked()
	w, l, target, stopPlacing := ac.w, ac.lease, ac.target, ac.stopPlacing
	queued := ac.queue
	ac.queue = nil
	ac.mu.Unlock()
	if stopPlacing != nil {
		stopPlacing()
	}
	select {
	case ac.wake <- struct{}{}:
	default:
	}
	for _, c := range queued {
		ac.failCall(c, reason)
	}
	if w != nil {
		w.kill()
	}
	a := ac.a
	if l != nil {
		a.returnLease(l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if target != "" {
		if _, err := a.callPeer(ctx, target, &corewire.Message{Header: corewire.Header{Op: "kill_actor", Body: corewire.JSON(map[string]any{"actor_id": ac.info.ActorID, "remote": true})}}); err != nil {
			a.opts.Logger.Info("Stopping an actor on another node failed", "actorID", ac.info.ActorID, "nodeID", target, "err", err.Error())
		}
	}
	if !ac.owner && target == "" && ac.info.NodeID != "" && ac.info.NodeID != a.opts.NodeID {
		// This node ran the actor for the node that owns it: the owner
		// records the death (state API, directory) and answers later
		// callers with its reason. Its own kill comes back here and finds
		// nothing left to do.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := a.callPeer(ctx, ac.info.NodeID, &corewire.Message{Header: corewire.Header{Op: "kill_actor", Body: corewire.JSON(map[string]any{"actor_id": ac.info.ActorID, "remote": true, "no_restart": true, "reason": reason})}}); err != nil {
				a.opts.Logger.Info("Telling the owner of an actor that ended here failed", "actorID", ac.info.ActorID, "nodeID", ac.info.NodeID, "err", err.Error())
			}
		}()
	}
	if ac.owner {
		a.recordDeadActor(ac.stateRow())
		if ac.info.Name != "" {
			_, _ = a.kv.Delete(ctx, &gcsv1.KVDeleteRequest{Namespace: namedActorsKV, Key: ac.info.Namespace + "/" + ac.info.Name})
		}
		_, _ = a.kv.Delete(ctx, &gcsv1.KVDeleteRequest{Namespace: actorsKV, Key: ac.info.ActorID})
	}
	a.mu.Lock()
	delete(a.actors, ac.info.ActorID)
	a.mu.Unlock()
}

func (ac *actor) kill(reason string) { ac.die(reason) }

type callBody struct {
	ActorID string   `json:"actor_id"`
	TaskID  string   `json:"task_id"`
	Method  string   `json:"method"`
	Returns []string `json:"returns"`
	Deps    []objRef `json:"deps"`
	Job     string   `json:"job"`
	// Remote marks a call forwarded by another node; DepErrors flags its
	// inlined argument values.
	Remote    bool   `json:"remote,omitempty"`
	DepErrors []bool `json:"dep_errors,omitempty"`
	// Reason is why a __ray_terminate__ was sent (its handles went out of
	// scope); empty when the user called it. The actor's process, or the
	// agent for an actor that never started, ends the actor with it.
	Reason string `json:"reason,omitempty"`
}

// terminateMethod is Ray's built-in method that ends an actor after the
// calls sent before it.
const terminateMethod = "__ray_terminate__"

// unstarted reports whether the actor has no process here or elsewhere yet
// and no call queued or on its way: it is still waiting to be placed.
func (ac *actor) unstarted() bool {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return !ac.dead && ac.w == nil && ac.target == "" && len(ac.queue) == 0 && !ac.sending && ac.inflight == 0
}

func (a *Agent) actorCall(m *corewire.Message) (*corewire.Message, error) {
	var b callBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	for _, id := range b.Returns {
		a.store.Expect(id, b.Job)
	}
	if len(m.Parts) < 1 {
		for _, id := range b.Returns {
			a.store.Put(id, b.Job, agentError("RaySystemError", "actor_call: the call's arguments are missing"), true)
		}
		return nil, errorf("ValueError", "actor_call: expected the call's arguments")
	}
	if b.Remote {
		if err := a.adopt(b.Job, b.Deps, b.DepErrors, m.Parts[1:]); err != nil {
			return nil, err
		}
	}
	c := &actorCall{body: b, args: m.Parts[0]}
	a.mu.Lock()
	ac, ok := a.actors[b.ActorID]
	a.mu.Unlock()
	if ok {
		if b.Method == terminateMethod && ac.unstarted() {
			// Nothing ran on it or waits for it: it ends now rather than
			// after a placement nobody needs (its demand goes with it).
			reason := b.Reason
			if reason == "" {
				reason = "The actor was terminated by __ray_terminate__."
			}
			ac.die(reason)
			ac.failCall(c, reason)
			return nil, nil
		}
		ac.submit(c)
		return nil, nil
	}
	dead := func() (*corewire.Message, error) {
		for _, id := range b.Returns {
			a.store.Put(id, b.Job, agentError("RayActorError", "The actor is dead: it was killed, it failed, or its job exited."), true)
		}
		return nil, nil
	}
	if b.Remote {
		return dead()
	}
	info, found, err := a.actorEntry(context.Background(), b.ActorID)
	if err != nil {
		return nil, err
	}
	if !found || info.NodeID == a.opts.NodeID {
		return dead()
	}
	// A handle from another node: calls go through a proxy to the owner.
	a.mu.Lock()
	ac, ok = a.actors[b.ActorID]
	if !ok {
		ac = a.newActor(*info, "", false, info.NodeID)
		a.actors[b.ActorID] = ac
		close(ac.ready)
		go ac.dispatch(context.Background())
	}
	a.mu.Unlock()
	ac.enqueue(c)
	return nil, nil
}

func (a *Agent) actorEntry(ctx context.Context, id string) (*actorInfo, bool, error) {
	resp, err := a.kv.Get(ctx, &gcsv1.KVGetRequest{Namespace: actorsKV, Key: id})
	if err != nil {
		return nil, false, fmt.Errorf("looking up actor %s: %w", id, err)
	}
	if !resp.Found {
		return nil, false, nil
	}
	var info actorInfo
	if err := json.Unmarshal(resp.Value, &info); err != nil {
		return nil, false, fmt.Errorf("decoding actor %s: %w", id, err)
	}
	return &info, true, nil
}

func (a *Agent) lookupNamed(ctx context.Context, name, namespace string) (*actorInfo, error) {
	notFound := errorf("ValueError", "Failed to look up actor with name '%s'. This could because 1. You are trying to look up a named actor you didn't create. 2. The named actor died. 3. You did not use a namespace matching the namespace of the actor.", name)
	resp, err := a.kv.Get(ctx, &gcsv1.KVGetRequest{Namespace: namedActorsKV, Key: namespace + "/" + name})
	if err != nil {
		return nil, fmt.Errorf("looking up actor %q: %w", name, err)
	}
	if !resp.Found {
		return nil, notFound
	}
	info, found, err := a.actorEntry(ctx, string(resp.Value))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound
	}
	return info, nil
}

func (a *Agent) getActor(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	info, err := a.lookupNamed(context.Background(), b.Name, b.Namespace)
	if err != nil {
		return nil, err
	}
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(info)}}, nil
}

func (a *Agent) killActor(m *corewire.Message) (*corewire.Message, error) {
	b := struct {
		ActorID   string `json:"actor_id"`
		Remote    bool   `json:"remote"`
		NoRestart bool   `json:"no_restart"`
		// Reason is why the actor ended, for the calls after it; the
		// actor's own process sends one when __ray_terminate__ ran.
		Reason string `json:"reason"`
	}{NoRestart: true}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	a.mu.Lock()
	ac, ok := a.actors[b.ActorID]
	a.mu.Unlock()
	if ok {
		ac.mu.Lock()
		w, target := ac.w, ac.target
		ac.mu.Unlock()
		if !b.NoRestart && target == "" && w != nil {
			// Its watcher restarts it if max_restarts allows.
			w.kill()
			return nil, nil
		}
		if !b.NoRestart && target != "" {
			_, err := a.callPeer(context.Background(), target, &corewire.Message{Header: corewire.Header{Op: "kill_actor", Body: corewire.JSON(map[string]any{"actor_id": b.ActorID, "remote": true, "no_restart": false})}})
			return nil, err
		}
		reason := "The actor was killed by ray.kill."
		if b.Reason != "" {
			reason = b.Reason
		}
		ac.kill(reason)
		return nil, nil
	}
	if b.Remote {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, found, err := a.actorEntry(ctx, b.ActorID)
	if err != nil || !found || info.NodeID == a.opts.NodeID {
		return nil, err
	}
	_, err = a.callPeer(ctx, info.NodeID, &corewire.Message{Header: corewire.Header{Op: "kill_actor", Body: corewire.JSON(map[string]any{"actor_id": b.ActorID, "remote": true, "no_restart": b.NoRestart})}})
	return nil, err
}
