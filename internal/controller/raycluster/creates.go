package raycluster

import (
	"context"
	"errors"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxConcurrentCreates bounds how many creates of one reconcile are in flight at once. A new
// cluster of one head and two workers needs four (three pods and the head Service); issued one
// after another they cost four API round trips of latency per cluster, and with one reconcile at
// a time (KubeRay's default) those round trips add up over every cluster waiting in the queue.
const maxConcurrentCreates = 8

// plannedCreate is an object a phase decided to create. The phases only plan: the reconcile
// issues every planned create together once the phases ran (issueCreates), then calls each done,
// one at a time and in the order planned, with the outcome. done does the bookkeeping a create
// needs (expectations, events, failure facts); it runs on the reconcile's goroutine, so it may
// touch the scope.
type plannedCreate struct {
	obj  client.Object
	done func(ctx context.Context, err error) error
}

// createPlan is the creates one reconcile planned, and what to do once they all finished.
type createPlan struct {
	creates []plannedCreate
	// settle runs after every done, in the order added: a phase that planned several creates
	// reports them together there (one event naming every pod of a group).
	settle []func() error
}

// plan adds a create of obj; done is told how it went.
func (p *createPlan) plan(obj client.Object, done func(ctx context.Context, err error) error) {
	p.creates = append(p.creates, plannedCreate{obj: obj, done: done})
}

// afterAll adds f to run once every create planned so far was told how it went.
func (p *createPlan) afterAll(f func() error) { p.settle = append(p.settle, f) }

// issueCreates sends the planned creates to the API server at most maxConcurrentCreates at a
// time, waits for all of them, and then reports the outcomes: each create's done, then each
// settle, on this goroutine. Every create is attempted whatever happens to the others, and every
// error done or settle returns is kept (each names its object), so one failed pod does not hide
// another. The plan is empty afterwards.
//
// Issuing the creates of one reconcile together keeps the pod expectations sound: a create is
// recorded as expected (in done) before the reconcile returns, and controller-runtime never
// reconciles one cluster on two goroutines, so the next look at the cluster either finds the pod
// in the cache or waits for it, whichever create's watch event arrives first.
func (r *Reconciler) issueCreates(ctx context.Context, s *scope) error {
	p := s.creates
	s.creates = createPlan{}
	results := make([]error, len(p.creates))
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxConcurrentCreates)
	for i := range p.creates {
		if len(p.creates) == 1 {
			// Nothing to overlap with: no goroutine.
			results[i] = r.client.Create(ctx, p.creates[i].obj)
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			results[i] = r.client.Create(ctx, p.creates[i].obj)
		}()
	}
	wg.Wait()
	var errs []error
	for i, c := range p.creates {
		if err := c.done(ctx, results[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range p.settle {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
