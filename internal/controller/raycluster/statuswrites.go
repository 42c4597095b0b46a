package raycluster

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// statusWrites remembers, per cluster, the resourceVersion its last status write replaced, until
// the cache shows a newer one. A reconcile that reads the replaced version would compute its
// status from before that write and patch again: with the optimistic lock that is a 409 (a wasted
// API write) and a retry. Such a reconcile reads the cluster past the cache instead.
type statusWrites struct {
	timeout time.Duration
	mu      sync.Mutex
	m       map[types.NamespacedName]replacedVersion
}

type replacedVersion struct {
	resourceVersion string
	at              time.Time
}

func newStatusWrites(timeout time.Duration) *statusWrites {
	return &statusWrites{timeout: timeout, m: map[types.NamespacedName]replacedVersion{}}
}

// wrote records that a status write at now replaced resourceVersion rv of cluster.
func (w *statusWrites) wrote(cluster types.NamespacedName, rv string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m[cluster] = replacedVersion{resourceVersion: rv, at: now}
}

// stale reports whether rv, read from the cache at now, is a version a status write already
// replaced. Once the cache has moved on (or after the timeout, should the write's watch event
// never arrive) the record is dropped.
func (w *statusWrites) stale(cluster types.NamespacedName, rv string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.m[cluster]
	if !ok {
		return false
	}
	if r.resourceVersion == rv && now.Sub(r.at) < w.timeout {
		return true
	}
	delete(w.m, cluster)
	return false
}

// forget drops what is kept for a deleted cluster.
func (w *statusWrites) forget(cluster types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, cluster)
}
