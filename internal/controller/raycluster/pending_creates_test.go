package raycluster

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// Unit tests of the pending-create guard: deleting "every pod" acts on the cache, so a pod created
// by the previous reconcile that the cache has not shown yet must hold back the end of a
// suspension and the Recreate pass.

func TestPendingCreates(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "c"}
	other := types.NamespacedName{Namespace: "ns", Name: "other"}
	e := newExpectations(30 * time.Second)
	e.expectCreate(key, rayv1.HeadGroupName, "h", testNow)
	e.expectCreate(key, "small", "w1", testNow.Add(5*time.Second))
	e.expectCreate(other, "small", "x", testNow)

	if pending, wake := e.pendingCreates(key, nil, testNow.Add(time.Second)); !pending || !wake.Equal(testNow.Add(30*time.Second)) {
		t.Fatalf("pending=%v wake=%v, want true and the earliest expiry", pending, wake)
	}
	// The head is cached: only the worker is pending, whatever group the cached pod is in.
	cached := []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "h"}}}
	if pending, wake := e.pendingCreates(key, cached, testNow.Add(time.Second)); !pending || !wake.Equal(testNow.Add(35*time.Second)) {
		t.Fatalf("pending=%v wake=%v, want true and the worker's expiry", pending, wake)
	}
	// Expired.
	if pending, _ := e.pendingCreates(key, nil, testNow.Add(35*time.Second)); pending {
		t.Fatal("an expired create is still pending")
	}
	// Another cluster's creates do not count, and a deleted pod's create is dropped.
	e.expectCreate(key, "small", "w2", testNow)
	pd := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "w2", UID: "u2"}}
	e.expectDelete(key, "small", &pd)
	if pending, _ := e.pendingCreates(key, nil, testNow); pending {
		t.Fatal("a create is pending after its pod was deleted")
	}
}

// unitReconciler is a Reconciler on a fake client holding objs, at testNow.
func unitReconciler(t *testing.T, objs ...client.Object) (*Reconciler, client.Client) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(objs...).
		WithStatusSubresource(&rayv1.RayCluster{}).Build()
	r, err := New(c, DefaultConfig(), reconcilekit.Deps{Clock: clocktesting.NewFakePassiveClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

func unitCluster() *rayv1.RayCluster {
	c := builders.RayCluster("ns", "c").WorkerGroup("small", 1, 0, 10).Obj()
	c.UID = "cluster-uid"
	return c
}

// cachedPod is a pod of the cluster as the cache shows it.
func cachedPod(c *rayv1.RayCluster, name string, t rayv1.RayNodeType, group string) corev1.Pod {
	p := pod(name, t, group, corev1.PodRunning, true)
	p.Namespace, p.UID = c.Namespace, types.UID(name+"-uid")
	p.Labels[rayv1.RayClusterLabelKey] = c.Name
	p.OwnerReferences = []metav1.OwnerReference{resources.OwnerReference(c)}
	return p
}

func podExists(t *testing.T, c client.Client, p *corev1.Pod) bool {
	t.Helper()
	err := c.Get(context.Background(), client.ObjectKeyFromObject(p), &corev1.Pod{})
	if err != nil && !isNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestSuspensionWaitsForPendingCreates(t *testing.T) {
	ctx := context.Background()
	c := unitCluster()
	c.Spec.Suspend = ptr.To(true)
	withCondition(c, rayv1.RayClusterSuspending, metav1.ConditionTrue, rayv1.RayClusterSuspendingReason)
	withCondition(c, rayv1.RayClusterSuspended, metav1.ConditionFalse, rayv1.RayClusterSuspendedReason)
	worker := cachedPod(c, "c-small-worker-new", rayv1.WorkerNode, "small")
	r, k := unitReconciler(t, c, &worker)
	key := client.ObjectKeyFromObject(c)
	// The previous reconcile (before Suspending was recorded) created the worker; the cache has
	// not shown it yet.
	r.exp.expectCreate(key, "small", worker.Name, testNow)

	pass := func(cached ...corev1.Pod) *scope {
		t.Helper()
		s := testScope(c, cached...)
		s.key, s.now = key, testNow.Add(time.Second)
		old := c.Status
		if err := r.reconcilePods(ctx, s); err != nil {
			t.Fatalf("reconcilePods: %v", err)
		}
		computeStatus(s, old, nil)
		return s
	}

	// 1. Nothing cached, but a create is pending: the suspension is not complete.
	s := pass()
	if conditionTrue(c.Status.Conditions, rayv1.RayClusterSuspended) || c.Status.State == rayv1.ClusterStateSuspended {
		t.Fatalf("Suspended recorded (state %q) while the create of %s is pending: the pod would run on in a suspended cluster", c.Status.State, worker.Name)
	}
	if !conditionTrue(c.Status.Conditions, rayv1.RayClusterSuspending) {
		t.Fatal("Suspending dropped while a create is pending")
	}
	if want := testNow.Add(DefaultExpectationTimeout); !s.requeueAt.Equal(want) {
		t.Errorf("requeueAt %v, want the expectation's expiry %v", s.requeueAt, want)
	}

	// 2. The pod reaches the cache: it is deleted, and the suspension waits for it to go.
	pass(worker)
	if podExists(t, k, &worker) {
		t.Fatalf("pod %s survived the suspension", worker.Name)
	}
	if conditionTrue(c.Status.Conditions, rayv1.RayClusterSuspended) {
		t.Fatal("Suspended recorded while a pod is still cached")
	}

	// 3. It left the cache: the suspension is complete.
	pass()
	if !conditionTrue(c.Status.Conditions, rayv1.RayClusterSuspended) || c.Status.State != rayv1.ClusterStateSuspended {
		t.Fatalf("not suspended (state %q, conditions %+v) once every pod is gone", c.Status.State, c.Status.Conditions)
	}
}

func TestRecreateWaitsForPendingCreates(t *testing.T) {
	ctx := context.Background()
	c := unitCluster()
	c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
	head := cachedPod(c, "c-head", rayv1.HeadNode, rayv1.HeadGroupName)
	worker := cachedPod(c, "c-small-worker-a", rayv1.WorkerNode, "small")
	r, k := unitReconciler(t, c, &head, &worker)
	// The head carries the hash of an older spec, stamped by this operator version.
	head.Annotations = map[string]string{
		rayv1.UpgradeStrategyRecreateHashKey: "old-hash",
		rayv1.KubeRayVersion:                 r.cfg.Resources.OperatorVersion,
	}
	key := client.ObjectKeyFromObject(c)
	r.exp.expectCreate(key, "small", "c-small-worker-b", testNow)

	s := testScope(c, head, worker)
	s.key, s.now = key, testNow.Add(time.Second)
	if err := r.reconcilePods(ctx, s); err != nil {
		t.Fatalf("reconcilePods: %v", err)
	}
	if !podExists(t, k, &head) || !podExists(t, k, &worker) {
		t.Fatal("Recreate deleted the cached pods while the create of c-small-worker-b is pending: that pod would survive with the old spec")
	}
	if want := testNow.Add(DefaultExpectationTimeout); !s.requeueAt.Equal(want) {
		t.Errorf("requeueAt %v, want the expectation's expiry %v", s.requeueAt, want)
	}

	// Once the pod is cached, every pod is deleted.
	late := cachedPod(c, "c-small-worker-b", rayv1.WorkerNode, "small")
	if err := k.Create(ctx, &late); err != nil {
		t.Fatal(err)
	}
	s = testScope(c, head, worker, late)
	s.key, s.now = key, testNow.Add(2*time.Second)
	if err := r.reconcilePods(ctx, s); err != nil {
		t.Fatalf("reconcilePods: %v", err)
	}
	for _, p := range []*corev1.Pod{&head, &worker, &late} {
		if podExists(t, k, p) {
			t.Errorf("pod %s not deleted by Recreate", p.Name)
		}
	}
}
