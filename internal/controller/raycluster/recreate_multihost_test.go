package raycluster

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Integration tests of upgradeStrategy Recreate and of multi-host worker groups (numOfHosts > 1),
// kuberay.md §3.1 and the replica labels of §2.1.

const testEnvName = "RAYK8S_TEST_NEW_ENV"

// podUIDs maps pod name to UID.
func podUIDs(pods []corev1.Pod) map[string]types.UID {
	out := make(map[string]types.UID, len(pods))
	for _, p := range pods {
		out[p.Name] = p.UID
	}
	return out
}

// sameUIDs reports an error unless pods are exactly the pods of want (by name and UID).
func sameUIDs(pods []corev1.Pod, want map[string]types.UID) error {
	got := podUIDs(pods)
	if !maps.Equal(got, want) {
		return fmt.Errorf("pods %v, want the untouched pods %v", got, want)
	}
	return nil
}

// rayContainerOf returns the Ray container of a pod built by the suite (always the first).
func rayContainerOf(p *corev1.Pod) *corev1.Container { return &p.Spec.Containers[0] }

// waitObservedGeneration waits until the controller has finished a reconcile of the current
// generation (status.observedGeneration is written only by a reconcile without error), so that
// whatever the controller does in reaction to a spec change has been issued.
func waitObservedGeneration(t *testing.T, key types.NamespacedName) {
	t.Helper()
	eventually(t, "status.observedGeneration to reach the generation", func() error {
		c := getCluster(t, key)
		if c.Status.ObservedGeneration != c.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", c.Status.ObservedGeneration, c.Generation)
		}
		return nil
	})
}

func TestRecreateUpgradeStrategy(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "rec").workers("small", 2, 0, 10).obj()
	c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))

	heads := listPods(t, ns, rayv1.HeadNode, "")
	if len(heads) != 1 {
		t.Fatalf("head pods %v, want 1", podNames(heads))
	}
	oldHash := resources.ClusterSpecHash(getCluster(t, key))
	if got := heads[0].Annotations[rayv1.UpgradeStrategyRecreateHashKey]; got != oldHash {
		t.Fatalf("head pod annotation %s = %q, want the spec hash %q", rayv1.UpgradeStrategyRecreateHashKey, got, oldHash)
	}
	before := podUIDs(listPods(t, ns, "", ""))
	if len(before) != 3 {
		t.Fatalf("pods %v, want 1 head and 2 workers", before)
	}

	// Changing replicas only is not a template change: nothing is recreated, one worker is added.
	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3) })
	eventually(t, "3 workers", countPods(t, ns, rayv1.WorkerNode, "small", 3))
	waitObservedGeneration(t, key)
	eventually(t, "ready with 3 workers", stateIs(t, key, rayv1.ClusterStateReady))
	waitReconciled(t, key)
	all := listPods(t, ns, "", "")
	now := podUIDs(all)
	for name, uid := range before {
		if now[name] != uid {
			t.Fatalf("pod %s (uid %s) was recreated by a replicas-only change; pods now %v", name, uid, now)
		}
	}
	if len(all) != 4 {
		t.Fatalf("pods %v, want the 3 original pods and 1 new worker", podNames(all))
	}
	if got := listPods(t, ns, rayv1.HeadNode, "")[0].Annotations[rayv1.UpgradeStrategyRecreateHashKey]; got != oldHash {
		t.Fatalf("head hash annotation changed to %q by a replicas-only change (was %q)", got, oldHash)
	}
	before = podUIDs(all)

	// A new env var in the worker template changes the spec hash: every pod, the head included,
	// is deleted and recreated from the new template.
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		ctr := &c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0]
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: testEnvName, Value: "1"})
	})
	newHash := resources.ClusterSpecHash(getCluster(t, key))
	if newHash == oldHash {
		t.Fatalf("the spec hash did not change with the worker template (%s)", newHash)
	}
	eventually(t, "every pod recreated with the new template", func() error {
		pods := listPods(t, ns, "", "")
		var heads, workers []string
		for _, p := range pods {
			if _, old := before[p.Name]; old {
				return fmt.Errorf("pod %s from before the change still exists", p.Name)
			}
			switch p.Labels[rayv1.RayNodeTypeLabelKey] {
			case string(rayv1.HeadNode):
				heads = append(heads, p.Name)
				if got := p.Annotations[rayv1.UpgradeStrategyRecreateHashKey]; got != newHash {
					return fmt.Errorf("head %s has hash %q, want %q", p.Name, got, newHash)
				}
			case string(rayv1.WorkerNode):
				workers = append(workers, p.Name)
				if !hasEnv(rayContainerOf(&p), testEnvName) {
					return fmt.Errorf("worker %s lacks the new env var %s", p.Name, testEnvName)
				}
			}
		}
		if len(heads) != 1 || len(workers) != 3 {
			return fmt.Errorf("heads %v and workers %v, want 1 and 3", heads, workers)
		}
		return nil
	})
	eventually(t, "ready after the recreation", stateIs(t, key, rayv1.ClusterStateReady))
	eventually(t, "DeletedPod event", hasEvent(t, key, corev1.EventTypeNormal, EventDeletedPod, "upgradeStrategy is Recreate"))

	// Converged on the new hash: no further recreation.
	after := podUIDs(listPods(t, ns, "", ""))
	waitReconciled(t, key)
	if err := sameUIDs(listPods(t, ns, "", ""), after); err != nil {
		t.Fatalf("pods changed again after the recreation converged: %v", err)
	}
}

// TestRecreateRightAfterScaleUp changes the template while the pods of a scale-up are just being
// created: the Recreate pass then deletes pods the controller created one reconcile earlier. The
// recreated cluster must come up without waiting for the pod-create expectation timeout.
func TestRecreateRightAfterScaleUp(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "recup").workers("small", 1, 0, 10).obj()
	c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	before := podUIDs(listPods(t, ns, "", ""))

	// The bound counts from the first change and equals the expectation timeout on purpose: a
	// create expectation left behind by the deleted pods blocks the group until it expires, so
	// the cluster could only converge after this deadline.
	deadline := time.Now().Add(DefaultExpectationTimeout)
	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](4) })
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		ctr := &c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0]
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: testEnvName, Value: "1"})
	})
	newHash := resources.ClusterSpecHash(getCluster(t, key))
	converged := func() error {
		pods := listPods(t, ns, "", "")
		var workers int
		for _, p := range pods {
			if _, old := before[p.Name]; old {
				return fmt.Errorf("pod %s from before the change still exists", p.Name)
			}
			switch p.Labels[rayv1.RayNodeTypeLabelKey] {
			case string(rayv1.HeadNode):
				if got := p.Annotations[rayv1.UpgradeStrategyRecreateHashKey]; got != newHash {
					return fmt.Errorf("head %s has hash %q, want %q", p.Name, got, newHash)
				}
			case string(rayv1.WorkerNode):
				workers++
				if !hasEnv(rayContainerOf(&p), testEnvName) {
					return fmt.Errorf("worker %s has the old template", p.Name)
				}
			}
		}
		if workers != 4 || len(pods) != 5 {
			return fmt.Errorf("pods %v, want 1 head and 4 workers", podNames(pods))
		}
		return stateIs(t, key, rayv1.ClusterStateReady)()
	}
	for {
		err := converged()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not converge on the new template before the %s create-expectation timeout elapsed: %v", DefaultExpectationTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDefaultUpgradeStrategyDoesNotTouchRunningPods(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "norec").workers("small", 2, 0, 10).obj()
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	before := podUIDs(listPods(t, ns, "", ""))
	if len(before) != 3 {
		t.Fatalf("pods %v, want 1 head and 2 workers", before)
	}
	// KubeRay stamps the spec hash on every head pod; without Recreate it only records it.
	if a := listPods(t, ns, rayv1.HeadNode, "")[0].Annotations[rayv1.UpgradeStrategyRecreateHashKey]; a != resources.ClusterSpecHash(getCluster(t, key)) {
		t.Errorf("head pod has %s=%q, want the spec hash", rayv1.UpgradeStrategyRecreateHashKey, a)
	}

	updateCluster(t, key, func(c *rayv1.RayCluster) {
		for _, ctr := range []*corev1.Container{
			&c.Spec.HeadGroupSpec.Template.Spec.Containers[0],
			&c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0],
		} {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: testEnvName, Value: "1"})
		}
	})
	waitObservedGeneration(t, key)
	waitReconciled(t, key)
	if err := sameUIDs(listPods(t, ns, "", ""), before); err != nil {
		t.Fatalf("a template change with the default upgrade strategy touched running pods: %v", err)
	}
	if s := getCluster(t, key).Status.State; s != rayv1.ClusterStateReady {
		t.Fatalf("state %q after a template change, want ready", s)
	}

	// Only pods created from now on get the new template.
	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3) })
	eventually(t, "3 workers", countPods(t, ns, rayv1.WorkerNode, "small", 3))
	for _, p := range listPods(t, ns, "", "") {
		_, old := before[p.Name]
		if has := hasEnv(rayContainerOf(&p), testEnvName); has == old {
			t.Errorf("pod %s (existing before the change: %v) has the new env var: %v", p.Name, old, has)
		}
	}
}

// replica is what the tests know about one multi-host replica.
type replica struct {
	name  string
	index string            // ray.io/worker-group-replica-index shared by its hosts
	pods  map[string]string // host index -> pod name
	uids  map[string]types.UID
}

// multiHostReplicas groups a multi-host group's pods by replica name and checks the labels: every
// replica has exactly the hosts 0..hosts-1, its pods share one replica index, and replica indexes
// are distinct.
func multiHostReplicas(pods []corev1.Pod, group string, hosts int) (map[string]*replica, error) {
	out := map[string]*replica{}
	for _, p := range pods {
		rn, ok := p.Labels[rayv1.RayWorkerReplicaNameKey]
		if !ok {
			return nil, fmt.Errorf("pod %s has no %s label", p.Name, rayv1.RayWorkerReplicaNameKey)
		}
		if !strings.HasPrefix(rn, group+"-") {
			return nil, fmt.Errorf("pod %s: replica name %q does not start with %q", p.Name, rn, group+"-")
		}
		r := out[rn]
		if r == nil {
			r = &replica{name: rn, index: p.Labels[rayv1.RayWorkerReplicaIndexKey], pods: map[string]string{}, uids: map[string]types.UID{}}
			out[rn] = r
		}
		if idx := p.Labels[rayv1.RayWorkerReplicaIndexKey]; idx == "" || idx != r.index {
			return nil, fmt.Errorf("pod %s of replica %s has replica index %q, its replica has %q", p.Name, rn, idx, r.index)
		}
		h := p.Labels[rayv1.RayHostIndexKey]
		if prev, dup := r.pods[h]; dup {
			return nil, fmt.Errorf("pods %s and %s of replica %s both have host index %q", prev, p.Name, rn, h)
		}
		r.pods[h] = p.Name
		r.uids[p.Name] = p.UID
	}
	indexes := map[string]string{}
	for _, r := range out {
		if len(r.pods) != hosts {
			return nil, fmt.Errorf("replica %s has hosts %v, want %d", r.name, r.pods, hosts)
		}
		for h := range hosts {
			if _, ok := r.pods[fmt.Sprint(h)]; !ok {
				return nil, fmt.Errorf("replica %s has hosts %v, missing host index %d", r.name, r.pods, h)
			}
		}
		if other, dup := indexes[r.index]; dup {
			return nil, fmt.Errorf("replicas %s and %s share replica index %s", other, r.name, r.index)
		}
		indexes[r.index] = r.name
	}
	return out, nil
}

func replicaIndexes(rs map[string]*replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.index)
	}
	sort.Strings(out)
	return out
}

// waitReplicas waits until the group has n complete, correctly labelled replicas and returns them.
func waitReplicas(t *testing.T, ns, group string, hosts, n int) map[string]*replica {
	t.Helper()
	var rs map[string]*replica
	eventually(t, fmt.Sprintf("%d replicas of %d hosts in group %s", n, hosts, group), func() error {
		pods := listPods(t, ns, rayv1.WorkerNode, group)
		got, err := multiHostReplicas(pods, group, hosts)
		if err != nil {
			return err
		}
		if len(got) != n || len(pods) != n*hosts {
			return fmt.Errorf("%d replicas with %d pods %v, want %d replicas", len(got), len(pods), podNames(pods), n)
		}
		rs = got
		return nil
	})
	return rs
}

// deletedPods returns the names of the pods the controller deleted in namespace ns since mark.
func deletedPods(mark int, ns string) []string {
	var out []string
	for _, w := range writes.since(mark, ns) {
		if _, name, ok := strings.Cut(w, " delete *v1.Pod/"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// podsOf returns the sorted pod names of replicas.
func podsOf(rs ...*replica) []string {
	var out []string
	for _, r := range rs {
		for _, p := range r.pods {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// checkWholeReplicasDeleted fails unless the pods the controller deleted since mark are exactly
// the pods of the replicas want (each pod once: the controller must never delete a pod twice
// either, which would show a stale cache).
func checkWholeReplicasDeleted(t *testing.T, mark int, ns string, want ...*replica) {
	t.Helper()
	if got, w := deletedPods(mark, ns), podsOf(want...); !slices.Equal(got, w) {
		t.Fatalf("the controller deleted pods %v, want exactly the pods of the removed replicas %v", got, w)
	}
}

// deletedInOnePass checks that one DeletedWorkerPod event names every pod of the replicas. The
// controller reports the worker pods it deletes in a reconcile in one event, so this tells that
// the whole replicas went at once, not one pod first and the rest later as "incomplete replicas"
// (which leaves a multi-host replica running without some of its hosts in between).
func deletedInOnePass(t *testing.T, key types.NamespacedName, rs ...*replica) func() error {
	return func() error {
		var list eventsv1.EventList
		if err := k8s.List(t.Context(), &list, client.InNamespace(key.Namespace)); err != nil {
			return err
		}
		want := podsOf(rs...)
		var notes []string
		for _, e := range list.Items {
			if e.Regarding.Kind != "RayCluster" || e.Regarding.Name != key.Name || e.Reason != EventDeletedWorkerPod {
				continue
			}
			if !slices.ContainsFunc(want, func(p string) bool { return !strings.Contains(e.Note, p) }) {
				return nil
			}
			notes = append(notes, e.Note)
		}
		return fmt.Errorf("no %s event names all of %v together; events: %q", EventDeletedWorkerPod, want, notes)
	}
}

func TestMultiHostGroupsAreManagedByReplica(t *testing.T) {
	const group, hosts = "tpu", 2
	ns := newNamespace(t)
	c := makeCluster(ns, "mh").workers(group, 2, 0, 4).obj()
	c.Spec.WorkerGroupSpecs[0].NumOfHosts = hosts
	create(t, c)
	key := client.ObjectKeyFromObject(c)

	// 2 replicas x 2 hosts = 4 pods, labelled by replica name, replica index and host index.
	rs := waitReplicas(t, ns, group, hosts, 2)
	if got := replicaIndexes(rs); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("replica indexes %v, want [0 1]", got)
	}
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	if s := getCluster(t, key).Status; s.DesiredWorkerReplicas != 4 || s.ReadyWorkerReplicas != 4 {
		t.Errorf("status desired/ready workers %d/%d, want 4/4 (pods, replicas x numOfHosts)", s.DesiredWorkerReplicas, s.ReadyWorkerReplicas)
	}
	var failing, healthy *replica
	for _, r := range rs {
		if r.index == "0" {
			failing = r
		} else {
			healthy = r
		}
	}

	// One failed host: its whole replica is replaced (same replica index, new replica name, new
	// pods); the other replica is untouched.
	mark := writes.mark()
	victim := listPods(t, ns, rayv1.WorkerNode, group)
	victim = slices.DeleteFunc(victim, func(p corev1.Pod) bool { return p.Name != failing.pods["1"] })
	if len(victim) != 1 {
		t.Fatalf("pod %s of replica %s not found", failing.pods["1"], failing.name)
	}
	setPodStatus(t, &victim[0], func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed })
	eventually(t, "the failed replica replaced", func() error {
		pods := listPods(t, ns, rayv1.WorkerNode, group)
		got, err := multiHostReplicas(pods, group, hosts)
		if err != nil {
			return err
		}
		if len(got) != 2 {
			return fmt.Errorf("replicas %v, want 2", slices.Sorted(maps.Keys(got)))
		}
		if _, ok := got[failing.name]; ok {
			return fmt.Errorf("replica %s with a failed host still exists", failing.name)
		}
		h, ok := got[healthy.name]
		if !ok {
			return fmt.Errorf("healthy replica %s is gone; replicas %v", healthy.name, slices.Sorted(maps.Keys(got)))
		}
		if !maps.Equal(h.uids, healthy.uids) {
			return fmt.Errorf("healthy replica %s pods changed: %v, were %v", healthy.name, h.uids, healthy.uids)
		}
		rs = got
		return nil
	})
	checkWholeReplicasDeleted(t, mark, ns, failing)
	for _, r := range rs {
		if r.name != healthy.name && r.index != failing.index {
			t.Errorf("the new replica %s has index %s, want the freed index %s", r.name, r.index, failing.index)
		}
	}
	eventually(t, "ready again", stateIs(t, key, rayv1.ClusterStateReady))

	// A pod named in workersToDelete removes its whole replica when replicas is lowered; the
	// other replica stays as it is and nothing is recreated.
	var doomed, kept *replica
	for _, r := range rs {
		if r.name == healthy.name {
			doomed = r
		} else {
			kept = r
		}
	}
	mark = writes.mark()
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1)
		c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = []string{doomed.pods["1"]}
	})
	rs = waitReplicas(t, ns, group, hosts, 1)
	if _, ok := rs[kept.name]; !ok || !maps.Equal(rs[kept.name].uids, kept.uids) {
		t.Fatalf("after workersToDelete the remaining replica is %v, want %s with pods %v", slices.Sorted(maps.Keys(rs)), kept.name, kept.uids)
	}
	waitObservedGeneration(t, key)
	waitReconciled(t, key)
	if err := sameUIDs(listPods(t, ns, rayv1.WorkerNode, group), kept.uids); err != nil {
		t.Fatalf("after workersToDelete: %v", err)
	}
	checkWholeReplicasDeleted(t, mark, ns, doomed)
	eventually(t, "one event for the deleted replica", deletedInOnePass(t, key, doomed))

	// Scale up to 3 replicas, then down to 1: only whole replicas are removed.
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3)
		c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = nil
	})
	rs = waitReplicas(t, ns, group, hosts, 3)
	if got := replicaIndexes(rs); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("replica indexes after scaling to 3: %v, want [0 1 2]", got)
	}
	if _, ok := rs[kept.name]; !ok || !maps.Equal(rs[kept.name].uids, kept.uids) {
		t.Fatalf("scaling up touched replica %s: replicas %v", kept.name, slices.Sorted(maps.Keys(rs)))
	}
	eventually(t, "ready with 3 replicas", stateIs(t, key, rayv1.ClusterStateReady))
	beforeDown := rs
	mark = writes.mark()
	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1) })
	rs = waitReplicas(t, ns, group, hosts, 1)
	waitObservedGeneration(t, key)
	waitReconciled(t, key)
	var survivor *replica
	for name, r := range rs {
		old, ok := beforeDown[name]
		if !ok || !maps.Equal(old.uids, r.uids) {
			t.Fatalf("the remaining replica %s (pods %v) is not one of the replicas before the scale down", name, r.uids)
		}
		survivor = old
	}
	if err := sameUIDs(listPods(t, ns, rayv1.WorkerNode, group), survivor.uids); err != nil {
		t.Fatalf("after scaling down: %v", err)
	}
	var removed []*replica
	for name, r := range beforeDown {
		if name != survivor.name {
			removed = append(removed, r)
		}
	}
	checkWholeReplicasDeleted(t, mark, ns, removed...)
	eventually(t, "one event for the removed replicas", deletedInOnePass(t, key, removed...))
	eventually(t, "ready with 1 replica", func() error {
		s := getCluster(t, key).Status
		if s.State != rayv1.ClusterStateReady || s.DesiredWorkerReplicas != 2 || s.ReadyWorkerReplicas != 2 {
			return fmt.Errorf("state %q desired %d ready %d, want ready 2/2", s.State, s.DesiredWorkerReplicas, s.ReadyWorkerReplicas)
		}
		return nil
	})
}
