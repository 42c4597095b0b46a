package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
)

// Direct actor calls: a caller on the actor's node may send its calls
// straight to the actor's process over the socket the process serves,
// and get the results back inline, as Ray's core workers call actors
// without the raylet: two process hops per call instead of four. The
// agent is asked only whether and where (actor_direct), learns of results
// that leave the caller (expect, then put), and hears of finished direct
// calls in batches (direct_done) for the state API. See docs/ray-core.md.

// directRoute is actor_direct's answer: Socket when the caller may switch
// to the direct path now; Final when it never may (the actor is elsewhere,
// dead, or restartable, whose calls the agent must retry), so the caller
// stops asking.
type directRoute struct {
	Socket string `json:"socket,omitempty"`
	Final  bool   `json:"final,omitempty"`
}

// actorDirect answers whether a caller may call the actor directly. It
// runs inline on the caller's connection, after every call that caller
// sent before it: with no call of the agent's queued, being sent or
// running, none of the caller's earlier calls can be overtaken.
func (a *Agent) actorDirect(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		ActorID string `json:"actor_id"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	route := directRoute{Final: true}
	a.mu.Lock()
	ac, ok := a.actors[b.ActorID]
	a.mu.Unlock()
	if ok {
		route = ac.directRoute()
	}
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(route)}}, nil
}

func (ac *actor) directRoute() directRoute {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	switch {
	case ac.dead, ac.target != "", ac.info.MaxRestarts != 0, ac.info.MaxTaskRetries != 0:
		return directRoute{Final: true}
	case ac.live == nil:
		// Not constructed yet (or restarting): ask again later.
		return directRoute{}
	case ac.direct == "":
		// The process serves no socket of its own.
		return directRoute{Final: true}
	case len(ac.queue) > 0 || ac.sending || ac.inflight > 0:
		return directRoute{}
	}
	select {
	case <-ac.live.exited:
		return directRoute{}
	default:
	}
	return directRoute{Socket: ac.direct}
}

// expect records that objects a caller holds (the returns of its direct
// calls still running) will be put here, so that other processes' gets of
// them wait rather than fail as unknown. The caller owns them until it puts
// them: when a worker process (a task worker or an actor) announced them,
// they fail with OwnerDiedError if it ends first, as Ray fails the objects
// of an owner that died. A driver's go with its job when it leaves.
func (a *Agent) expect(c *corewire.Conn, m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		ObjectIDs []string `json:"object_ids"`
		Job       string   `json:"job"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	for _, id := range b.ObjectIDs {
		a.store.Expect(id, b.Job)
	}
	if p, _ := c.Value.(*peer); p != nil && p.worker != nil && !p.worker.owe(b.ObjectIDs) {
		// The process ended while this request was being handled.
		a.failOwnerDied(p.worker, b.ObjectIDs)
	}
	return nil, nil
}

// owe records ids as announced by w and not yet put; false when w's
// process has ended already (its objects failed without these).
func (w *worker) owe(ids []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.settled {
		return false
	}
	if w.owed == nil {
		w.owed = make(map[string]struct{}, len(ids))
	}
	for _, id := range ids {
		w.owed[id] = struct{}{}
	}
	return true
}

// paid records that w put id.
func (w *worker) paid(id string) {
	w.mu.Lock()
	delete(w.owed, id)
	w.mu.Unlock()
}

// settle marks w's process ended and returns what it still owed, once.
func (w *worker) settle() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.settled {
		return nil
	}
	w.settled = true
	ids := make([]string, 0, len(w.owed))
	for id := range w.owed {
		ids = append(ids, id)
	}
	w.owed = nil
	return ids
}

// failOwed fails the objects w's process announced and never put; it runs
// when the process exits or its connection ends, whichever comes first.
// A put that races with it loses: the store keeps the first value, so
// every getter sees the same one.
func (a *Agent) failOwed(w *worker) {
	if ids := w.settle(); len(ids) > 0 {
		a.failOwnerDied(w, ids)
	}
}

func (a *Agent) failOwnerDied(w *worker, ids []string) {
	a.pool.mu.Lock()
	pid := w.pid
	a.pool.mu.Unlock()
	failed := 0
	for _, id := range ids {
		msg := fmt.Sprintf("Failed to retrieve object %s. The object's owner has exited: the worker process "+
			"(pid %d) whose direct actor call returns it died before the call's result reached the node's object store.", id, pid)
		if a.store.FailPending(id, agentError("OwnerDiedError", msg)) {
			failed++
		}
	}
	if failed > 0 {
		a.opts.Logger.Info("A worker process exited owing results of its direct actor calls; they fail with OwnerDiedError",
			"workerID", w.id, "pid", pid, "objects", failed)
	}
}

// directCall is one finished direct call as the actor's process reports it.
type directCall struct {
	TaskID  string `json:"task_id"`
	ActorID string `json:"actor_id"`
	Name    string `json:"name"`
	Job     string `json:"job"`
	// ErrorType is Ray's error type of a failed call ("": finished).
	ErrorType string `json:"error_type,omitempty"`
}

// directDone records finished direct calls for the state API, reported by
// the actor's process in batches off the calls' path.
func (a *Agent) directDone(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		Calls []directCall `json:"calls"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	for _, c := range b.Calls {
		state := taskFinished
		if c.ErrorType != "" {
			state = taskFailed
		}
		a.recordActorCall(c.TaskID, c.ActorID, c.Name, c.Job, state, c.ErrorType)
	}
	return nil, nil
}

// removeDirectSocket deletes the socket file of an actor's process that
// exited; only inside the agent's socket directory, where processes create
// them.
func (a *Agent) removeDirectSocket(path string) {
	if filepath.Dir(path) != filepath.Clean(a.opts.SocketDir) {
		return
	}
	_ = os.Remove(path)
}
