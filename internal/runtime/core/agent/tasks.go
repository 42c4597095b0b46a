package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
)

// Error objects start with a format byte: errPickled is a pickled Python
// exception from a worker, errJSON a {"type","message"} the agent made.
const (
	errPickled byte = 'P'
	errJSON    byte = 'J'
)

// agentError encodes an error object the Python side raises as pyType.
func agentError(pyType, msg string) []byte {
	return append([]byte{errJSON}, corewire.JSON(map[string]string{"type": pyType, "message": msg})...)
}

type taskBody struct {
	TaskID          string             `json:"task_id"`
	Job             string             `json:"job"`
	Name            string             `json:"name"`
	FnID            string             `json:"fn_id"`
	Returns         []string           `json:"returns"`
	Deps            []objRef           `json:"deps"`
	Resources       map[string]float64 `json:"resources"`
	MaxRetries      int                `json:"max_retries"`
	RetryExceptions bool               `json:"retry_exceptions"`
	// RetryExceptionTypes (pickled) limits retry_exceptions to those types;
	// the worker decides and flags its reply retryable.
	RetryExceptionTypes string `json:"retry_exception_types,omitempty"`
	// Parent is the task that submitted this one (ray.cancel's recursive).
	Parent string `json:"parent_task_id,omitempty"`
	// EnvVars is the task's runtime_env env_vars.
	EnvVars map[string]string `json:"env_vars,omitempty"`
	// Pip is the task's runtime_env pip (nil: the job's).
	Pip *pipenv.Spec `json:"pip,omitempty"`
	affinity
	// LeaseID is the lease the task runs under, set by the submitting node.
	LeaseID string `json:"lease_id,omitempty"`
}

func (a *Agent) submitTask(m *corewire.Message) (*corewire.Message, error) {
	var b taskBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	for _, id := range b.Returns {
		a.store.Expect(id, b.Job)
	}
	// Submissions get no answer: a task that cannot run stores its error
	// in its return objects, where the caller's ray.get finds it.
	fail := func(msg string) (*corewire.Message, error) {
		for _, id := range b.Returns {
			a.store.Put(id, b.Job, agentError("RaySystemError", msg), true)
		}
		return nil, errors.New(msg)
	}
	j, ok := a.jobOf(b.Job)
	if !ok {
		return fail(fmt.Sprintf("task %s: job %s has no driver connected to this node", b.Name, b.Job))
	}
	if len(m.Parts) != 2 {
		return fail(fmt.Sprintf("task %s: expected the function and its arguments", b.Name))
	}
	// Tracked before the next message of this caller is read, so that a
	// ray.cancel right after the submission finds the task.
	ctx, cancel := context.WithCancel(j.ctx)
	r := &taskRun{a: a, ctx: ctx, ctl: a.trackTask(&b, cancel), j: j, b: &b, parts: m.Parts}
	a.recordTask(j, &b, taskPendingArgs, "", 0, "")
	if !r.startNow() {
		go r.run()
	}
	return nil, nil
}

// taskRun is a submitted task on the node that owns it, from its
// submission to its results.
type taskRun struct {
	a     *Agent
	ctx   context.Context
	ctl   *taskCtl
	j     *job
	b     *taskBody
	parts [][]byte
	// attempt counts the runs lost to crashed workers or retried errors.
	attempt int
}

// run waits for the task's arguments, then runs attempts until one is
// final.
func (r *taskRun) run() {
	if err := r.a.ensureAll(r.ctx, r.j.id, r.b.Deps); err != nil {
		r.stopped()
		r.finish()
		return
	}
	r.attempts()
}

// attempts leases the task's resources, runs it and stores its results,
// retrying a crashed worker up to max_retries.
func (r *taskRun) attempts() {
	defer r.finish()
	a, j, b := r.a, r.j, r.b
	for ; ; r.attempt++ {
		a.recordTask(j, b, taskPendingNode, "", r.attempt, "")
		node, err := a.acquireTaskLease(r.ctx, j, b.Resources, b.affinity, b.TaskID)
		if err != nil {
			if !r.stopped() && j.ctx.Err() == nil {
				r.fail("RaySystemError", fmt.Sprintf("scheduling task %s failed: %v", b.Name, err))
			}
			return
		}
		if !r.begin(node) {
			return
		}
		var reply *corewire.Message
		if node.nodeID == a.opts.NodeID {
			reply, err = a.executeLocal(j.ctx, j, b, r.parts)
		} else {
			reply, err = a.executeRemote(j.ctx, node.nodeID, j, b, r.parts)
		}
		if !r.end(node, reply, err) {
			return
		}
	}
}

// startNow runs the task's first attempt without a goroutine, on the
// submitter's connection reader, when nothing has to wait: its arguments
// are in the store, a lease of its shape on this node is idle and so is a
// worker of its environment. The worker's reply then completes the task
// on that worker connection's reader. false means nothing was started.
func (r *taskRun) startNow() bool {
	a, j, b := r.a, r.j, r.b
	if !a.depsReady(b.Deps) {
		return false
	}
	node := a.tryTaskLease(j, b.Resources, b.affinity)
	if node == nil {
		return false
	}
	w := a.pool.tryAcquire(j, b.EnvVars, b.Pip)
	if w == nil {
		a.releaseTaskLease(j, b.Resources, b.affinity, node)
		return false
	}
	a.recordTask(j, b, taskPendingNode, "", 0, "")
	if !r.begin(node) {
		a.pool.release(w)
		r.finish()
		return true
	}
	w.setRunning(b)
	done := func(reply *corewire.Message, err error) {
		w.setRunning(nil)
		var re *corewire.RemoteError
		if err != nil && !errors.As(err, &re) {
			w.kill()
		} else {
			a.pool.release(w)
		}
		if r.end(node, reply, err) {
			r.attempt++
			go r.attempts()
			return
		}
		r.finish()
	}
	if err := w.conn.StartFunc(taskExecuteMessage(j, b, r.parts), done); err != nil {
		done(nil, err)
	}
	return true
}

// finish forgets the task once it is final.
func (r *taskRun) finish() {
	r.ctl.cancel()
	r.a.untrackTask(r.ctl)
}

// fail stores an error as each of the task's results.
func (r *taskRun) fail(pyType, msg string) {
	r.a.recordTask(r.j, r.b, taskFailed, "", r.attempt, pyType)
	for _, id := range r.b.Returns {
		r.a.store.Put(id, r.j.id, agentError(pyType, msg), true)
	}
}

// stopped reports a task that must not go on: its job ended, or it was
// cancelled (its returns then say so).
func (r *taskRun) stopped() bool {
	if r.ctx.Err() == nil {
		return false
	}
	if r.j.ctx.Err() == nil {
		r.fail("TaskCancelledError", cancelledMessage(r.ctl))
	}
	return true
}

// begin starts an attempt on the leased node; false when the task was
// cancelled meanwhile (its results then say so).
func (r *taskRun) begin(node *leased) bool {
	a, j, b := r.a, r.j, r.b
	if !a.startRunning(r.ctl, node.nodeID) {
		a.releaseTaskLease(j, b.Resources, b.affinity, node)
		r.fail("TaskCancelledError", cancelledMessage(r.ctl))
		return false
	}
	b.LeaseID = node.id
	a.recordTask(j, b, taskRunning, node.nodeID, r.attempt, "")
	return true
}

// end takes an attempt's outcome: it gives the lease back and stores the
// results, or reports that another attempt follows.
func (r *taskRun) end(node *leased, reply *corewire.Message, err error) (again bool) {
	a, j, b, ctl := r.a, r.j, r.b, r.ctl
	cancelled := a.stopRunning(ctl)
	a.releaseTaskLease(j, b.Resources, b.affinity, node)
	if j.ctx.Err() != nil {
		return false
	}
	retriesLeft := b.MaxRetries < 0 || r.attempt < b.MaxRetries
	if cancelled && (err != nil || appError(reply)) {
		r.fail("TaskCancelledError", cancelledMessage(ctl))
		return false
	}
	if cancelled {
		retriesLeft = false
	}
	if isEnvSetupError(err) {
		// Building the env again would fail the same way.
		r.fail(envSetupErrorType, err.Error())
		return false
	}
	if err != nil {
		if retriesLeft {
			a.opts.Logger.Info("Retrying a task whose worker died", "task", b.Name, "attempt", r.attempt+1, "reason", err.Error())
			return true
		}
		r.fail("WorkerCrashedError", fmt.Sprintf("The worker died unexpectedly while executing task %s: %v", b.Name, err))
		return false
	}
	var rb struct {
		Errors    []bool `json:"errors"`
		AppError  bool   `json:"app_error"`
		Retryable bool   `json:"retryable"`
	}
	if err := reply.Decode(&rb); err != nil || len(reply.Parts) != len(b.Returns) || len(rb.Errors) != len(b.Returns) {
		r.fail("RaySystemError", fmt.Sprintf("task %s: the worker's reply does not match its %d return values", b.Name, len(b.Returns)))
		return false
	}
	if rb.AppError && b.RetryExceptions && retriesLeft && (b.RetryExceptionTypes == "" || rb.Retryable) {
		a.opts.Logger.V(1).Info("Retrying a task that raised", "task", b.Name, "attempt", r.attempt+1)
		return true
	}
	state, errType := taskFinished, ""
	if rb.AppError {
		state, errType = taskFailed, "TASK_EXECUTION_EXCEPTION"
	}
	a.recordTask(j, b, state, "", r.attempt, errType)
	for i, id := range b.Returns {
		a.store.Put(id, j.id, reply.Parts[i], rb.Errors[i])
	}
	return false
}

// appError reports a worker reply that carries the task's exception.
func appError(reply *corewire.Message) bool {
	if reply == nil {
		return false
	}
	var rb struct {
		AppError bool `json:"app_error"`
	}
	return reply.Decode(&rb) == nil && rb.AppError
}

// executeLocal runs a task on a pooled worker of this node; an error means
// the worker died or could not start.
func (a *Agent) executeLocal(ctx context.Context, j *job, b *taskBody, parts [][]byte) (*corewire.Message, error) {
	w, err := a.pool.acquire(ctx, j, b.EnvVars, b.Pip)
	if err != nil {
		return nil, err
	}
	w.setRunning(b)
	reply, err := w.conn.Call(taskExecuteMessage(j, b, parts))
	// Not running before the worker goes back to the pool, where the next
	// task marks it as its own.
	w.setRunning(nil)
	if err != nil {
		var re *corewire.RemoteError
		if errors.As(err, &re) {
			a.pool.release(w)
			return nil, err
		}
		w.kill()
		return nil, err
	}
	a.pool.release(w)
	return reply, nil
}

// taskExecuteMessage asks a worker to run task b of j.
func taskExecuteMessage(j *job, b *taskBody, parts [][]byte) *corewire.Message {
	return &corewire.Message{
		Header: corewire.Header{Op: "execute", Body: corewire.JSON(&executeBody{
			Kind: "task", TaskID: b.TaskID, Job: j.id, Name: b.Name, FnID: b.FnID,
			NumReturns: len(b.Returns), Namespace: j.namespace, Resources: b.Resources,
			RetryExceptionTypes: b.RetryExceptionTypes,
		})},
		Parts: parts,
	}
}

// executeRemote runs a task on the node its lease landed on, sending the
// values of its object arguments along; an error means it did not run.
func (a *Agent) executeRemote(ctx context.Context, nodeID string, j *job, b *taskBody, parts [][]byte) (*corewire.Message, error) {
	j.usePeer(nodeID)
	all, errs := a.inline(b.Deps, append([][]byte{}, parts...))
	return a.callPeer(ctx, nodeID, &corewire.Message{
		Header: corewire.Header{Op: "execute_task", Body: corewire.JSON(map[string]any{"task": b, "job": j.info(), "dep_errors": errs})},
		Parts:  all,
	})
}

// executeForPeer runs a task another node leased here.
func (a *Agent) executeForPeer(ctx context.Context, m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		Task      taskBody `json:"task"`
		Job       jobInfo  `json:"job"`
		DepErrors []bool   `json:"dep_errors"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	if len(m.Parts) < 2 {
		return nil, errorf("ValueError", "execute_task: expected the function and its arguments")
	}
	j := a.ensureJob(b.Job)
	if err := a.adopt(j.id, b.Task.Deps, b.DepErrors, m.Parts[2:]); err != nil {
		return nil, err
	}
	return a.executeLocal(ctx, j, &b.Task, m.Parts[:2])
}

// leased is where a lease landed.
type leased struct {
	id        string
	nodeID    string
	nodeIP    string
	agentPort int32
}

// affinity is a NodeAffinitySchedulingStrategy: hard pins work to the
// node, soft only prefers it.
type affinity struct {
	NodeID string `json:"affinity_node_id,omitempty"`
	Soft   bool   `json:"affinity_soft,omitempty"`
	// Spread is scheduling_strategy="SPREAD".
	Spread bool `json:"spread,omitempty"`
	// GroupID and Bundle are a PlacementGroupSchedulingStrategy (Bundle -1: any).
	GroupID string `json:"pg_id,omitempty"`
	Bundle  int32  `json:"pg_bundle_index,omitempty"`
}

// leaseRequest fills in where a lease may land.
func (aff affinity) leaseRequest(req *corev1.LeaseRequest) {
	switch {
	case aff.NodeID != "" && aff.Soft:
		req.PreferredNodeId = aff.NodeID
	case aff.NodeID != "":
		req.NodeId = aff.NodeID
	}
	req.Spread = aff.Spread
	req.PlacementGroupId = aff.GroupID
	req.BundleIndex = aff.Bundle
}

// lease asks the head for resources (on this node first unless aff says
// otherwise); warn hears when the request cannot be placed on any node
// (infeasible), with Ray's message naming id.
func (a *Agent) lease(ctx context.Context, leaseID string, res map[string]float64, aff affinity, id string, warn func(string)) (*leased, error) {
	req := &corev1.LeaseRequest{LeaseId: leaseID, Resources: res, PreferredNodeId: a.opts.NodeID, Description: id}
	aff.leaseRequest(req)
	stream, err := a.sched.Lease(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("asking the head for resources: %w", err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.InvalidArgument {
				// The head refused the request itself: its words are the error.
				return nil, errors.New(grpcMessage(err))
			}
			return nil, fmt.Errorf("waiting for resources: %w", err)
		}
		switch ev.State {
		case corev1.LeaseState_LEASE_STATE_GRANTED:
			return &leased{id: leaseID, nodeID: ev.NodeId, nodeIP: ev.NodeIpAddress, agentPort: ev.AgentPort}, nil
		case corev1.LeaseState_LEASE_STATE_INFEASIBLE:
			a.opts.Logger.Info("Infeasible request queued", "id", id, "resources", res)
			warn(ev.Message)
		}
	}
}

func (a *Agent) returnLease(n *leased) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.sched.ReturnLease(ctx, &corev1.ReturnLeaseRequest{LeaseId: n.id, NodeId: n.nodeID}); err != nil {
		a.opts.Logger.Error(err, "Returning a lease failed", "leaseID", n.id)
	}
}

// releaseWhileBlocked gives back the lease of the task a worker runs while
// the task waits in ray.get or ray.wait for objects that are not ready, as
// Ray releases a blocked task's CPU: otherwise tasks waiting for their
// children could hold every CPU their children need. The returned function
// takes the resources back on this node before the task goes on.
func (a *Agent) releaseWhileBlocked(c *corewire.Conn, ids []string) func() {
	p, _ := c.Value.(*peer)
	if p == nil || p.worker == nil {
		return func() {}
	}
	b := p.worker.current()
	if b == nil || b.Resources["CPU"] <= 0 {
		return func() {}
	}
	allReady := true
	for _, id := range ids {
		allReady = allReady && a.store.Ready(id)
	}
	if allReady {
		return func() {}
	}
	leaseID := b.LeaseID
	here := &leased{id: leaseID, nodeID: a.opts.NodeID}
	a.returnLease(here)
	return func() {
		if p.worker.current() != b {
			// The task ended meanwhile (cancelled): its lease went with it.
			return
		}
		for {
			req := &corev1.LeaseRequest{LeaseId: leaseID, Resources: b.Resources, NodeId: a.opts.NodeID, Description: b.TaskID}
			if b.GroupID != "" {
				// Back into the same group's bundles.
				req.PlacementGroupId, req.BundleIndex = b.GroupID, b.Bundle
			}
			stream, err := a.sched.Lease(context.Background(), req)
			if err == nil {
				for {
					ev, err := stream.Recv()
					if err != nil {
						break
					}
					if ev.State == corev1.LeaseState_LEASE_STATE_GRANTED {
						return
					}
				}
			}
			a.opts.Logger.Info("Taking back a blocked task's resources failed; retrying", "taskID", b.TaskID)
			time.Sleep(time.Second)
		}
	}
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
