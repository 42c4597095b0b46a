package e2e

import (
	"context"
	"slices"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// One RayCluster goes through its life in order: each step starts from the state the last one
// left, as a user's cluster would.
var _ = ginkgo.Describe("RayCluster", ginkgo.Ordered, func() {
	var (
		ns   string
		name string
	)

	// update applies change to the RayCluster, retrying on conflicts.
	update := func(ctx context.Context, change func(*rayv1.RayCluster)) {
		updateObject(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rayv1.RayCluster{}, change)
	}
	setReplicas := func(ctx context.Context, n int32, toDelete ...string) {
		update(ctx, func(rc *rayv1.RayCluster) {
			rc.Spec.WorkerGroupSpecs[0].Replicas = ptr.To(n)
			rc.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = toDelete
		})
	}

	ginkgo.BeforeAll(func(ctx context.Context) {
		ns = newNamespace(ctx)
	})

	ginkgo.It("runs the sample: pods Running and Ready, workers registered with the head", func(ctx context.Context) {
		rc := loadSample()
		rc.Namespace = ns
		name = rc.Name
		gomega.Expect(cl.Create(ctx, rc)).To(gomega.Succeed())
		n := int(ptr.Deref(rc.Spec.WorkerGroupSpecs[0].Replicas, 1))
		gomega.Eventually(clusterUp(ctx, ns, name, n)).WithContext(ctx).Should(gomega.Succeed())
		gomega.Eventually(func() (string, error) { return dashboardVersion(ctx, ns, name) }).WithContext(ctx).
			Should(gomega.ContainSubstring(`"ray_version"`), "dashboard /api/version through the API server's service proxy")
	})

	ginkgo.It("scales the worker group up and down", func(ctx context.Context) {
		setReplicas(ctx, 3)
		gomega.Eventually(clusterUp(ctx, ns, name, 3)).WithContext(ctx).Should(gomega.Succeed())
		setReplicas(ctx, 1)
		gomega.Eventually(clusterUp(ctx, ns, name, 1)).WithContext(ctx).Should(gomega.Succeed())
	})

	ginkgo.It("deletes exactly the workers named in workersToDelete", func(ctx context.Context) {
		setReplicas(ctx, 2)
		gomega.Eventually(clusterUp(ctx, ns, name, 2)).WithContext(ctx).Should(gomega.Succeed())
		workers := rayPods(ctx, ns, name, "worker")
		victim, keep := workers[0], workers[1]
		setReplicas(ctx, 1, victim.Name)
		gomega.Eventually(func(g gomega.Gomega) {
			var p corev1.Pod
			err := cl.Get(ctx, client.ObjectKeyFromObject(&victim), &p)
			g.Expect(apierrors.IsNotFound(err) || err == nil && p.UID != victim.UID).To(gomega.BeTrue(), "pod %s deleted", victim.Name)
		}).WithContext(ctx).Should(gomega.Succeed())
		gomega.Eventually(clusterUp(ctx, ns, name, 1)).WithContext(ctx).Should(gomega.Succeed())
		left := rayPods(ctx, ns, name, "worker")
		gomega.Expect(left).To(gomega.HaveLen(1))
		gomega.Expect(left[0].UID).To(gomega.Equal(keep.UID), "the worker not named in workersToDelete is kept")
	})

	ginkgo.It("suspends (every pod gone) and resumes", func(ctx context.Context) {
		update(ctx, func(rc *rayv1.RayCluster) { rc.Spec.Suspend = ptr.To(true) })
		gomega.Eventually(func(g gomega.Gomega) {
			rc := &rayv1.RayCluster{}
			g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rc)).To(gomega.Succeed())
			g.Expect(rc.Status.State).To(gomega.Equal(rayv1.ClusterStateSuspended))
			var pods corev1.PodList
			g.Expect(cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"ray.io/cluster": name})).To(gomega.Succeed())
			g.Expect(pods.Items).To(gomega.BeEmpty(), "pods of a suspended cluster")
		}).WithContext(ctx).Should(gomega.Succeed())
		update(ctx, func(rc *rayv1.RayCluster) { rc.Spec.Suspend = ptr.To(false) })
		gomega.Eventually(clusterUp(ctx, ns, name, 1)).WithContext(ctx).Should(gomega.Succeed())
	})

	ginkgo.It("recovers when the head's Ray process is killed: head restarted, workers re-register", func(ctx context.Context) {
		heads := rayPods(ctx, ns, name, "head")
		gomega.Expect(heads).To(gomega.HaveLen(1))
		before := heads[0]
		restarts := func(p *corev1.Pod) int32 {
			var n int32
			for _, s := range p.Status.ContainerStatuses {
				n += s.RestartCount
			}
			return n
		}
		// Every process of the head container but its init (pid 1) gets SIGTERM: `ray start`
		// dies and the container exits. The exec's own stream may be cut.
		_, _ = execIn(ctx, &before, before.Spec.Containers[0].Name, "bash", "-c", "kill -TERM -1")
		gomega.Eventually(func(g gomega.Gomega) {
			heads := rayPods(ctx, ns, name, "head")
			g.Expect(heads).To(gomega.HaveLen(1))
			g.Expect(heads[0].UID != before.UID || restarts(&heads[0]) > restarts(&before)).To(gomega.BeTrue(),
				"head pod restarted or replaced")
		}).WithContext(ctx).Should(gomega.Succeed())
		gomega.Eventually(clusterUp(ctx, ns, name, 1)).WithContext(ctx).Should(gomega.Succeed())
	})

	ginkgo.It("garbage-collects every pod and service when deleted", func(ctx context.Context) {
		rc := &rayv1.RayCluster{}
		gomega.Expect(cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, rc)).To(gomega.Succeed())
		gomega.Expect(cl.Delete(ctx, rc)).To(gomega.Succeed())
		gomega.Eventually(func() []string { return leftovers(ctx, ns, name) }).WithContext(ctx).Should(gomega.BeEmpty())
		var pods corev1.PodList
		gomega.Expect(cl.List(ctx, &pods, client.InNamespace(ns))).To(gomega.Succeed())
		gomega.Expect(slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return p.Labels["ray.io/cluster"] == name })).To(gomega.BeFalse())
	})
})
