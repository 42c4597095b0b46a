package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
)

// ray.cancel: a task not running yet is dropped (its context ends); a
// running one is interrupted in its worker (KeyboardInterrupt), or its
// worker is killed with force. Either way its returns hold
// TaskCancelledError and it is not retried. recursive also cancels the
// tasks it submitted, which its worker submitted to the agent of the node
// it runs on — the one that interrupts it.

// taskCtl is a submitted task's cancellation state, on its owner.
type taskCtl struct {
	id     string
	name   string
	parent string
	// group is the placement group whose bundle the task uses, if any.
	group  string
	cancel context.CancelFunc
	// node is where the task runs now ("" while it is not running).
	node      string
	cancelled bool
	force     bool
	recursive bool
}

// refPrefix is what a task's id and its return ids share.
func refPrefix(id string) string {
	if len(id) <= 8 {
		return id
	}
	return id[:len(id)-8]
}

func (a *Agent) trackTask(b *taskBody, cancel context.CancelFunc) *taskCtl {
	ctl := &taskCtl{id: b.TaskID, name: b.Name, parent: b.Parent, group: b.GroupID, cancel: cancel}
	a.tmu.Lock()
	a.ctls[refPrefix(b.TaskID)] = ctl
	a.tmu.Unlock()
	return ctl
}

func (a *Agent) untrackTask(ctl *taskCtl) {
	a.tmu.Lock()
	delete(a.ctls, refPrefix(ctl.id))
	a.tmu.Unlock()
}

// startRunning records that ctl runs on nodeID; false when it was
// cancelled meanwhile and must not start.
func (a *Agent) startRunning(ctl *taskCtl, nodeID string) bool {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	if ctl.cancelled {
		return false
	}
	ctl.node = nodeID
	return true
}

func (a *Agent) stopRunning(ctl *taskCtl) (cancelled bool) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	ctl.node = ""
	return ctl.cancelled
}

func cancelledMessage(ctl *taskCtl) string {
	return fmt.Sprintf("Task: TaskID(%s) (%s) was cancelled.", ctl.id, ctl.name)
}

type cancelBody struct {
	ObjectID  string `json:"object_id"`
	Owner     string `json:"owner"`
	TaskID    string `json:"task_id"`
	Force     bool   `json:"force"`
	Recursive bool   `json:"recursive"`
}

// cancel is ray.cancel(ref): on the ref's owner, which knows the task.
func (a *Agent) cancel(_ *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	var b cancelBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	if a.cancelTask(refPrefix(b.ObjectID), b.Force, b.Recursive) {
		return nil, nil
	}
	if b.Owner != "" && b.Owner != a.opts.NodeID {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		owner := b.Owner
		b.Owner = ""
		_, err := a.callPeer(ctx, owner, &corewire.Message{Header: corewire.Header{Op: "cancel", Body: corewire.JSON(b)}})
		return nil, err
	}
	// Finished (or unknown): nothing to cancel, as in Ray.
	return nil, nil
}

// cancelTask cancels the task this node owns under prefix; false when it
// owns none.
func (a *Agent) cancelTask(prefix string, force, recursive bool) bool {
	a.tmu.Lock()
	ctl, ok := a.ctls[prefix]
	if !ok {
		a.tmu.Unlock()
		return false
	}
	ctl.cancelled = true
	ctl.force = ctl.force || force
	ctl.recursive = ctl.recursive || recursive
	node := ctl.node
	a.tmu.Unlock()
	a.opts.Logger.V(1).Info("Cancelling a task", "taskID", ctl.id, "running", node != "", "force", force)
	switch node {
	case "":
		ctl.cancel()
	case a.opts.NodeID:
		a.interrupt(ctl.id, force, recursive)
	default:
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		body := cancelBody{TaskID: ctl.id, Force: force, Recursive: recursive}
		if _, err := a.callPeer(ctx, node, &corewire.Message{Header: corewire.Header{Op: "interrupt_task", Body: corewire.JSON(body)}}); err != nil {
			a.opts.Logger.Info("Interrupting a task on another node failed", "taskID", ctl.id, "nodeID", node, "err", err.Error())
		}
	}
	return true
}

// interrupt stops a task running on this node and, with recursive, the
// tasks it submitted here.
func (a *Agent) interrupt(taskID string, force, recursive bool) {
	for _, w := range a.pool.running(taskID) {
		if force {
			w.kill()
		} else {
			_ = w.conn.Notify("cancel", map[string]string{"task_id": taskID})
		}
	}
	if !recursive {
		return
	}
	a.tmu.Lock()
	var children []string
	for prefix, ctl := range a.ctls {
		if ctl.parent == taskID {
			children = append(children, prefix)
		}
	}
	a.tmu.Unlock()
	for _, c := range children {
		a.cancelTask(c, force, recursive)
	}
}

// interruptForPeer is interrupt asked by the task's owner.
func (a *Agent) interruptForPeer(m *corewire.Message) (*corewire.Message, error) {
	var b cancelBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	a.interrupt(b.TaskID, b.Force, b.Recursive)
	return nil, nil
}

// cancelActorCall is ray.cancel of an actor call: dropped while it waits
// in an agent's queue; otherwise passed along the hops to the actor's
// process, which drops it from its own queue or cancels it while it runs on
// an async actor. A running sync call finishes, as in Ray.
func (a *Agent) cancelActorCall(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		ActorID string `json:"actor_id"`
		TaskID  string `json:"task_id"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	a.mu.Lock()
	ac, ok := a.actors[b.ActorID]
	a.mu.Unlock()
	if !ok {
		// No calls of it went through this node, or it is dead.
		return nil, nil
	}
	if ac.dropQueued(b.TaskID) {
		return nil, nil
	}
	ac.mu.Lock()
	target, live := ac.target, ac.live
	ac.mu.Unlock()
	switch {
	case target != "":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := a.callPeer(ctx, target, &corewire.Message{Header: corewire.Header{Op: "cancel_actor_call", Body: corewire.JSON(b)}})
		return nil, err
	case live != nil:
		// A request, not a notification: the process has recorded the
		// cancel before ray.cancel returns, so a call it already holds can
		// no longer start even if its reader is slow to run.
		// Bounded: a process stuck holding Python's GIL never answers.
		acked := make(chan error, 1)
		req := &corewire.Message{Header: corewire.Header{Op: "cancel", Body: corewire.JSON(map[string]string{"task_prefix": b.TaskID})}}
		err := live.conn.StartFunc(req, func(_ *corewire.Message, err error) { acked <- err })
		if err == nil {
			select {
			case err = <-acked:
			case <-time.After(10 * time.Second):
				return nil, fmt.Errorf("cancelling actor call %s: the actor's process did not take the cancel within 10s (is it blocked in native code holding the GIL?); the call may still run", b.TaskID)
			}
		}
		if err != nil && !errors.Is(err, corewire.ErrClosed) {
			return nil, fmt.Errorf("cancelling actor call %s: %w", b.TaskID, err)
		}
	}
	return nil, nil
}

// dropQueued removes the queued call whose task id starts with prefix,
// failing it with TaskCancelledError.
func (ac *actor) dropQueued(prefix string) bool {
	ac.mu.Lock()
	var found *actorCall
	for i, c := range ac.queue {
		if refPrefix(c.body.TaskID) == prefix {
			found = c
			ac.queue = append(ac.queue[:i], ac.queue[i+1:]...)
			break
		}
	}
	ac.mu.Unlock()
	if found == nil {
		return false
	}
	for _, id := range found.body.Returns {
		ac.a.store.Put(id, found.body.Job, agentError("TaskCancelledError", fmt.Sprintf("Task: TaskID(%s) (%s) was cancelled.", found.body.TaskID, found.body.Method)), true)
	}
	return true
}
