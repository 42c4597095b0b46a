// Package handle is the caller side of Serve calls, shared by a node's HTTP
// proxy and the DeploymentHandle calls its replicas make (docs/serve.md): one router
// per deployment fed by the controller's routing table, and the loop that
// sends a call to the routed replica, re-routes it when the replica rejects
// it or cannot be reached before accepting, and streams the answer back.
package handle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/router"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// InlineBodyLimit is the largest request body sent along with OPEN; larger
// (or unknown-length) bodies are streamed once the replica has accepted, so
// a rejected call can be routed again without having consumed its body.
const InlineBodyLimit = 256 << 10

// Target is where a replica can be reached.
type Target struct {
	ReplicaID    string
	NodeID       string
	AgentAddress string
	// App and Deployment the replica belongs to.
	App, Deployment string
}

// Dialer opens a stream to a replica.
type Dialer interface {
	Open(ctx context.Context, t Target) (wire.Stream, error)
}

// ErrNotFound is returned for calls to an application or deployment the
// routing table does not have.
var ErrNotFound = errors.New("deployment not found")

// ReplicaDiedError is a call lost because its replica went away after
// accepting it.
type ReplicaDiedError struct {
	ReplicaID string
	Err       error
}

func (e *ReplicaDiedError) Error() string {
	return fmt.Sprintf("replica %s died while handling the request: %v", e.ReplicaID, e.Err)
}

func (e *ReplicaDiedError) Unwrap() error { return e.Err }

// Options configures Handles.
type Options struct {
	LocalNodeID string
	Dialer      Dialer
	Clock       clock.WithDelayedExecution
	// Metrics counts the calls routed (nil: none).
	Metrics *metrics.Metrics
	Logger  logr.Logger
}

type depKey struct{ app, name string }

// Handles routes calls to every deployment of the routing table.
type Handles struct {
	opts Options

	// mu serializes Update; calls read the table without a lock (every
	// call looks up its router and target, and a shared read lock's
	// counter is a cache line both cores write).
	mu  sync.Mutex
	tab atomic.Pointer[table]

	// openBufs holds OPEN payload buffers and frame lists (*openBuf):
	// Stream.Send is done with them when it returns, so a call's are
	// reused once Invoke no longer sends them. bodyBufs holds ChunkSize read buffers
	// for streamed request bodies.
	openBufs sync.Pool
	bodyBufs sync.Pool
}

// New returns Handles with an empty table.
func New(opts Options) *Handles {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	h := &Handles{opts: opts}
	h.tab.Store(&table{routers: map[depKey]*router.Router{}, ingress: map[string]string{}, targets: map[string]Target{}})
	return h
}

// table is what Update installs; it is never changed after.
type table struct {
	routers map[depKey]*router.Router
	ingress map[string]string
	targets map[string]Target
}

// Update applies a routing table. Routers of deployments that disappear
// fail their queued calls as unavailable.
func (h *Handles) Update(t *servev1.RouteTable) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.tab.Load()
	next := &table{routers: make(map[depKey]*router.Router, len(old.routers)), ingress: map[string]string{}}
	seen := map[depKey]bool{}
	targets := map[string]Target{}
	for _, d := range t.GetDeployments() {
		k := depKey{d.App, d.Name}
		seen[k] = true
		if d.Ingress {
			next.ingress[d.App] = d.Name
		}
		r, ok := old.routers[k]
		if !ok {
			r = router.New(router.Options{LocalNodeID: h.opts.LocalNodeID, Clock: h.opts.Clock})
		}
		next.routers[k] = r
		reps := make([]router.Replica, 0, len(d.Replicas))
		for _, rp := range d.Replicas {
			reps = append(reps, router.Replica{ID: rp.ReplicaId, NodeID: rp.NodeId, Models: rp.MultiplexedModelIds})
			targets[rp.ReplicaId] = Target{ReplicaID: rp.ReplicaId, NodeID: rp.NodeId, AgentAddress: rp.AgentAddress, App: d.App, Deployment: d.Name}
		}
		r.Update(router.Config{
			Replicas:           reps,
			MaxOngoingRequests: int(d.MaxOngoingRequests),
			MaxQueuedRequests:  int(d.MaxQueuedRequests),
			Unavailable:        d.UnavailableMessage,
		})
	}
	// Targets of replicas that just left stay known so calls already routed
	// to them still reach them while they drain.
	for id, t := range old.targets {
		if _, ok := targets[id]; !ok {
			targets[id] = t
		}
	}
	next.targets = targets
	h.tab.Store(next)
	for k, r := range old.routers {
		if !seen[k] {
			r.Update(router.Config{Unavailable: fmt.Sprintf("Deployment '%s' in application '%s' was deleted.", k.name, k.app)})
		}
	}
}

// Ingress returns an application's ingress deployment.
func (h *Handles) Ingress(app string) (string, bool) {
	d, ok := h.tab.Load().ingress[app]
	return d, ok
}

// HasReplicas reports whether any deployment has a replica, and whether one
// is on this node.
func (h *Handles) HasReplicas() (any, local bool) {
	for _, t := range h.tab.Load().targets {
		any = true
		if t.NodeID == h.opts.LocalNodeID {
			local = true
		}
	}
	return any, local
}

// RouterStats returns the queue and in-flight calls of every deployment's
// router, for the metrics.
func (h *Handles) RouterStats() []metrics.RouterStat {
	tab := h.tab.Load()
	keys := make([]depKey, 0, len(tab.routers))
	routers := make([]*router.Router, 0, len(tab.routers))
	for k, r := range tab.routers {
		keys = append(keys, k)
		routers = append(routers, r)
	}
	out := make([]metrics.RouterStat, 0, len(keys))
	for i, k := range keys {
		s := routers[i].Stats()
		ongoing := 0
		for _, n := range s.Inflight {
			ongoing += n
		}
		out = append(out, metrics.RouterStat{App: k.app, Deployment: k.name, Queued: s.Queued, Ongoing: ongoing})
	}
	return out
}

// Load returns a deployment's router queue length and calls in flight at
// its replicas, for the autoscaling reports; ok is false for a deployment
// the table does not have.
func (h *Handles) Load(app, deployment string) (queued, ongoing int, ok bool) {
	r, ok := h.tab.Load().routers[depKey{app, deployment}]
	if !ok {
		return 0, 0, false
	}
	queued, ongoing = r.Load()
	return queued, ongoing, true
}

func (h *Handles) lookup(app, deployment string) (*router.Router, string, error) {
	tab := h.tab.Load()
	if deployment == "" {
		d, ok := tab.ingress[app]
		if !ok {
			return nil, "", fmt.Errorf("application '%s' not found: %w", app, ErrNotFound)
		}
		deployment = d
	}
	r, ok := tab.routers[depKey{app, deployment}]
	if !ok {
		return nil, "", fmt.Errorf("deployment '%s' of application '%s' not found: %w", deployment, app, ErrNotFound)
	}
	return r, deployment, nil
}

// Target returns where a replica of the table (or one that just left it)
// is.
func (h *Handles) Target(id string) (Target, bool) { return h.target(id) }

func (h *Handles) target(id string) (Target, bool) {
	t, ok := h.tab.Load().targets[id]
	return t, ok
}

// Call is one call to a deployment.
type Call struct {
	App string
	// Deployment empty means the application's ingress.
	Deployment string
	Meta       wire.Meta
	// Body is the request body when it is known whole; BodyStream, when
	// set, is read after Body and streamed once the replica accepted.
	Body       []byte
	BodyStream io.Reader
}

// Invoke routes c and returns the replica's response once its head
// arrived. Errors: *router.BackPressureError, router.ErrUnavailable,
// ErrNotFound, *wire.Error (the replica failed the call), *ReplicaDiedError,
// or ctx's error.
func (h *Handles) Invoke(ctx context.Context, c Call) (*Response, error) {
	r, deployment, err := h.lookup(c.App, c.Deployment)
	if err != nil {
		return nil, err
	}
	h.opts.Metrics.RouterRequest(c.App, deployment, c.Meta.RoutePrefix)
	if c.Meta.Window == 0 {
		c.Meta.Window = wire.DefaultWindow
	}
	eager := c.BodyStream == nil && len(c.Body) <= InlineBodyLimit
	// The opening frames are the same for every attempt.
	ob, _ := h.openBufs.Get().(*openBuf)
	if ob == nil {
		ob = &openBuf{}
	}
	ob.meta = wire.AppendMeta(ob.meta[:0], &c.Meta)
	defer func() {
		clear(ob.frames) // they point at the caller's body
		// A rare huge OPEN (large headers) is not kept around.
		if cap(ob.meta) <= 16<<10 && cap(ob.frames) <= 8 {
			h.openBufs.Put(ob)
		}
	}()
	frames := append(ob.frames[:0], wire.Out{Type: wire.TypeOpen, Payload: ob.meta})
	if eager {
		for b := c.Body; len(b) > 0; {
			n := min(len(b), wire.ChunkSize)
			frames = append(frames, wire.Out{Type: wire.TypeData, Payload: b[:n]})
			b = b[n:]
		}
		frames = append(frames, wire.Out{Type: wire.TypeEnd})
	}
	ob.frames = frames
	retry := false
	since := h.opts.Clock.Now()
	for {
		lease, err := r.AssignCall(ctx, router.Call{Retry: retry, ModelID: c.Meta.MultiplexedModelID, Since: since})
		if err != nil {
			return nil, err
		}
		retry = true
		t, ok := h.target(lease.ID)
		if !ok {
			lease.Failed()
			continue
		}
		st, err := h.opts.Dialer.Open(ctx, t)
		if err != nil {
			if ctx.Err() != nil {
				lease.Cancelled()
				return nil, ctx.Err()
			}
			h.opts.Logger.V(1).Info("Replica unreachable; routing the call again", "replicaID", t.ReplicaID, "reason", err.Error())
			lease.Failed()
			continue
		}
		if mo, ok := st.(wire.MetaOpener); ok {
			mo.OpenMeta(c.Meta.Kind, c.Meta.RoutePrefix)
		}
		if err := st.Send(frames...); err != nil {
			st.Close()
			lease.Failed()
			continue
		}
		f, err := st.Recv(ctx)
		if err != nil {
			st.Close()
			if ctx.Err() != nil {
				lease.Cancelled()
				return nil, ctx.Err()
			}
			lease.Failed()
			continue
		}
		if f.Type != wire.TypeAccept {
			// ERROR (the replica's agent could not reach it) or any other
			// frame: nothing was accepted.
			st.Close()
			lease.Failed()
			continue
		}
		acc := wire.DecodeAccept(f.Payload)
		if acc.Models != nil {
			lease.Models(acc.Models)
		}
		if !acc.Accepted {
			st.Close()
			lease.Rejected(acc.Ongoing)
			continue
		}
		resp := &Response{st: st, lease: lease, replicaID: t.ReplicaID, credits: c.Meta.Window > 0}
		if !eager {
			go h.streamBody(st, c.Body, c.BodyStream)
		}
		if err := resp.awaitHead(ctx); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// openBuf is a call's OPEN payload and frame list, pooled.
type openBuf struct {
	meta   []byte
	frames []wire.Out
}

func dataFrames(b []byte) []wire.Out {
	var out []wire.Out
	for len(b) > 0 {
		n := min(len(b), wire.ChunkSize)
		out = append(out, wire.Out{Type: wire.TypeData, Payload: b[:n]})
		b = b[n:]
	}
	return out
}

// streamBody sends a large request body; a read error cancels the call.
func (h *Handles) streamBody(st wire.Stream, head []byte, rest io.Reader) {
	if len(head) > 0 {
		if st.Send(dataFrames(head)...) != nil {
			return
		}
	}
	if rest != nil {
		bp, _ := h.bodyBufs.Get().(*[]byte)
		if bp == nil {
			b := make([]byte, wire.ChunkSize)
			bp = &b
		}
		defer h.bodyBufs.Put(bp)
		buf := *bp
		for {
			n, err := rest.Read(buf)
			if n > 0 {
				// Send is done with the payload when it returns.
				if st.Send(wire.Out{Type: wire.TypeData, Payload: buf[:n]}) != nil {
					return
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				_ = st.Send(wire.Out{Type: wire.TypeCancel})
				return
			}
		}
	}
	_ = st.Send(wire.Out{Type: wire.TypeEnd})
}

// Response is a call's answer after its head.
type Response struct {
	Head wire.Head
	// End is the replica's END payload, set once Next returned io.EOF (a
	// gRPC call's status and trailing metadata).
	End       wire.End
	st        wire.Stream
	lease     *router.Lease
	replicaID string
	done      bool
	// credits says the replica waits for CREDIT frames; owed is what was
	// consumed and not yet returned.
	credits bool
	owed    int
}

func (r *Response) awaitHead(ctx context.Context) error {
	f, err := r.st.Recv(ctx)
	if err != nil {
		return r.fail(ctx, err)
	}
	switch f.Type {
	case wire.TypeHead:
		h, err := wire.DecodeHead(f.Payload)
		if err != nil {
			return r.fail(ctx, fmt.Errorf("malformed HEAD: %w", err))
		}
		r.Head = h
		return nil
	case wire.TypeError:
		r.finish()
		return decodeError(f.Payload)
	}
	return r.fail(ctx, fmt.Errorf("unexpected frame type %d before HEAD", f.Type))
}

func decodeError(p []byte) error {
	e := &wire.Error{}
	if err := json.Unmarshal(p, e); err != nil {
		return &wire.Error{Kind: wire.ErrInternal, Message: "malformed ERROR frame"}
	}
	return e
}

// fail ends the call after a transport failure or cancellation.
func (r *Response) fail(ctx context.Context, err error) error {
	if r.done {
		return err
	}
	r.done = true
	if ctx.Err() != nil {
		_ = r.st.Send(wire.Out{Type: wire.TypeCancel})
		r.st.Close()
		r.lease.Cancelled()
		return ctx.Err()
	}
	r.st.Close()
	r.lease.Failed()
	return &ReplicaDiedError{ReplicaID: r.replicaID, Err: err}
}

func (r *Response) finish() {
	if r.done {
		return
	}
	r.done = true
	r.st.Close()
	r.lease.Done(-1)
}

// Next returns the next chunk of the body, io.EOF at its end, or the error
// that ended the call.
func (r *Response) Next(ctx context.Context) ([]byte, error) {
	if r.done {
		return nil, io.EOF
	}
	for {
		f, err := r.st.Recv(ctx)
		if err != nil {
			return nil, r.fail(ctx, err)
		}
		switch f.Type {
		case wire.TypeData:
			r.credit(len(f.Payload))
			return f.Payload, nil
		case wire.TypeEnd:
			if len(f.Payload) > 0 {
				var end wire.End
				if json.Unmarshal(f.Payload, &end) == nil {
					if end.Models != nil {
						r.lease.Models(end.Models)
					}
					r.End = end
				}
			}
			r.finish()
			return nil, io.EOF
		case wire.TypeError:
			r.finish()
			return nil, decodeError(f.Payload)
		}
	}
}

// credit returns consumed bytes to the replica's window: at once when
// nothing more is buffered (the caller is about to wait), else in batches
// of a frame's size, so a fast reader does not answer every small chunk.
func (r *Response) credit(n int) {
	if !r.credits {
		return
	}
	r.owed += n
	if r.owed >= wire.ChunkSize || !r.Buffered() {
		_ = r.st.Send(wire.Out{Type: wire.TypeCredit, Payload: wire.Credit(r.owed)})
		r.owed = 0
	}
}

// Chunks iterates over the rest of the body: the Go side of
// handle.options(stream=True). It stops at the end of the body or at the
// first error, which it yields.
func (r *Response) Chunks(ctx context.Context) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for {
			chunk, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(chunk, err) || err != nil {
				return
			}
		}
	}
}

// Buffered reports whether more of the answer has already arrived, so a
// proxy flushes only when it would otherwise wait.
func (r *Response) Buffered() bool {
	b, ok := r.st.(interface{ Buffered() bool })
	return ok && b.Buffered()
}

// Close abandons the call if it has not finished (the replica is told to
// cancel it).
func (r *Response) Close() {
	if r.done {
		return
	}
	r.done = true
	_ = r.st.Send(wire.Out{Type: wire.TypeCancel})
	r.st.Close()
	r.lease.Done(-1)
}
