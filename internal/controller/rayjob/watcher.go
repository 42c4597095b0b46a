package rayjob

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// jobWatcher turns the dashboard's log stream into watch events, so a Running RayJob is
// reconciled when its Ray job starts printing and when it ends, instead of being polled.
//
// For each Running RayJob it keeps one goroutine following GET /api/jobs/<id>/logs/tail. Ray
// closes that WebSocket normally once the job is terminal and its log drained: the goroutine then
// enqueues the RayJob. It also enqueues on the first log frame (the job is RUNNING). When the
// stream breaks (head restart, network, a proxy that cannot upgrade), it enqueues after a growing
// delay, and the reconcile that follows checks the job and starts a new stream.
type jobWatcher struct {
	events chan ctrlevent.GenericEvent

	mu      sync.Mutex
	running map[types.NamespacedName]*watch
}

type watch struct {
	jobID    string
	cancel   context.CancelFunc
	done     bool // the stream ended; the next ensure starts a new one
	failures int
}

func newJobWatcher() *jobWatcher {
	return &jobWatcher{events: make(chan ctrlevent.GenericEvent, 1024), running: map[types.NamespacedName]*watch{}}
}

// ensure follows jobID for the RayJob key unless it is already followed.
func (w *jobWatcher) ensure(key types.NamespacedName, jobID string, c *dashboard.Client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	failures := 0
	if cur, ok := w.running[key]; ok {
		if cur.jobID == jobID && !cur.done {
			return
		}
		cur.cancel()
		if cur.jobID == jobID {
			failures = cur.failures
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	wt := &watch{jobID: jobID, cancel: cancel, failures: failures}
	w.running[key] = wt
	go w.follow(ctx, key, wt, c)
}

// stop ends the stream of a RayJob (it left Running or is gone).
func (w *jobWatcher) stop(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur, ok := w.running[key]; ok {
		cur.cancel()
		delete(w.running, key)
	}
}

// stopAll ends every stream (manager shutdown).
func (w *jobWatcher) stopAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, cur := range w.running {
		cur.cancel()
		delete(w.running, k)
	}
}

func (w *jobWatcher) follow(ctx context.Context, key types.NamespacedName, wt *watch, c *dashboard.Client) {
	defer wt.cancel()
	first := true
	err := c.TailJobLogs(ctx, wt.jobID, func(string) error {
		if first {
			first = false
			w.notify(ctx, key)
		}
		return nil
	})
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.mu.Lock()
		wt.failures++
		delay := min(time.Duration(1<<min(wt.failures, 5))*time.Second, 30*time.Second)
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	} else {
		w.mu.Lock()
		wt.failures = 0
		w.mu.Unlock()
	}
	w.mu.Lock()
	wt.done = true
	w.mu.Unlock()
	w.notify(ctx, key)
}

// notify enqueues the RayJob through the controller's channel source; it gives up when the
// stream was stopped (the RayJob left Running, or the manager is shutting down).
func (w *jobWatcher) notify(ctx context.Context, key types.NamespacedName) {
	rj := &rayv1.RayJob{}
	rj.Name, rj.Namespace = key.Name, key.Namespace
	select {
	case w.events <- ctrlevent.GenericEvent{Object: rj}:
	case <-ctx.Done():
	}
}
