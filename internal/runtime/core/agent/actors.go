package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// KV namespaces of the actor directory in the control service.
const (
	actorsKV      = "@rayk8s_core_actors"
	namedActorsKV = "@rayk8s_core_named_actors"
)

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
}

type actorBody struct {
	actorInfo
	Job         string             `json:"job"`
	Deps        []string           `json:"deps"`
	Resources   map[string]float64 `json:"resources"`
	GetIfExists bool               `json:"get_if_exists"`
}

type actorCall struct {
	taskID  string
	method  string
	returns []string
	deps    []string
	args    []byte
}

// actor is one actor this agent owns and runs.
type actor struct {
	a    *Agent
	info actorInfo
	job  string
	// detached actors outlive their job.
	detached bool

	mu     sync.Mutex
	queue  []*actorCall
	wake   chan struct{}
	w      *worker
	lease  *leased
	dead   bool
	reason string
	// ready is closed once the actor is alive or dead.
	ready chan struct{}
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
	if info.Name != "" {
		if info.Namespace == "" {
			info.Namespace = j.namespace
		}
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
	ac := &actor{a: a, info: info, job: j.id, detached: info.Detached, wake: make(chan struct{}, 1), ready: make(chan struct{})}
	a.mu.Lock()
	a.actors[info.ActorID] = ac
	a.mu.Unlock()
	go ac.run(j, &b, m.Parts)
	return &corewire.Message{Header: corewire.Header{Body: corewire.JSON(map[string]any{"actor_id": info.ActorID})}}, nil
}

// run creates the actor's process and then feeds it calls in order.
func (ac *actor) run(j *job, b *actorBody, parts [][]byte) {
	a := ac.a
	// A detached actor must not die with its driver's context.
	ctx := j.ctx
	if ac.detached {
		ctx = context.Background()
	}
	if err := ac.start(ctx, j, b, parts); err != nil {
		ac.die(err.Error())
	}
	close(ac.ready)
	for {
		call := ac.next()
		if call == nil {
			return
		}
		if err := a.store.WaitAll(ctx, call.deps); err != nil {
			return
		}
		ac.mu.Lock()
		w, dead, reason := ac.w, ac.dead, ac.reason
		ac.mu.Unlock()
		if dead {
			ac.failCall(call, reason)
			continue
		}
		wait, err := w.conn.Start(&corewire.Message{
			Header: corewire.Header{Op: "execute", Body: corewire.JSON(map[string]any{
				"kind": "actor_call", "task_id": call.taskID, "job": ac.job, "method": call.method,
				"num_returns": len(call.returns), "namespace": ac.info.Namespace,
			})},
			Parts: [][]byte{call.args},
		})
		if err != nil {
			ac.die("The actor died unexpectedly before finishing this task.")
			ac.failCall(call, ac.deathReason())
			continue
		}
		go func() {
			reply, err := wait()
			if err != nil {
				ac.die("The actor died unexpectedly before finishing this task.")
				ac.failCall(call, ac.deathReason())
				return
			}
			ac.storeReply(call.returns, reply)
		}()
	}
}

func (ac *actor) start(ctx context.Context, j *job, b *actorBody, parts [][]byte) error {
	a := ac.a
	if err := a.store.WaitAll(ctx, b.Deps); err != nil {
		return errors.New("the actor's job exited before its arguments were ready")
	}
	leaseID := "actor:" + ac.info.ActorID
	node, err := a.lease(ctx, j, leaseID, b.Resources, "actor "+ac.info.ClassName, ac.info.ActorID)
	if err != nil {
		return fmt.Errorf("scheduling the actor failed: %w", err)
	}
	ac.mu.Lock()
	ac.lease = node
	dead := ac.dead
	ac.mu.Unlock()
	if dead {
		// Killed while waiting for resources: die already ran without a lease.
		a.returnLease(node, leaseID)
		return errors.New(ac.deathReason())
	}
	w, err := a.pool.start(ctx, j, "actor:"+ac.info.ActorID)
	if err != nil {
		return fmt.Errorf("starting the actor's process failed: %w", err)
	}
	ac.mu.Lock()
	ac.w = w
	dead = ac.dead
	ac.mu.Unlock()
	if dead {
		w.kill()
		return errors.New(ac.deathReason())
	}
	go func() {
		<-w.exited
		ac.die("The actor died unexpectedly: its worker process exited.")
	}()
	reply, err := w.conn.Call(&corewire.Message{
		Header: corewire.Header{Op: "execute", Body: corewire.JSON(map[string]any{
			"kind": "actor_init", "task_id": ac.info.ActorID, "job": j.id, "name": ac.info.ClassName,
			"num_returns": 1, "namespace": ac.info.Namespace, "actor_id": ac.info.ActorID,
			"max_concurrency": ac.info.MaxConcurrency, "is_async": ac.info.IsAsync,
		})},
		Parts: parts,
	})
	if err != nil {
		return errors.New("The actor died unexpectedly before its constructor finished.")
	}
	var rb struct {
		Errors  []bool `json:"errors"`
		Message string `json:"message"`
	}
	if err := reply.Decode(&rb); err != nil {
		return err
	}
	if len(rb.Errors) == 1 && rb.Errors[0] {
		return fmt.Errorf("The actor died because of an error raised in its creation task, %s", rb.Message)
	}
	return nil
}

func (ac *actor) storeReply(returns []string, reply *corewire.Message) {
	var rb struct {
		Errors []bool `json:"errors"`
	}
	if err := reply.Decode(&rb); err != nil || len(reply.Parts) != len(returns) || len(rb.Errors) != len(returns) {
		for _, id := range returns {
			ac.a.store.Put(id, ac.job, agentError("RaySystemError", "the actor's reply does not match the call's return values"), true)
		}
		return
	}
	for i, id := range returns {
		ac.a.store.Put(id, ac.job, reply.Parts[i], rb.Errors[i])
	}
}

func (ac *actor) failCall(c *actorCall, reason string) {
	for _, id := range c.returns {
		ac.a.store.Put(id, ac.job, agentError("RayActorError", reason), true)
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
		if len(ac.queue) > 0 {
			c := ac.queue[0]
			ac.queue = ac.queue[1:]
			ac.mu.Unlock()
			return c
		}
		if ac.dead {
			ac.mu.Unlock()
			return nil
		}
		ac.mu.Unlock()
		<-ac.wake
	}
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
	w, l := ac.w, ac.lease
	queued := ac.queue
	ac.queue = nil
	ac.mu.Unlock()
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
		a.returnLease(l, "actor:"+ac.info.ActorID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ac.info.Name != "" {
		_, _ = a.kv.Delete(ctx, &gcsv1.KVDeleteRequest{Namespace: namedActorsKV, Key: ac.info.Namespace + "/" + ac.info.Name})
	}
	_, _ = a.kv.Delete(ctx, &gcsv1.KVDeleteRequest{Namespace: actorsKV, Key: ac.info.ActorID})
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
	Deps    []string `json:"deps"`
	Job     string   `json:"job"`
}

func (a *Agent) actorCall(m *corewire.Message) (*corewire.Message, error) {
	var b callBody
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	if len(m.Parts) != 1 {
		return nil, errorf("ValueError", "actor_call: expected the call's arguments")
	}
	a.mu.Lock()
	ac, ok := a.actors[b.ActorID]
	a.mu.Unlock()
	c := &actorCall{taskID: b.TaskID, method: b.Method, returns: b.Returns, deps: b.Deps, args: m.Parts[0]}
	if !ok {
		info, found, err := a.actorEntry(context.Background(), b.ActorID)
		if err != nil {
			return nil, err
		}
		reason := "The actor is dead: it was killed or its job exited."
		if found {
			return nil, errorf("NotImplementedError", "calling actor %s from another node than its own (%s) is not implemented yet", b.ActorID, info.NodeID)
		}
		for _, id := range c.returns {
			a.store.Put(id, b.Job, agentError("RayActorError", reason), true)
		}
		return nil, nil
	}
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
	var b struct {
		ActorID string `json:"actor_id"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	a.mu.Lock()
	ac, ok := a.actors[b.ActorID]
	a.mu.Unlock()
	if !ok {
		info, found, err := a.actorEntry(context.Background(), b.ActorID)
		if err != nil {
			return nil, err
		}
		if found {
			return nil, errorf("NotImplementedError", "killing actor %s from another node than its own (%s) is not implemented yet", b.ActorID, info.NodeID)
		}
		return nil, nil
	}
	ac.kill("The actor was killed by ray.kill.")
	return nil, nil
}
