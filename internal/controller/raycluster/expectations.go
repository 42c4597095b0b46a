package raycluster

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// expectations remember the pod creates and deletes the controller issued and that the informer
// cache has not shown yet. A group with outstanding expectations is not scaled, so a slow cache
// can never make the controller create a pod twice or delete one pod too many.
//
// A create is satisfied when a pod of that name is in the cache (or after timeout, in case the
// pod was deleted before the cache ever saw it); a delete is satisfied when the pod (by UID) is
// gone from the cache or terminating.
type expectations struct {
	timeout time.Duration

	mu sync.Mutex
	// byGroup is keyed by cluster, then by group name (resources head group name for the head).
	byGroup map[types.NamespacedName]map[string]*groupExpectations
}

type groupExpectations struct {
	creates map[string]time.Time // pod name -> when the create was issued
	deletes map[types.UID]string // pod UID -> pod name
}

func newExpectations(timeout time.Duration) *expectations {
	return &expectations{timeout: timeout, byGroup: map[types.NamespacedName]map[string]*groupExpectations{}}
}

func (e *expectations) group(cluster types.NamespacedName, group string) *groupExpectations {
	groups := e.byGroup[cluster]
	if groups == nil {
		groups = map[string]*groupExpectations{}
		e.byGroup[cluster] = groups
	}
	g := groups[group]
	if g == nil {
		g = &groupExpectations{creates: map[string]time.Time{}, deletes: map[types.UID]string{}}
		groups[group] = g
	}
	return g
}

// expectCreate records that pod name was created at now.
func (e *expectations) expectCreate(cluster types.NamespacedName, group, name string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.group(cluster, group).creates[name] = now
}

// expectDelete records that the pod was deleted. The controller only deletes pods it found in the
// cache, so the pod's create (if still expected) was observed: it is dropped here, since the pod
// may leave the cache before satisfied looks at its group again (Recreate and suspend delete pods
// before any group is checked) and the group would then wait for the create timeout.
func (e *expectations) expectDelete(cluster types.NamespacedName, group string, pod *corev1.Pod) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.group(cluster, group)
	delete(g.creates, pod.Name)
	g.deletes[pod.UID] = pod.Name
}

// satisfied drops every expectation the cached pods of the group fulfil and reports whether
// none is left. When some are left, wakeAt is the earliest time a create expectation expires
// (zero when only deletes are outstanding: their completion always produces a watch event).
func (e *expectations) satisfied(cluster types.NamespacedName, group string, cached []corev1.Pod, now time.Time) (ok bool, wakeAt time.Time) {
	names := make(map[string]bool, len(cached))
	live := make(map[types.UID]bool, len(cached))
	for i := range cached {
		names[cached[i].Name] = true
		if cached[i].DeletionTimestamp == nil {
			live[cached[i].UID] = true
		}
	}
	return e.observed(cluster, group, names, live, now)
}

// createsSatisfied is satisfied for objects that are only ever created (Services): the group's
// create expectations are dropped when names (the cached objects of the group) holds them or
// they expired.
func (e *expectations) createsSatisfied(cluster types.NamespacedName, group string, names []string, now time.Time) (ok bool, wakeAt time.Time) {
	cached := make(map[string]bool, len(names))
	for _, n := range names {
		cached[n] = true
	}
	return e.observed(cluster, group, cached, nil, now)
}

// observed drops the expectations of group that the cache fulfils: creates whose name is in names
// (or expired), deletes whose UID is not in live.
func (e *expectations) observed(cluster types.NamespacedName, group string, names map[string]bool, live map[types.UID]bool, now time.Time) (ok bool, wakeAt time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	groups := e.byGroup[cluster]
	g := groups[group]
	if g == nil {
		return true, time.Time{}
	}
	for name, at := range g.creates {
		expiry := at.Add(e.timeout)
		if names[name] || !now.Before(expiry) {
			delete(g.creates, name)
			continue
		}
		if wakeAt.IsZero() || expiry.Before(wakeAt) {
			wakeAt = expiry
		}
	}
	for uid := range g.deletes {
		if !live[uid] {
			delete(g.deletes, uid)
		}
	}
	if len(g.creates) == 0 && len(g.deletes) == 0 {
		delete(groups, group)
		if len(groups) == 0 {
			delete(e.byGroup, cluster)
		}
		return true, time.Time{}
	}
	return false, wakeAt
}

// pendingCreates drops the create expectations of every group of the cluster that the cached
// pods (any group) fulfil or that expired, and reports whether any is left, with the earliest
// expiry. Deleting "every pod" acts on the cache, so a pod whose create is still pending would
// escape it: suspension and Recreate wait until no create is pending.
func (e *expectations) pendingCreates(cluster types.NamespacedName, cached []corev1.Pod, now time.Time) (pending bool, wakeAt time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	groups := e.byGroup[cluster]
	if len(groups) == 0 {
		return false, time.Time{}
	}
	names := make(map[string]bool, len(cached))
	for i := range cached {
		names[cached[i].Name] = true
	}
	for _, g := range groups {
		for name, at := range g.creates {
			expiry := at.Add(e.timeout)
			if names[name] || !now.Before(expiry) {
				delete(g.creates, name)
				continue
			}
			pending = true
			if wakeAt.IsZero() || expiry.Before(wakeAt) {
				wakeAt = expiry
			}
		}
	}
	return pending, wakeAt
}

// forget drops every expectation of a cluster (it was deleted, or all its pods are being
// recreated and the old expectations no longer matter).
func (e *expectations) forget(cluster types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byGroup, cluster)
}
