package raycluster

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Integration tests of upgradeStrategy Recreate and of multi-host worker groups (numOfHosts > 1)
// with their replica labels.

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
func waitObservedGeneration(key types.NamespacedName) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		c := getCluster(key)
		g.Expect(c.Status.ObservedGeneration).To(Equal(c.Generation), "observedGeneration")
	}).Should(Succeed(), "status.observedGeneration to reach the generation")
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

// replicaUIDs maps the replica's pod names to UIDs, for WithTransform.
func replicaUIDs(r *replica) map[string]types.UID { return r.uids }

func replicaIndexes(rs map[string]*replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.index)
	}
	sort.Strings(out)
	return out
}

// waitReplicas waits until the group has n complete, correctly labelled replicas and returns them.
func waitReplicas(ns, group string, hosts, n int) map[string]*replica {
	var rs map[string]*replica
	Eventually(func() error {
		pods := listPods(ns, rayv1.WorkerNode, group)
		got, err := multiHostReplicas(pods, group, hosts)
		if err != nil {
			return err
		}
		if len(got) != n || len(pods) != n*hosts {
			return fmt.Errorf("%d replicas with %d pods %v, want %d replicas", len(got), len(pods), podNames(pods), n)
		}
		rs = got
		return nil
	}).Should(Succeed(), fmt.Sprintf("%d replicas of %d hosts in group %s", n, hosts, group))
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
func checkWholeReplicasDeleted(mark int, ns string, want ...*replica) {
	GinkgoHelper()
	Expect(deletedPods(mark, ns)).To(Equal(podsOf(want...)), "the pods the controller deleted, want exactly the pods of the removed replicas")
}

// deletedInOnePass checks that one DeletedWorkerPod event names every pod of the replicas. The
// controller reports the worker pods it deletes in a reconcile in one event, so this tells that
// the whole replicas went at once, not one pod first and the rest later as "incomplete replicas"
// (which leaves a multi-host replica running without some of its hosts in between).
func deletedInOnePass(key types.NamespacedName, rs ...*replica) func() error {
	return func() error {
		var list eventsv1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(key.Namespace)); err != nil {
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

var _ = Describe("RayCluster upgrades and multi-host groups", func() {
	It("recreate upgrade strategy", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "rec").WorkerGroup("small", 2, 0, 10).Obj()
		c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")

		heads := listPods(ns, rayv1.HeadNode, "")
		Expect(podNames(heads)).To(HaveLen(1), "head pods")
		oldHash := resources.ClusterSpecHash(getCluster(key))
		Expect(heads[0].Annotations).To(HaveKeyWithValue(rayv1.UpgradeStrategyRecreateHashKey, oldHash), "head pod annotation, want the spec hash")
		before := podUIDs(listPods(ns, "", ""))
		Expect(before).To(HaveLen(3), "pods, want 1 head and 2 workers")

		// Changing replicas only is not a template change: nothing is recreated, one worker is added.
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3) })
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(3), "3 workers")
		waitObservedGeneration(key)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready with 3 workers")
		waitReconciled(key)
		all := listPods(ns, "", "")
		now := podUIDs(all)
		for name, uid := range before {
			Expect(now).To(HaveKeyWithValue(name, uid), "pod %s (uid %s) was recreated by a replicas-only change", name, uid)
		}
		Expect(podNames(all)).To(HaveLen(4), "pods, want the 3 original pods and 1 new worker")
		Expect(listPods(ns, rayv1.HeadNode, "")[0].Annotations).To(HaveKeyWithValue(rayv1.UpgradeStrategyRecreateHashKey, oldHash),
			"head hash annotation changed by a replicas-only change")
		before = podUIDs(all)

		// A new env var in the worker template changes the spec hash: every pod, the head included,
		// is deleted and recreated from the new template.
		updateCluster(key, func(c *rayv1.RayCluster) {
			ctr := &c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0]
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: testEnvName, Value: "1"})
		})
		newHash := resources.ClusterSpecHash(getCluster(key))
		Expect(newHash).NotTo(Equal(oldHash), "the spec hash did not change with the worker template")
		Eventually(func() error {
			pods := listPods(ns, "", "")
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
		}).Should(Succeed(), "every pod recreated with the new template")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready after the recreation")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventDeletedPod, "upgradeStrategy is Recreate"), "DeletedPod event")

		// Converged on the new hash: no further recreation.
		after := podUIDs(listPods(ns, "", ""))
		waitReconciled(key)
		Expect(sameUIDs(listPods(ns, "", ""), after)).To(Succeed(), "pods changed again after the recreation converged")
	})

	// TestRecreateRightAfterScaleUp changes the template while the pods of a scale-up are just being
	// created: the Recreate pass then deletes pods the controller created one reconcile earlier. The
	// recreated cluster must come up without waiting for the pod-create expectation timeout.
	It("recreate right after scale up", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "recup").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		before := podUIDs(listPods(ns, "", ""))

		// The bound counts from the first change and equals the expectation timeout on purpose: a
		// create expectation left behind by the deleted pods blocks the group until it expires, so
		// the cluster could only converge after this deadline.
		deadline := time.Now().Add(DefaultExpectationTimeout)
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](4) })
		updateCluster(key, func(c *rayv1.RayCluster) {
			ctr := &c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0]
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: testEnvName, Value: "1"})
		})
		newHash := resources.ClusterSpecHash(getCluster(key))
		converged := func() error {
			pods := listPods(ns, "", "")
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
			if s := getCluster(key).Status.State; s != rayv1.ClusterStateReady {
				return fmt.Errorf("state is %q, want %q", s, rayv1.ClusterStateReady)
			}
			return nil
		}
		Eventually(converged).WithTimeout(time.Until(deadline)).Should(Succeed(),
			"the cluster did not converge on the new template before the %s create-expectation timeout elapsed", DefaultExpectationTimeout)
	})

	It("default upgrade strategy does not touch running pods", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "norec").WorkerGroup("small", 2, 0, 10).Obj()
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		before := podUIDs(listPods(ns, "", ""))
		Expect(before).To(HaveLen(3), "pods, want 1 head and 2 workers")
		// KubeRay stamps the spec hash on every head pod; without Recreate it only records it.
		Expect(listPods(ns, rayv1.HeadNode, "")[0].Annotations).To(HaveKeyWithValue(rayv1.UpgradeStrategyRecreateHashKey, resources.ClusterSpecHash(getCluster(key))),
			"head pod annotation without upgradeStrategy Recreate, want the spec hash")

		updateCluster(key, func(c *rayv1.RayCluster) {
			for _, ctr := range []*corev1.Container{
				&c.Spec.HeadGroupSpec.Template.Spec.Containers[0],
				&c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0],
			} {
				ctr.Env = append(ctr.Env, corev1.EnvVar{Name: testEnvName, Value: "1"})
			}
		})
		waitObservedGeneration(key)
		waitReconciled(key)
		Expect(sameUIDs(listPods(ns, "", ""), before)).To(Succeed(), "a template change with the default upgrade strategy touched running pods")
		Expect(getCluster(key)).To(HaveState(rayv1.ClusterStateReady), "state after a template change")

		// Only pods created from now on get the new template.
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3) })
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(3), "3 workers")
		for _, p := range listPods(ns, "", "") {
			_, old := before[p.Name]
			Expect(hasEnv(rayContainerOf(&p), testEnvName)).To(Equal(!old), "pod %s (existing before the change: %v) has the new env var", p.Name, old)
		}
	})

	It("multi-host groups are managed by replica", func() {
		const group, hosts = "tpu", 2
		ns := newNamespace()
		c := builders.RayCluster(ns, "mh").WorkerGroup(group, 2, 0, 4).Obj()
		c.Spec.WorkerGroupSpecs[0].NumOfHosts = hosts
		create(c)
		key := client.ObjectKeyFromObject(c)

		// 2 replicas x 2 hosts = 4 pods, labelled by replica name, replica index and host index.
		rs := waitReplicas(ns, group, hosts, 2)
		Expect(replicaIndexes(rs)).To(Equal([]string{"0", "1"}), "replica indexes")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		st := getCluster(key).Status
		Expect([]int32{st.DesiredWorkerReplicas, st.ReadyWorkerReplicas}).To(Equal([]int32{4, 4}),
			"status desired/ready workers, want 4/4 (pods, replicas x numOfHosts)")
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
		victim := listPods(ns, rayv1.WorkerNode, group)
		victim = slices.DeleteFunc(victim, func(p corev1.Pod) bool { return p.Name != failing.pods["1"] })
		Expect(victim).To(HaveLen(1), "pod %s of replica %s not found", failing.pods["1"], failing.name)
		setPodStatus(&victim[0], func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed })
		Eventually(func() error {
			pods := listPods(ns, rayv1.WorkerNode, group)
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
		}).Should(Succeed(), "the failed replica replaced")
		checkWholeReplicasDeleted(mark, ns, failing)
		for _, r := range rs {
			if r.name != healthy.name {
				Expect(r.index).To(Equal(failing.index), "the new replica %s, want the freed index", r.name)
			}
		}
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready again")

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
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1)
			c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = []string{doomed.pods["1"]}
		})
		rs = waitReplicas(ns, group, hosts, 1)
		Expect(rs).To(HaveKeyWithValue(kept.name, WithTransform(replicaUIDs, Equal(kept.uids))),
			"after workersToDelete, want the remaining replica %s with pods %v", kept.name, kept.uids)
		waitObservedGeneration(key)
		waitReconciled(key)
		Expect(sameUIDs(listPods(ns, rayv1.WorkerNode, group), kept.uids)).To(Succeed(), "after workersToDelete")
		checkWholeReplicasDeleted(mark, ns, doomed)
		Eventually(deletedInOnePass(key, doomed)).Should(Succeed(), "one event for the deleted replica")

		// Scale up to 3 replicas, then down to 1: only whole replicas are removed.
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3)
			c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = nil
		})
		rs = waitReplicas(ns, group, hosts, 3)
		Expect(replicaIndexes(rs)).To(Equal([]string{"0", "1", "2"}), "replica indexes after scaling to 3")
		Expect(rs).To(HaveKeyWithValue(kept.name, WithTransform(replicaUIDs, Equal(kept.uids))), "scaling up touched replica %s", kept.name)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready with 3 replicas")
		beforeDown := rs
		mark = writes.mark()
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1) })
		rs = waitReplicas(ns, group, hosts, 1)
		waitObservedGeneration(key)
		waitReconciled(key)
		var survivor *replica
		for name, r := range rs {
			Expect(beforeDown).To(HaveKeyWithValue(name, WithTransform(replicaUIDs, Equal(r.uids))),
				"the remaining replica %s (pods %v) is not one of the replicas before the scale down", name, r.uids)
			survivor = beforeDown[name]
		}
		Expect(sameUIDs(listPods(ns, rayv1.WorkerNode, group), survivor.uids)).To(Succeed(), "after scaling down")
		var removed []*replica
		for name, r := range beforeDown {
			if name != survivor.name {
				removed = append(removed, r)
			}
		}
		checkWholeReplicasDeleted(mark, ns, removed...)
		Eventually(deletedInOnePass(key, removed...)).Should(Succeed(), "one event for the removed replicas")
		Eventually(clusterOf(key)).Should(And(
			HaveState(rayv1.ClusterStateReady),
			HaveField("Status.DesiredWorkerReplicas", int32(2)),
			HaveField("Status.ReadyWorkerReplicas", int32(2))), "ready with 1 replica, 2/2 workers")
	})
})
