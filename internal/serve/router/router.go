// Package router picks a replica for each call to one deployment, the way
// Ray Serve's default power-of-two-choices request router does (see
// https://docs.ray.io/en/latest/serve/advanced-guides/custom-request-router.html
// and docs/serve.md):
// calls wait in the caller's FIFO queue (bounded by max_queued_requests,
// then ErrBackPressure) until a replica has fewer than max_ongoing_requests
// calls from this caller; of two random such replicas — local ones first —
// the less loaded wins. A replica that rejects a call (it is full with other
// callers' calls) is skipped for an exponentially growing backoff; one that
// cannot be reached is dropped until the controller's next table says
// otherwise. Calls for a multiplexed model go to replicas that hold it,
// else to those holding the fewest models, and only after a randomized 1-2x
// MultiplexTimeout to any replica (see
// https://docs.ray.io/en/latest/serve/model-multiplexing.html); replicas
// report the models they hold with their answers (SetModels). The router
// holds no connections: callers send the call and report back through the
// Lease.
package router

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Ray's router defaults (RAY_SERVE_ROUTER_RETRY_* and the queue length
// cache timeout).
const (
	DefaultInitialBackoff = 25 * time.Millisecond
	DefaultBackoffFactor  = 2.0
	DefaultMaxBackoff     = 500 * time.Millisecond
	DefaultReportTTL      = 10 * time.Second
	// DefaultDeadFor keeps an unreachable replica out of rotation while the
	// controller notices and replaces it.
	DefaultDeadFor = 5 * time.Second
	// DefaultMultiplexTimeout is RAY_SERVE_MULTIPLEXED_MODEL_ID_MATCHING_TIMEOUT_S.
	DefaultMultiplexTimeout = time.Second
)

// ErrUnavailable is returned when the deployment cannot take calls (its
// deployment failed and it has no replicas).
var ErrUnavailable = errors.New("deployment is unavailable")

// BackPressureError is returned when the caller's queue is full.
type BackPressureError struct {
	Queued, MaxQueued int
}

func (e *BackPressureError) Error() string {
	return fmt.Sprintf("Request dropped due to backpressure (num_queued_requests=%d, max_queued_requests=%d).", e.Queued, e.MaxQueued)
}

// UnavailableError wraps ErrUnavailable with the controller's message.
type UnavailableError struct{ Message string }

func (e *UnavailableError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrUnavailable) hold.
func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// Replica is a routing target.
type Replica struct {
	ID     string
	NodeID string
	// Models are the multiplexed model IDs the controller's routing table
	// says the replica holds (nil: none reported).
	Models []string
}

// Options configures a Router.
type Options struct {
	// LocalNodeID is preferred when it has a replica with room.
	LocalNodeID    string
	Clock          clock.WithDelayedExecution
	InitialBackoff time.Duration
	BackoffFactor  float64
	MaxBackoff     time.Duration
	ReportTTL      time.Duration
	DeadFor        time.Duration
	// MultiplexTimeout is how long a call for a model waits for a replica
	// that holds it (or holds the fewest models) before any replica will
	// do; each call waits this times a random factor in [1, 2).
	MultiplexTimeout time.Duration
	// Intn returns a random int in [0, n); tests make it deterministic.
	Intn func(n int) int
	// Float64 returns a random float in [0, 1); tests make it deterministic.
	Float64 func() float64
}

// Config is the deployment's routing state from the controller.
type Config struct {
	Replicas           []Replica
	MaxOngoingRequests int
	// MaxQueuedRequests < 0 means unbounded.
	MaxQueuedRequests int
	// Unavailable, when set and no replica exists, fails calls with it.
	Unavailable string
}

type replicaState struct {
	Replica
	inflight     int
	reported     int
	reportedAt   time.Time
	rejects      int
	blockedUntil time.Time
	deadUntil    time.Time
	models       map[string]bool
}

type waiter struct {
	ch chan *Lease
	// modelID, when set, restricts candidates until fallbackAt.
	modelID    string
	fallbackAt time.Time
}

// Router routes calls to one deployment.
type Router struct {
	opts Options

	mu          sync.Mutex
	cfg         Config
	replicas    []*replicaState
	byID        map[string]*replicaState
	queue       *list.List // of *waiter
	timer       clock.Timer
	timerAt     time.Time
	unavailable string
	// room and local are pickLocked's scratch space, reused under mu so
	// routing a call allocates nothing.
	room, local []*replicaState
}

// New returns a Router with no replicas: calls wait for Update.
func New(opts Options) *Router {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.BackoffFactor <= 1 {
		opts.BackoffFactor = DefaultBackoffFactor
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.ReportTTL <= 0 {
		opts.ReportTTL = DefaultReportTTL
	}
	if opts.DeadFor <= 0 {
		opts.DeadFor = DefaultDeadFor
	}
	if opts.Intn == nil {
		opts.Intn = rand.IntN
	}
	if opts.Float64 == nil {
		opts.Float64 = rand.Float64
	}
	if opts.MultiplexTimeout <= 0 {
		opts.MultiplexTimeout = DefaultMultiplexTimeout
	}
	return &Router{opts: opts, byID: map[string]*replicaState{}, queue: list.New(), cfg: Config{MaxOngoingRequests: 5, MaxQueuedRequests: -1}}
}

// Update installs a new replica set and limits. Replicas that stay keep
// their counters; calls in flight to removed replicas finish normally.
func (r *Router) Update(cfg Config) {
	if cfg.MaxOngoingRequests <= 0 {
		cfg.MaxOngoingRequests = 5
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg = cfg
	next := make([]*replicaState, 0, len(cfg.Replicas))
	byID := make(map[string]*replicaState, len(cfg.Replicas))
	for _, rep := range cfg.Replicas {
		st, ok := r.byID[rep.ID]
		if !ok {
			st = &replicaState{Replica: rep}
		}
		// A table's report is older than what this router learns from its
		// own calls, so it only counts when it changed.
		if !slices.Equal(st.Models, rep.Models) || !ok {
			st.setModels(rep.Models)
		}
		st.Replica = rep
		next = append(next, st)
		byID[rep.ID] = st
	}
	sort.Slice(next, func(i, j int) bool { return next[i].ID < next[j].ID })
	r.replicas, r.byID = next, byID
	r.unavailable = ""
	if len(next) == 0 && cfg.Unavailable != "" {
		r.unavailable = cfg.Unavailable
		for e := r.queue.Front(); e != nil; e = r.queue.Front() {
			r.queue.Remove(e)
			close(e.Value.(*waiter).ch)
		}
		return
	}
	r.dispatchLocked()
}

// Stats is a snapshot for metrics and tests.
type Stats struct {
	Queued   int
	Inflight map[string]int
}

// Stats returns the queue length and per-replica calls in flight.
func (r *Router) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Queued: r.queue.Len(), Inflight: map[string]int{}}
	for _, rs := range r.replicas {
		s.Inflight[rs.ID] = rs.inflight
	}
	return s
}

// Load returns the queue length and the calls in flight at replicas; the
// node's autoscaling reporter samples it periodically.
func (r *Router) Load() (queued, ongoing int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.replicas {
		ongoing += rs.inflight
	}
	return r.queue.Len(), ongoing
}

// Assign waits for a replica with room and returns a lease on it. retry
// marks a call that a replica rejected: it goes back to the front of the
// queue and is not subject to max_queued_requests again.
func (r *Router) Assign(ctx context.Context, retry bool) (*Lease, error) {
	return r.AssignCall(ctx, Call{Retry: retry})
}

// Call describes a call to route.
type Call struct {
	// Retry marks a call a replica rejected (see Assign).
	Retry bool
	// ModelID is the call's multiplexed model ID ("" for none).
	ModelID string
	// Since is when the call was first routed (zero: now); the
	// multiplexing fallback counts from it.
	Since time.Time
}

// AssignCall is Assign for a call with a multiplexed model ID.
func (r *Router) AssignCall(ctx context.Context, c Call) (*Lease, error) {
	r.mu.Lock()
	if r.unavailable != "" {
		msg := r.unavailable
		r.mu.Unlock()
		return nil, &UnavailableError{Message: msg}
	}
	probe := waiter{modelID: c.ModelID}
	if c.ModelID != "" {
		since := c.Since
		if since.IsZero() {
			since = r.opts.Clock.Now()
		}
		probe.fallbackAt = since.Add(time.Duration(float64(r.opts.MultiplexTimeout) * (1 + r.opts.Float64())))
	}
	if r.queue.Len() == 0 {
		if rs := r.pickLocked(&probe); rs != nil {
			rs.inflight++
			r.mu.Unlock()
			return &Lease{r: r, rs: rs, Replica: rs.Replica}, nil
		}
	}
	if !c.Retry && r.cfg.MaxQueuedRequests >= 0 && r.queue.Len() >= r.cfg.MaxQueuedRequests {
		err := &BackPressureError{Queued: r.queue.Len(), MaxQueued: r.cfg.MaxQueuedRequests}
		r.mu.Unlock()
		return nil, err
	}
	w := &waiter{ch: make(chan *Lease, 1), modelID: probe.modelID, fallbackAt: probe.fallbackAt}
	var e *list.Element
	if c.Retry {
		e = r.queue.PushFront(w)
	} else {
		e = r.queue.PushBack(w)
	}
	// Calls queued for a model must not hold up others behind them.
	r.dispatchLocked()
	r.mu.Unlock()

	select {
	case l, ok := <-w.ch:
		if !ok {
			return nil, r.unavailableErr()
		}
		return l, nil
	case <-ctx.Done():
		r.mu.Lock()
		// The list element's Remove is a no-op when it is no longer queued.
		r.queue.Remove(e)
		r.mu.Unlock()
		select {
		case l, ok := <-w.ch:
			if ok {
				l.release()
			}
		default:
		}
		return nil, ctx.Err()
	}
}

// SetModels records the multiplexed models a replica reported holding.
func (r *Router) SetModels(replicaID string, models []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs, ok := r.byID[replicaID]
	if !ok {
		return
	}
	rs.setModels(models)
	r.dispatchLocked()
}

func (rs *replicaState) setModels(models []string) {
	rs.models = make(map[string]bool, len(models))
	for _, m := range models {
		rs.models[m] = true
	}
}

func (r *Router) unavailableErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &UnavailableError{Message: r.unavailable}
}

// pickLocked is the power of two choices over the candidates for w, local
// replicas first. Candidates are the replicas with room; for a model, only
// those holding it, or else those holding the fewest models, until the
// call's fallback time.
func (r *Router) pickLocked(w *waiter) *replicaState {
	now := r.opts.Clock.Now()
	room := r.room[:0]
	for _, rs := range r.replicas {
		if rs.inflight >= r.cfg.MaxOngoingRequests || now.Before(rs.blockedUntil) || now.Before(rs.deadUntil) {
			continue
		}
		room = append(room, rs)
	}
	r.room = room
	cands := room
	if w != nil && w.modelID != "" {
		cands = r.modelCandidatesLocked(w, room, now)
	}
	return r.twoChoicesLocked(cands, now)
}

func (r *Router) modelCandidatesLocked(w *waiter, room []*replicaState, now time.Time) []*replicaState {
	var holders []*replicaState
	for _, rs := range room {
		if rs.models[w.modelID] {
			holders = append(holders, rs)
		}
	}
	if len(holders) > 0 || !now.Before(w.fallbackAt) {
		if len(holders) > 0 {
			return holders
		}
		return room
	}
	fewest := -1
	for _, rs := range r.replicas {
		if now.Before(rs.deadUntil) {
			continue
		}
		if fewest < 0 || len(rs.models) < fewest {
			fewest = len(rs.models)
		}
	}
	var out []*replicaState
	for _, rs := range room {
		if len(rs.models) == fewest {
			out = append(out, rs)
		}
	}
	return out
}

func (r *Router) twoChoicesLocked(cands []*replicaState, now time.Time) *replicaState {
	local := r.local[:0]
	if r.opts.LocalNodeID != "" {
		for _, rs := range cands {
			if rs.NodeID == r.opts.LocalNodeID {
				local = append(local, rs)
			}
		}
	}
	r.local = local
	if len(local) > 0 {
		cands = local
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	i := r.opts.Intn(len(cands))
	j := r.opts.Intn(len(cands) - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	if r.load(b, now) < r.load(a, now) {
		return b
	}
	return a
}

// load is this caller's calls in flight, or what the replica last reported
// (which includes other callers) while that report is fresh.
func (r *Router) load(rs *replicaState, now time.Time) int {
	if now.Sub(rs.reportedAt) < r.opts.ReportTTL && rs.reported > rs.inflight {
		return rs.reported
	}
	return rs.inflight
}

// dispatchLocked hands replicas to queued calls while there is room.
func (r *Router) dispatchLocked() {
	for e := r.queue.Front(); e != nil; {
		w := e.Value.(*waiter)
		next := e.Next()
		rs := r.pickLocked(w)
		if rs == nil {
			if w.modelID == "" {
				// No replica has room at all.
				break
			}
			// This call waits for its model's replicas; later ones may go.
			e = next
			continue
		}
		r.queue.Remove(e)
		rs.inflight++
		w.ch <- &Lease{r: r, rs: rs, Replica: rs.Replica}
		e = next
	}
	r.armTimerLocked()
}

// armTimerLocked wakes the queue when the earliest backoff of a replica
// that has room ends.
func (r *Router) armTimerLocked() {
	if r.queue.Len() == 0 {
		return
	}
	now := r.opts.Clock.Now()
	var at time.Time
	for _, rs := range r.replicas {
		if rs.inflight >= r.cfg.MaxOngoingRequests {
			continue
		}
		until := rs.blockedUntil
		if rs.deadUntil.After(until) {
			until = rs.deadUntil
		}
		if until.After(now) && (at.IsZero() || until.Before(at)) {
			at = until
		}
	}
	for e := r.queue.Front(); e != nil; e = e.Next() {
		if fb := e.Value.(*waiter).fallbackAt; fb.After(now) && (at.IsZero() || fb.Before(at)) {
			at = fb
		}
	}
	if at.IsZero() || (r.timer != nil && !r.timerAt.After(at) && r.timerAt.After(now)) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timerAt = at
	// The callback runs on its own goroutine: fake clocks call it while
	// holding their lock, and dispatching reads the clock.
	r.timer = r.opts.Clock.AfterFunc(at.Sub(now), func() { go r.onTimer() })
}

func (r *Router) onTimer() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	r.dispatchLocked()
}

func (r *Router) backoff(rejects int) time.Duration {
	d := float64(r.opts.InitialBackoff)
	for i := 1; i < rejects; i++ {
		d *= r.opts.BackoffFactor
		if d >= float64(r.opts.MaxBackoff) {
			return r.opts.MaxBackoff
		}
	}
	return min(time.Duration(d), r.opts.MaxBackoff)
}

// Lease is one call's claim on a replica. Exactly one of Done, Rejected,
// Failed or Cancelled must be called.
type Lease struct {
	Replica
	r    *Router
	rs   *replicaState
	once sync.Once
}

func (l *Lease) finish(fn func(now time.Time)) {
	l.once.Do(func() {
		l.r.mu.Lock()
		defer l.r.mu.Unlock()
		l.rs.inflight--
		fn(l.r.opts.Clock.Now())
		l.r.dispatchLocked()
	})
}

// Done reports a call the replica accepted and finished; ongoing is the
// replica's count it reported (-1 when unknown).
func (l *Lease) Done(ongoing int) {
	l.finish(func(now time.Time) {
		l.rs.rejects = 0
		l.rs.blockedUntil = time.Time{}
		if ongoing >= 0 {
			l.rs.reported, l.rs.reportedAt = ongoing, now
		}
	})
}

// Rejected reports that the replica was full: it is skipped for a backoff
// and the caller routes the call again with Assign(ctx, true).
func (l *Lease) Rejected(ongoing int) {
	l.finish(func(now time.Time) {
		l.rs.rejects++
		l.rs.blockedUntil = now.Add(l.r.backoff(l.rs.rejects))
		l.rs.reported, l.rs.reportedAt = ongoing, now
	})
}

// Models records the multiplexed models the leased replica reported.
func (l *Lease) Models(models []string) { l.r.SetModels(l.ID, models) }

// Failed reports that the replica could not be reached: it leaves rotation.
func (l *Lease) Failed() {
	l.finish(func(now time.Time) {
		l.rs.deadUntil = now.Add(l.r.opts.DeadFor)
	})
}

// release gives the lease back unused (the call was cancelled before it
// was sent).
func (l *Lease) release() {
	l.finish(func(time.Time) {})
}

// Cancelled reports a call abandoned before the replica answered.
func (l *Lease) Cancelled() { l.release() }
