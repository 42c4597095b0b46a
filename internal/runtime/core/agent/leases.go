package agent

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxLeaseRequests bounds the lease requests one job has in flight at the
// head per resource shape, as Ray bounds pending lease requests per
// scheduling class: tasks beyond it wait here and reuse leases that come
// back, which saves a head round trip per task.
const maxLeaseRequests = 10

// leaseLinger is how long an unused lease is kept for the next task of its
// shape before it goes back to the head: a driver calling ray.get on each
// task in turn then needs no head round trip per task.
const leaseLinger = 50 * time.Millisecond

// shapeQueue holds a job's tasks of one resource shape waiting for a lease.
type shapeQueue struct {
	key      string
	j        *job
	res      map[string]float64
	aff      affinity
	waiters  []*leaseWaiter
	inflight int
	warned   bool
	// idle holds leases no task uses, until leaseLinger passes.
	idle []*leased
}

type leaseWaiter struct {
	taskID string
	ch     chan *leased
	err    chan error
}

func shapeKey(jobID string, res map[string]float64, aff affinity) string {
	names := make([]string, 0, len(res))
	for k := range res {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(jobID + "|" + aff.NodeID + "|" + strconv.FormatBool(aff.Soft) + "|" + strconv.FormatBool(aff.Spread) + "|" + aff.GroupID + "|" + strconv.Itoa(int(aff.Bundle)))
	for _, k := range names {
		b.WriteString("|" + k + "=" + strconv.FormatFloat(res[k], 'g', -1, 64))
	}
	return b.String()
}

// acquireTaskLease returns a lease for a task of j with resources res:
// one handed back by a finished task of the same shape, or a new one.
func (a *Agent) acquireTaskLease(ctx context.Context, j *job, res map[string]float64, aff affinity, taskID string) (*leased, error) {
	key := shapeKey(j.id, res, aff)
	w := &leaseWaiter{taskID: taskID, ch: make(chan *leased, 1), err: make(chan error, 1)}
	a.lmu.Lock()
	q, ok := a.shapes[key]
	if !ok {
		q = &shapeQueue{key: key, j: j, res: res, aff: aff}
		a.shapes[key] = q
	}
	if n := len(q.idle); n > 0 {
		l := q.idle[n-1]
		q.idle = q.idle[:n-1]
		a.lmu.Unlock()
		return l, nil
	}
	q.waiters = append(q.waiters, w)
	a.pumpLocked(q)
	a.lmu.Unlock()
	select {
	case l := <-w.ch:
		return l, nil
	case err := <-w.err:
		return nil, err
	case <-ctx.Done():
		a.lmu.Lock()
		removed := false
		for i, x := range q.waiters {
			if x == w {
				q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
				removed = true
				break
			}
		}
		a.lmu.Unlock()
		if !removed {
			select {
			case l := <-w.ch:
				a.returnLease(l)
			default:
			}
		}
		return nil, ctx.Err()
	}
}

// tryTaskLease returns an idle lease of the shape on this node, or nil:
// it never waits.
func (a *Agent) tryTaskLease(j *job, res map[string]float64, aff affinity) *leased {
	if aff.Spread {
		return nil
	}
	a.lmu.Lock()
	defer a.lmu.Unlock()
	q, ok := a.shapes[shapeKey(j.id, res, aff)]
	if !ok {
		return nil
	}
	for i := len(q.idle) - 1; i >= 0; i-- {
		if l := q.idle[i]; l.nodeID == a.opts.NodeID {
			q.idle = append(q.idle[:i], q.idle[i+1:]...)
			return l
		}
	}
	return nil
}

// pumpLocked starts head requests while waiters outnumber them.
func (a *Agent) pumpLocked(q *shapeQueue) {
	for q.inflight < len(q.waiters) && q.inflight < maxLeaseRequests {
		// The request is named after a task it may serve, for messages.
		id := q.waiters[q.inflight].taskID
		q.inflight++
		go a.requestLease(q, id)
	}
}

func (a *Agent) requestLease(q *shapeQueue, taskID string) {
	warn := func(msg string) {
		a.lmu.Lock()
		first := !q.warned
		q.warned = true
		a.lmu.Unlock()
		if first {
			q.j.notify("warning", map[string]string{"message": msg})
		}
	}
	l, err := a.lease(q.j.ctx, "lease:"+newID(12), q.res, q.aff, taskID, warn)
	a.lmu.Lock()
	q.inflight--
	if err != nil {
		if q.j.ctx.Err() == nil && len(q.waiters) > 0 {
			w := q.waiters[0]
			q.waiters = q.waiters[1:]
			w.err <- err
		}
		a.dropIdleLocked(q)
		a.lmu.Unlock()
		return
	}
	a.handOver(q, l)
}

// releaseTaskLease hands a finished task's lease to the next task of the
// same shape, or keeps it idle for a moment, or returns it to the head.
func (a *Agent) releaseTaskLease(j *job, res map[string]float64, aff affinity, l *leased) {
	a.lmu.Lock()
	q, ok := a.shapes[shapeKey(j.id, res, aff)]
	if !ok {
		a.lmu.Unlock()
		a.returnLease(l)
		return
	}
	if aff.Spread {
		// Reusing it would keep the next task on this node: the head picks
		// the next node in turn for a new lease.
		a.pumpLocked(q)
		a.dropIdleLocked(q)
		a.lmu.Unlock()
		a.returnLease(l)
		return
	}
	a.handOver(q, l)
}

// handOver is releaseTaskLease for a known queue; it is called with lmu
// held and releases it.
func (a *Agent) handOver(q *shapeQueue, l *leased) {
	j := q.j
	if len(q.waiters) > 0 && j.ctx.Err() == nil {
		w := q.waiters[0]
		q.waiters = q.waiters[1:]
		w.ch <- l
		a.lmu.Unlock()
		return
	}
	if j.ctx.Err() == nil {
		q.idle = append(q.idle, l)
		a.lmu.Unlock()
		time.AfterFunc(leaseLinger, func() { a.expireIdle(q, l) })
		return
	}
	a.dropIdleLocked(q)
	a.lmu.Unlock()
	a.returnLease(l)
}

// expireIdle returns l to the head unless a task took it meanwhile.
func (a *Agent) expireIdle(q *shapeQueue, l *leased) {
	a.lmu.Lock()
	found := false
	for i, x := range q.idle {
		if x == l {
			q.idle = append(q.idle[:i], q.idle[i+1:]...)
			found = true
			break
		}
	}
	a.dropIdleLocked(q)
	a.lmu.Unlock()
	if found {
		a.returnLease(l)
	}
}

func (a *Agent) dropIdleLocked(q *shapeQueue) {
	if len(q.waiters) == 0 && q.inflight == 0 && len(q.idle) == 0 && a.shapes[q.key] == q {
		delete(a.shapes, q.key)
	}
}
