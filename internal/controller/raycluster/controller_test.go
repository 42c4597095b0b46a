package raycluster

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"context"
	"fmt"

	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// conditionMessage returns a function reading a condition's message ("" when it is missing), for
// WithTransform.
func conditionMessage(t rayv1.RayClusterConditionType) func(*rayv1.RayCluster) string {
	return func(c *rayv1.RayCluster) string {
		if cond := findCondition(c, t); cond != nil {
			return cond.Message
		}
		return ""
	}
}

func findCondition(c *rayv1.RayCluster, t rayv1.RayClusterConditionType) *metav1.Condition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == string(t) {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}

var _ = Describe("RayCluster controller", func() {
	It("creates pods and services and reports status", func() {
		ns := newNamespace()
		kubelet.hold(ns, true)
		c := builders.RayCluster(ns, "demo").WorkerGroup("small", 2, 0, 5).Obj()
		create(c)
		key := client.ObjectKeyFromObject(c)

		Eventually(podNamesOf(ns, rayv1.HeadNode, "")).Should(HaveLen(1), "the head pod")
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(2), "2 worker pods")
		Eventually(func() error {
			var svc corev1.Service
			return k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "demo-head-svc"}, &svc)
		}).Should(Succeed(), "the head service")
		// Every pod is Pending: the cluster must not be reported ready (users' complaint #13).
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning), "Provisioned=False while pods are Pending")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.HeadPodReady, metav1.ConditionFalse, ""), "HeadPodReady=False while the head is Pending")
		Expect(getCluster(key)).NotTo(HaveState(rayv1.ClusterStateReady), "state is ready while every pod is Pending")

		kubelet.hold(ns, false)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "state ready")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime), "Provisioned=True")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, rayv1.HeadPodRunningAndReady), "HeadPodReady=True")
		st := getCluster(key).Status
		head := listPods(ns, rayv1.HeadNode, "")[0]
		Expect(st.ReadyWorkerReplicas).To(Equal(int32(2)), "readyWorkerReplicas")
		Expect(st.AvailableWorkerReplicas).To(Equal(int32(2)), "availableWorkerReplicas")
		Expect(st.DesiredWorkerReplicas).To(Equal(int32(2)), "desiredWorkerReplicas")
		Expect(st.MaxWorkerReplicas).To(Equal(int32(5)), "maxWorkerReplicas")
		Expect(st.DesiredCPU.String()).To(Equal("3"), "desiredCPU")
		Expect(st.DesiredMemory.String()).To(Equal("2Gi"), "desiredMemory")
		Expect(st.Head.PodName).To(Equal(head.Name), "head.podName")
		Expect(st.Head.PodIP).To(Equal(head.Status.PodIP), "head.podIP")
		Expect(st.Head.ServiceName).To(Equal("demo-head-svc"), "head.serviceName")
		Expect(st.Head.ServiceIP).To(Equal(head.Status.PodIP), "head.serviceIP (headless: the pod IP)")
		Expect(st.ObservedGeneration).To(Equal(getCluster(key).Generation), "observedGeneration")
		Expect(st.StateTransitionTimes).To(HaveKeyWithValue(rayv1.ClusterStateReady, Not(BeNil())), "a ready transition time")
		Expect(st.Endpoints).NotTo(BeEmpty(), "endpoints")
		owner := getCluster(key)
		for _, p := range listPods(ns, "", "") {
			Expect(&p).To(BeControlledBy(owner), "pod %s", p.Name)
		}
		// One event names everything the first reconcile created, under KubeRay's head pod reason.
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventCreatedHeadPod, head.Name), "CreatedHeadPod event")
		workers := listPods(ns, rayv1.WorkerNode, "small")
		for _, part := range []string{workers[0].Name, workers[1].Name, "group small", "demo-head-svc"} {
			Expect(eventsOf(key)()).To(HaveEvent(corev1.EventTypeNormal, EventCreatedHeadPod, part), "the creation event names %s", part)
		}
		Expect(eventsOf(key)()).NotTo(HaveEvent("", EventCreatedWorkerPod, ""), "a separate CreatedWorkerPod event")
		Expect(eventsOf(key)()).NotTo(HaveEvent("", EventCreatedService, ""), "a separate CreatedService event")
		Expect(eventsOf(key)()).NotTo(HaveEvent("", string(rayv1.RayClusterProvisioned), ""), "a Provisioned event (the condition says it)")

		// A worker going back to not-ready withdraws "ready" (KubeRay keeps it forever).
		w := listPods(ns, rayv1.WorkerNode, "small")[0]
		setPodStatus(&w, func(s *corev1.PodStatus) {
			s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
		})
		Eventually(clusterOf(key)).Should(And(
			Not(HaveState(rayv1.ClusterStateReady)),
			HaveField("Status.ReadyWorkerReplicas", int32(1))), "state no longer ready")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionTrue, ""), "Provisioned stays True")
	})

	It("scale up and down", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "scale").WorkerGroup("small", 1, 0, 10).Obj()
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(1), "1 worker")

		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](4) })
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(4), "4 workers")
		Eventually(clusterOf(key)).Should(And(
			HaveState(rayv1.ClusterStateReady),
			HaveField("Status.ReadyWorkerReplicas", int32(4))), "ready with 4 workers")
		idx := map[string]bool{}
		for _, p := range listPods(ns, rayv1.WorkerNode, "small") {
			idx[p.Labels[rayv1.RayWorkerReplicaIndexKey]] = true
		}
		Expect(idx).To(And(HaveLen(4), HaveKey("0"), HaveKey("3")), "replica indexes, want 0..3")

		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1) })
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(1), "1 worker")
		// Replicas above maxReplicas are clamped (CEL rejects replicas > max, so lower max instead).
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](0)
			c.Spec.WorkerGroupSpecs[0].MinReplicas = ptr.To[int32](2)
		})
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(2), "minReplicas workers")
		Eventually(clusterOf(key)).Should(And(
			HaveField("Status.DesiredWorkerReplicas", int32(2)),
			HaveField("Status.MinWorkerReplicas", int32(2))), "status counts")
	})

	It("deletes the workers named in workersToDelete", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "wtd").WorkerGroup("small", 3, 0, 10).Obj()
		c.Spec.EnableInTreeAutoscaling = ptr.To(true)
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(3), "3 workers")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		pods := listPods(ns, rayv1.WorkerNode, "small")
		victim := pods[1].Name

		// With autoscaling on, lowering replicas alone deletes nothing: the autoscaler names pods.
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](2) })
		waitReconciled(key)
		Expect(podNames(listPods(ns, rayv1.WorkerNode, "small"))).To(HaveLen(3), "the controller scaled down on its own with autoscaling on")
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = []string{victim}
		})
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(2), "2 workers")
		Expect(podNames(listPods(ns, rayv1.WorkerNode, "small"))).NotTo(ContainElement(victim), "pod %s named in workersToDelete still exists", victim)
		// The list stays until the autoscaler clears it; the controller must not recreate anything.
		waitReconciled(key)
		Expect(podNames(listPods(ns, rayv1.WorkerNode, "small"))).To(HaveLen(2), "workers after workersToDelete")
		// The autoscaler RBAC objects exist.
		for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacRole{}, &rbacRoleBinding{}} {
			Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "wtd"}, obj)).To(Succeed(), "autoscaler %T", obj)
		}
	})

	It("suspend and resume", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "susp").WorkerGroup("small", 2, 0, 10).Obj()
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionTrue, ""), "Provisioned")

		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.Suspend = ptr.To(true) })
		Eventually(podNamesOf(ns, "", "")).Should(BeEmpty(), "no pods")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterSuspended, metav1.ConditionTrue, rayv1.RayClusterSuspendedReason), "Suspended=True")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterSuspending, metav1.ConditionFalse, ""), "Suspending=False")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning), "Provisioned=False")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateSuspended), "state suspended")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, string(rayv1.RayClusterSuspending), ""), "Suspending event")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, string(rayv1.RayClusterSuspended), ""), "Suspended event")
		// Stays suspended.
		waitReconciled(key)
		Expect(podNames(listPods(ns, "", ""))).To(BeEmpty(), "pods recreated while suspended")

		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.Suspend = ptr.To(false) })
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterSuspended, metav1.ConditionFalse, ""), "Suspended=False")
		Eventually(podNamesOf(ns, "", "")).Should(HaveLen(3), "3 pods")
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime), "Provisioned again")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "state ready")
	})

	It("failed worker is replaced", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "fw").WorkerGroup("small", 2, 0, 10).Obj()
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		victim := listPods(ns, rayv1.WorkerNode, "small")[0]
		setPodStatus(&victim, func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed })
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(And(HaveLen(2), Not(ContainElement(victim.Name))),
			"the failed worker replaced")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready again")
	})

	It("replaces a failed head whose restartPolicy is Never", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "fh").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.HeadGroupSpec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		head := listPods(ns, rayv1.HeadNode, "")[0]

		kubelet.hold(ns, true)
		// The Ray container exits; with restartPolicy Never the kubelet will not restart it.
		setPodStatus(&head, func(s *corev1.PodStatus) {
			s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
			s.ContainerStatuses[0].Ready = false
			s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}
		})
		Eventually(clusterOf(key)).Should(And(
			HaveCondition(rayv1.HeadPodReady, metav1.ConditionFalse, rayv1.HeadPodReplaced),
			WithTransform(conditionMessage(rayv1.HeadPodReady), And(ContainSubstring(head.Name), ContainSubstring("restartPolicy is Never")))),
			"HeadPodReady says why the head was replaced, naming the pod and the reason")
		Eventually(podNamesOf(ns, rayv1.HeadNode, "")).Should(And(HaveLen(1), Not(ContainElement(head.Name))), "a new head pod")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventDeletedHeadPod, head.Name), "DeletedHeadPod event")
		Expect(getCluster(key)).NotTo(HaveState(rayv1.ClusterStateReady), "state ready while the new head is Pending")
		kubelet.hold(ns, false)
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, rayv1.HeadPodRunningAndReady), "HeadPodReady=True")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready again")
	})

	// Deletion: envtest runs no garbage collector, so deleting a RayCluster cannot remove its
	// children here. The test asserts what GC relies on (a controller owner reference on every child,
	// with blockOwnerDeletion) and that a cluster without the Redis finalizer goes away at once.
	It("leaves deletion to the garbage collector", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "del").WorkerGroup("small", 2, 0, 10).Obj()
		c.Annotations = map[string]string{rayv1.EnableServeServiceAnnotationKey: "true"}
		c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "serve", ContainerPort: 8000}}
		c.Spec.HeadGroupSpec.EnableIngress = ptr.To(true)
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		owner := getCluster(key)

		var objs []client.Object
		for _, p := range listPods(ns, "", "") {
			objs = append(objs, &p)
		}
		for _, name := range []string{"del-head-svc", "del-serve-svc"} {
			objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		}
		objs = append(objs, &ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "del-head-ingress"}})
		for _, o := range objs {
			Eventually(func() (client.Object, error) {
				return o, k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o)
			}).Should(BeControlledBy(owner).BlockingOwnerDeletion(), "%T %s owned by the cluster", o, o.GetName())
		}
		Expect(k8s.Delete(context.Background(), getCluster(key))).To(Succeed())
		Eventually(func() error {
			_, err := clusterOf(key)()
			return err
		}).Should(Satisfy(isNotFound), "the cluster gone")
	})

	It("GCS fault tolerance finalizer flow", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "ft").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{RedisAddress: "redis:6379"}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveField("Finalizers", ContainElement(rayv1.GCSFaultToleranceRedisCleanupFinalizer)), "the finalizer")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		Expect(k8s.Delete(context.Background(), getCluster(key))).To(Succeed())
		// The controller deletes the pods itself (no GC needed), then runs the clean-up Job.
		Eventually(podNamesOf(ns, "", "")).Should(BeEmpty(), "pods deleted by the controller")
		var jobs batchv1.JobList
		Eventually(func() ([]batchv1.Job, error) {
			err := k8s.List(context.Background(), &jobs, client.InNamespace(ns))
			return jobs.Items, err
		}).Should(HaveLen(1), "the clean-up job")
		job := jobs.Items[0]
		Expect(&job).To(BeControlledBy(getCluster(key)), "the clean-up job's owner")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventCreatedRedisCleanupJob, job.Name), "CreatedRedisCleanupJob event")
		Expect(getCluster(key).Finalizers).NotTo(BeEmpty(), "finalizer removed before the job completed")
		// Play the Job controller.
		now := metav1.Now()
		orig := job.DeepCopy()
		job.Status.StartTime = &now
		job.Status.CompletionTime = &now
		job.Status.Succeeded = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		Expect(k8s.Status().Patch(context.Background(), &job, client.MergeFrom(orig))).To(Succeed(), "marking the job complete")
		Eventually(func() error {
			_, err := clusterOf(key)()
			return err
		}).Should(Satisfy(isNotFound), "the cluster gone")
	})

	It("rolling update keeps min replicas ready", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "roll").WorkerGroup("small", 3, 2, 10).Obj()
		c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRollingUpdate)}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		old := podNames(listPods(ns, rayv1.WorkerNode, "small"))
		head := listPods(ns, rayv1.HeadNode, "")[0].Name

		// Watch readiness while the rollout runs: never fewer than minReplicas ready workers.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		violations := make(chan string, 100)
		go func() {
			for ctx.Err() == nil {
				ready := 0
				var list corev1.PodList
				if err := k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{rayv1.RayNodeTypeLabelKey: "worker"}); err != nil {
					continue
				}
				for i := range list.Items {
					if p := &list.Items[i]; p.DeletionTimestamp == nil && resources.PodRunningAndReady(p) {
						ready++
					}
				}
				if ready < 2 {
					select {
					case violations <- fmt.Sprintf("%d ready workers", ready):
					default:
					}
				}
			}
		}()

		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0].Image = "rayproject/ray:2.9.3"
		})
		Eventually(func(g Gomega) {
			pods := listPods(ns, rayv1.WorkerNode, "small")
			g.Expect(pods).To(HaveLen(3), "workers")
			for _, p := range pods {
				g.Expect(old).NotTo(ContainElement(p.Name), "worker %s still outdated", p.Name)
				g.Expect(p.Spec.Containers[0].Image).To(Equal("rayproject/ray:2.9.3"), "worker %s still outdated", p.Name)
			}
		}).Should(Succeed(), "every worker replaced")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		cancel()
		Expect(violations).NotTo(Receive(), "the rollout went below minReplicas ready")
		Expect(podNames(listPods(ns, rayv1.HeadNode, ""))).To(Equal([]string{head}), "the head was replaced by a worker rollout")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, "RollingUpdate", "small"), "RollingUpdate event")
	})

	It("converged cluster makes no writes", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "quiet").WorkerGroup("small", 2, 0, 10).Obj()
		c.Spec.HeadGroupSpec.EnableIngress = ptr.To(true)
		c.Spec.EnableInTreeAutoscaling = ptr.To(true)
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		// Let any in-flight reconcile settle: wait until a poke produces no write.
		Eventually(func() []string {
			mark := writes.mark()
			waitReconciled(key)
			return writes.since(mark, ns)
		}).Should(BeEmpty(), "a reconcile without writes")
		for range 3 {
			mark := writes.mark()
			waitReconciled(key)
			Expect(writes.since(mark, ns)).To(BeEmpty(), "writes of a reconcile of a converged cluster")
		}
	})

	It("invalid spec reports condition and no pods", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "bad").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.HeadGroupSpec.Labels = map[string]string{"not a valid key": "x"}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterSpecValid, metav1.ConditionFalse, rayv1.InvalidRayClusterSpec), "SpecValid=False")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeWarning, rayv1.InvalidRayClusterSpec, "spec.headGroupSpec.labels"), "a Warning event")
		Expect(podNames(listPods(ns, "", ""))).To(BeEmpty(), "pods created for an invalid spec")
		Expect(getCluster(key).Status.Reason).To(ContainSubstring("labels"), "status.reason does not explain the problem")
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.HeadGroupSpec.Labels = map[string]string{"ok": "x"} })
		Eventually(clusterOf(key)).Should(HaveCondition(rayv1.RayClusterSpecValid, metav1.ConditionTrue, rayv1.ValidRayClusterSpec), "SpecValid=True")
		Eventually(podNamesOf(ns, "", "")).Should(HaveLen(2), "pods once fixed")
	})

	It("managed by external controller is ignored", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "mk").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.ManagedBy = ptr.To(rayv1.MultiKueueController)
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(func() int { return observed.count(key) }).ShouldNot(BeZero(), "a reconcile")
		waitReconciled(key)
		Expect(podNames(listPods(ns, "", ""))).To(BeEmpty(), "pods created for a cluster managed by MultiKueue")
		st := getCluster(key).Status
		Expect(st.Conditions).To(BeEmpty(), "status written for a cluster managed by MultiKueue")
		Expect(st.State).To(BeEmpty(), "status written for a cluster managed by MultiKueue")
	})
})
