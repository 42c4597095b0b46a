package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"
)

func newTestRouter(t *testing.T, local string) (*Router, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	// A deterministic "random" source: always the first candidates.
	r := New(Options{LocalNodeID: local, Clock: clk, Intn: func(int) int { return 0 }})
	return r, clk
}

func assignNow(t *testing.T, r *Router) *Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := r.Assign(ctx, false)
	if err != nil {
		t.Fatalf("Assign: %v", err)
	}
	return l
}

// pending starts an Assign and returns a channel with its outcome.
type outcome struct {
	l   *Lease
	err error
}

func pending(ctx context.Context, r *Router, retry bool) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		l, err := r.Assign(ctx, retry)
		ch <- outcome{l, err}
	}()
	return ch
}

func waitQueued(t *testing.T, r *Router, n int) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func() int { return r.Stats().Queued }).WithTimeout(5*time.Second).WithPolling(time.Millisecond).
		Should(gomega.Equal(n), "queue length")
}

// expectNone checks that a queued call stays unrouted for a while: nothing may route it until the
// test frees capacity.
func expectNone(t *testing.T, ch <-chan outcome) {
	t.Helper()
	gomega.NewWithT(t).Consistently(ch).WithTimeout(20*time.Millisecond).WithPolling(time.Millisecond).
		ShouldNot(gomega.Receive(), "the call was routed early")
}

func expect(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("call was not routed")
	}
	return outcome{}
}

func TestMaxOngoingIsACapPerReplica(t *testing.T) {
	r, _ := newTestRouter(t, "")
	r.Update(Config{Replicas: []Replica{{ID: "a"}, {ID: "b"}}, MaxOngoingRequests: 2, MaxQueuedRequests: -1})
	var leases []*Lease
	for range 4 {
		leases = append(leases, assignNow(t, r))
	}
	if s := r.Stats(); s.Inflight["a"] != 2 || s.Inflight["b"] != 2 {
		t.Fatalf("inflight = %v, want 2 on each replica", s.Inflight)
	}
	ch := pending(context.Background(), r, false)
	waitQueued(t, r, 1)
	expectNone(t, ch)
	leases[3].Done(1)
	o := expect(t, ch)
	if o.err != nil || o.l.ID != leases[3].ID {
		t.Fatalf("queued call got %+v, want the replica that freed up (%s)", o, leases[3].ID)
	}
}

func TestPowerOfTwoPrefersLessLoaded(t *testing.T) {
	r, _ := newTestRouter(t, "")
	r.Update(Config{Replicas: []Replica{{ID: "a"}, {ID: "b"}, {ID: "c"}}, MaxOngoingRequests: 10, MaxQueuedRequests: -1})
	// Intn always 0: the candidates are "a" and then "b" (j=0 shifted to 1).
	first := assignNow(t, r)
	second := assignNow(t, r)
	if first.ID != "a" || second.ID != "b" {
		t.Fatalf("picked %s then %s, want a then the less loaded b", first.ID, second.ID)
	}
}

func TestPrefersLocalNodeUntilFull(t *testing.T) {
	r, _ := newTestRouter(t, "n2")
	r.Update(Config{Replicas: []Replica{{ID: "a", NodeID: "n1"}, {ID: "b", NodeID: "n2"}}, MaxOngoingRequests: 2, MaxQueuedRequests: -1})
	for range 2 {
		if l := assignNow(t, r); l.ID != "b" {
			t.Fatalf("picked %s, want the local replica b", l.ID)
		}
	}
	if l := assignNow(t, r); l.ID != "a" {
		t.Fatalf("picked %s once the local replica is full, want a", l.ID)
	}
}

func TestMaxQueuedRequestsBackPressure(t *testing.T) {
	r, _ := newTestRouter(t, "")
	r.Update(Config{Replicas: []Replica{{ID: "a"}}, MaxOngoingRequests: 1, MaxQueuedRequests: 2})
	held := assignNow(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q1 := pending(ctx, r, false)
	waitQueued(t, r, 1)
	q2 := pending(ctx, r, false)
	waitQueued(t, r, 2)
	_, err := r.Assign(ctx, false)
	var bp *BackPressureError
	if !errors.As(err, &bp) || bp.Queued != 2 || bp.MaxQueued != 2 {
		t.Fatalf("third queued call: %v, want back pressure", err)
	}
	// A retry of an admitted call is not counted against the queue bound.
	q3 := pending(ctx, r, true)
	waitQueued(t, r, 3)
	held.Done(0)
	if o := expect(t, q3); o.err != nil {
		t.Fatalf("retry was not served first: %v", o.err)
	}
	expectNone(t, q1)
	expectNone(t, q2)
}

func TestFIFO(t *testing.T) {
	r, _ := newTestRouter(t, "")
	r.Update(Config{Replicas: []Replica{{ID: "a"}}, MaxOngoingRequests: 1, MaxQueuedRequests: -1})
	held := assignNow(t, r)
	var chans []<-chan outcome
	for i := range 3 {
		chans = append(chans, pending(context.Background(), r, false))
		waitQueued(t, r, i+1)
	}
	for _, ch := range chans {
		held.Done(0)
		held = expect(t, ch).l
	}
}

func TestRejectionBacksOffExponentially(t *testing.T) {
	r, clk := newTestRouter(t, "")
	r.Update(Config{Replicas: []Replica{{ID: "a"}}, MaxOngoingRequests: 5, MaxQueuedRequests: -1})
	for i, wait := range []time.Duration{25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond} {
		l := assignNow(t, r)
		l.Rejected(5)
		ch := pending(context.Background(), r, true)
		waitQueued(t, r, 1)
		clk.Step(wait - time.Millisecond)
		expectNone(t, ch)
		clk.Step(time.Millisecond)
		o := expect(t, ch)
		if o.err != nil {
			t.Fatalf("retry %d: %v", i, o.err)
		}
		o.l.Cancelled()
	}
	// A finished call resets the backoff.
	l := assignNow(t, r)
	l.Done(0)
	l = assignNow(t, r)
	l.Rejected(5)
	ch := pending(context.Background(), r, true)
	waitQueued(t, r, 1)
	clk.Step(25 * time.Millisecond)
	expect(t, ch)
}

func TestUnreachableReplicaIsDroppedAndQueueRerouted(t *testing.T) {
	r, clk := newTestRouter(t, "")
	r.Update(Config{Replicas: []Replica{{ID: "a"}, {ID: "b"}}, MaxOngoingRequests: 1, MaxQueuedRequests: -1})
	la, lb := assignNow(t, r), assignNow(t, r)
	if la.ID != "a" || lb.ID != "b" {
		t.Fatalf("got %s, %s", la.ID, lb.ID)
	}
	q1 := pending(context.Background(), r, false)
	waitQueued(t, r, 1)
	q2 := pending(context.Background(), r, false)
	waitQueued(t, r, 2)
	la.Failed()
	expectNone(t, q1)
	lb.Done(0)
	o := expect(t, q1)
	if o.l.ID != "b" {
		t.Fatalf("queued call went to %s, want the live replica b", o.l.ID)
	}
	o.l.Done(0)
	if o := expect(t, q2); o.l.ID != "b" {
		t.Fatalf("second queued call went to %s", o.l.ID)
	}
	// The controller's next table without "a" forgets it; with it after the
	// dead period "a" comes back.
	clk.Step(DefaultDeadFor)
	if s := r.Stats(); s.Inflight["a"] != 0 {
		t.Fatalf("inflight on a = %d", s.Inflight["a"])
	}
	if l := assignNow(t, r); l.ID != "a" {
		t.Fatalf("after the dead period picked %s, want a", l.ID)
	}
}

func TestNoReplicasWaitsForUpdateAndUnavailableFails(t *testing.T) {
	r, _ := newTestRouter(t, "")
	ch := pending(context.Background(), r, false)
	waitQueued(t, r, 1)
	r.Update(Config{Replicas: []Replica{{ID: "a"}}, MaxQueuedRequests: -1})
	if o := expect(t, ch); o.err != nil || o.l.ID != "a" {
		t.Fatalf("got %+v", o)
	}
	r.Update(Config{Unavailable: "Deployment D is DEPLOY_FAILED"})
	_, err := r.Assign(context.Background(), false)
	if !errors.Is(err, ErrUnavailable) || err.Error() != "Deployment D is DEPLOY_FAILED" {
		t.Fatalf("Assign on an unavailable deployment: %v", err)
	}
}

func TestCancelledWaiterLeavesQueue(t *testing.T) {
	r, _ := newTestRouter(t, "")
	r.Update(Config{Replicas: []Replica{{ID: "a"}}, MaxOngoingRequests: 1, MaxQueuedRequests: -1})
	held := assignNow(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	ch := pending(ctx, r, false)
	waitQueued(t, r, 1)
	cancel()
	if o := expect(t, ch); !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled call: %+v", o)
	}
	waitQueued(t, r, 0)
	held.Done(0)
	if s := r.Stats(); s.Inflight["a"] != 0 {
		t.Fatalf("inflight = %v after cancel", s.Inflight)
	}
}
