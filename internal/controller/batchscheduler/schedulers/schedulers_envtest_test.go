package schedulers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/kaischeduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/schedulerplugins"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/volcano"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/yunikorn"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

func nestedInt(u *unstructured.Unstructured, fields ...string) int64 {
	v, _, _ := unstructured.NestedInt64(u.Object, fields...)
	return v
}

func nestedString(u *unstructured.Unstructured, fields ...string) string {
	v, _, _ := unstructured.NestedString(u.Object, fields...)
	return v
}

var _ = Describe("Volcano", func() {
	It("gives a RayCluster a PodGroup that follows its spec, and pods that name it", func(ctx context.Context) {
		ns := startControllers(volcano.Name)
		rc := builders.RayCluster(ns, "demo").WorkerGroup("small", 2, 1, 4).With(func(c *rayv1.RayCluster) {
			c.Labels = map[string]string{volcano.QueueLabelKey: "q1", rayv1.RayPriorityClassNameLabelKey: "high"}
		}).Obj()
		Expect(env.Client.Create(ctx, rc)).To(Succeed())

		Eventually(func(g Gomega) {
			pg := podGroup(g, volcano.PodGroupGVK, ns, "ray-demo-pg")
			g.Expect(controlledBy(pg, string(rc.UID))).To(BeTrue(), "the PodGroup's controller is the RayCluster")
			g.Expect(nestedInt(pg, "spec", "minMember")).To(BeEquivalentTo(3))
			g.Expect(nestedString(pg, "spec", "minResources", "cpu")).To(Equal("3"))
			g.Expect(nestedString(pg, "spec", "minResources", "memory")).To(Equal("2Gi"))
			g.Expect(nestedString(pg, "spec", "queue")).To(Equal("q1"))
			g.Expect(nestedString(pg, "spec", "priorityClassName")).To(Equal("high"))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			pods := podsOf(g, ns, "demo")
			g.Expect(pods).To(HaveLen(3))
			for _, p := range pods {
				group := p.Labels[rayv1.RayNodeGroupLabelKey]
				g.Expect(p.Spec.SchedulerName).To(Equal("volcano"), p.Name)
				g.Expect(p.Annotations).To(HaveKeyWithValue(volcano.GroupNameAnnotationKey, "ray-demo-pg"), p.Name)
				g.Expect(p.Annotations).To(HaveKeyWithValue(volcano.TaskSpecAnnotationKey, group), p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue(volcano.QueueLabelKey, "q1"), p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue(rayv1.RayPriorityClassNameLabelKey, "high"), p.Name)
			}
		}).Should(Succeed())

		By("scaling the workers up, the PodGroup grows with them")
		Eventually(func() error {
			var cur rayv1.RayCluster
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(rc), &cur); err != nil {
				return err
			}
			cur.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3)
			return env.Client.Update(ctx, &cur)
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			pg := podGroup(g, volcano.PodGroupGVK, ns, "ray-demo-pg")
			g.Expect(nestedInt(pg, "spec", "minMember")).To(BeEquivalentTo(4))
			g.Expect(nestedString(pg, "spec", "minResources", "cpu")).To(Equal("4"))
		}).Should(Succeed())

		By("deleting the PodGroup, it comes back")
		pg := &unstructured.Unstructured{}
		pg.SetGroupVersionKind(volcano.PodGroupGVK)
		pg.SetNamespace(ns)
		pg.SetName("ray-demo-pg")
		old := podGroup(Default, volcano.PodGroupGVK, ns, "ray-demo-pg").GetUID()
		Expect(env.Client.Delete(ctx, pg)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(podGroup(g, volcano.PodGroupGVK, ns, "ray-demo-pg").GetUID()).NotTo(Equal(old))
		}).Should(Succeed())
	})

	It("gives a RayJob the PodGroup of its cluster, counting the submitter's resources", func(ctx context.Context) {
		ns := startControllers(volcano.Name)
		job := builders.RayJob(ns, "train").Workers(2).With(func(j *rayv1.RayJob) {
			j.Labels = map[string]string{volcano.QueueLabelKey: "q1"}
			j.Spec.RayClusterSpec.WorkerGroupSpecs[0].Template.Spec.Containers[0].Resources.Requests =
				corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
		}).Obj()
		Expect(env.Client.Create(ctx, job)).To(Succeed())

		Eventually(func(g Gomega) {
			pg := podGroup(g, volcano.PodGroupGVK, ns, "ray-train-pg")
			g.Expect(controlledBy(pg, string(job.UID))).To(BeTrue(), "the PodGroup's controller is the RayJob")
			g.Expect(nestedInt(pg, "spec", "minMember")).To(BeEquivalentTo(3), "head and two workers; the submitter is not a member")
			// Two workers of 2 CPUs plus the default submitter's 500m.
			g.Expect(nestedString(pg, "spec", "minResources", "cpu")).To(Equal("4500m"))
			g.Expect(nestedString(pg, "spec", "queue")).To(Equal("q1"))
		}).Should(Succeed())
		var cluster string
		Eventually(func(g Gomega) {
			var cur rayv1.RayJob
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), &cur)).To(Succeed())
			cluster = cur.Status.RayClusterName
			g.Expect(cluster).NotTo(BeEmpty())
			var rc rayv1.RayCluster
			g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: cluster}, &rc)).To(Succeed())
			g.Expect(rc.Annotations).To(HaveKeyWithValue(volcano.GroupNameAnnotationKey, "ray-train-pg"))
			pods := podsOf(g, ns, cluster)
			g.Expect(pods).To(HaveLen(3))
			for _, p := range pods {
				g.Expect(p.Annotations).To(HaveKeyWithValue(volcano.GroupNameAnnotationKey, "ray-train-pg"), p.Name)
				g.Expect(p.Spec.SchedulerName).To(Equal("volcano"), p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue(volcano.QueueLabelKey, "q1"), p.Name)
			}
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			names := []string{}
			for _, pg := range listPodGroups(g, volcano.PodGroupGVK, ns) {
				names = append(names, pg.GetName())
			}
			g.Expect(names).To(ConsistOf("ray-train-pg"), "the RayJob's cluster makes no PodGroup of its own")
		}).Should(Succeed())
	})
})

var _ = Describe("Volcano after a RayJob finishes", func() {
	It("shrinks the RayJob's PodGroup to nothing once its cluster is deleted", func(ctx context.Context) {
		// The RayJob controller's clock stands still until the PodGroup was seen whole: on a busy
		// machine the wall clock could pass the deadline before the test first looks.
		clk := clocktesting.NewFakeClock(time.Now())
		ns := startControllersWithClock(volcano.Name, clk)
		// The deadline fails the job while it waits for its cluster; the cluster is then deleted.
		job := builders.RayJob(ns, "late").Workers(1).With(func(j *rayv1.RayJob) {
			j.Spec.ActiveDeadlineSeconds = ptr.To[int32](1)
			j.Spec.ShutdownAfterJobFinishes = true
		}).Obj()
		Expect(env.Client.Create(ctx, job)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(nestedInt(podGroup(g, volcano.PodGroupGVK, ns, "ray-late-pg"), "spec", "minMember")).To(BeEquivalentTo(2))
		}).Should(Succeed())
		clk.Step(5 * time.Second)
		Eventually(func(g Gomega) {
			var cur rayv1.RayJob
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), &cur)).To(Succeed())
			g.Expect(cur.Status.JobDeploymentStatus).To(Equal(rayv1.JobDeploymentStatusFailed))
			var clusters rayv1.RayClusterList
			g.Expect(env.Client.List(ctx, &clusters, client.InNamespace(ns))).To(Succeed())
			g.Expect(clusters.Items).To(BeEmpty())
			pg := podGroup(g, volcano.PodGroupGVK, ns, "ray-late-pg")
			g.Expect(nestedInt(pg, "spec", "minMember")).To(BeEquivalentTo(0))
			res, _, _ := unstructured.NestedMap(pg.Object, "spec", "minResources")
			g.Expect(res).To(BeEmpty())
		}).Should(Succeed())
	})
})

var _ = Describe("YuniKorn", func() {
	It("labels and annotates the pods of a gang-scheduled RayCluster, creating no object", func(ctx context.Context) {
		ns := startControllers(yunikorn.Name)
		rc := builders.RayCluster(ns, "demo").WorkerGroup("small", 2, 1, 4).With(func(c *rayv1.RayCluster) {
			c.Labels = map[string]string{yunikorn.AppIDLabelKey: "app-1", yunikorn.QueueLabelKey: "root.ml", rayv1.RayGangSchedulingEnabledLabelKey: "true"}
		}).Obj()
		Expect(env.Client.Create(ctx, rc)).To(Succeed())
		wantGroups := `[{"name":"headgroup","minResource":{"cpu":"1","memory":"2Gi"},"minMember":1},{"name":"small","minResource":{"cpu":"1"},"minMember":1}]`
		Eventually(func(g Gomega) {
			pods := podsOf(g, ns, "demo")
			g.Expect(pods).To(HaveLen(3))
			for _, p := range pods {
				g.Expect(p.Spec.SchedulerName).To(Equal("yunikorn"), p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue("applicationId", "app-1"), p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue("queue", "root.ml"), p.Name)
				g.Expect(p.Annotations).To(HaveKeyWithValue(yunikorn.TaskGroupsAnnotationKey, wantGroups), p.Name)
				g.Expect(p.Annotations).To(HaveKeyWithValue(yunikorn.TaskGroupNameKey, p.Labels[rayv1.RayNodeGroupLabelKey]), p.Name)
			}
		}).Should(Succeed())
		Expect(listPodGroups(Default, volcano.PodGroupGVK, ns)).To(BeEmpty())
		Expect(listPodGroups(Default, schedulerplugins.PodGroupGVK, ns)).To(BeEmpty())
	})
})

var _ = Describe("KAI-Scheduler", func() {
	It("names itself and the queue on a RayCluster's pods", func(ctx context.Context) {
		ns := startControllers(kaischeduler.Name)
		rc := builders.RayCluster(ns, "demo").WorkerGroup("small", 1, 1, 1).With(func(c *rayv1.RayCluster) {
			c.Labels = map[string]string{kaischeduler.QueueLabelKey: "team-a"}
		}).Obj()
		Expect(env.Client.Create(ctx, rc)).To(Succeed())
		Eventually(func(g Gomega) {
			pods := podsOf(g, ns, "demo")
			g.Expect(pods).To(HaveLen(2))
			for _, p := range pods {
				g.Expect(p.Spec.SchedulerName).To(Equal("kai-scheduler"), p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue(kaischeduler.QueueLabelKey, "team-a"), p.Name)
			}
		}).Should(Succeed())
	})

	It("refuses to create the cluster of a K8sJobMode RayJob, with a Warning event saying why", func(ctx context.Context) {
		ns := startControllers(kaischeduler.Name)
		job := builders.RayJob(ns, "train").Obj()
		Expect(env.Client.Create(ctx, job)).To(Succeed())
		Eventually(func(g Gomega) {
			evs := warningEvents(g, ns, "RayJob", "train")
			g.Expect(evs).NotTo(BeEmpty())
			g.Expect(evs[0].Reason).To(Equal("FailedToCreateRayCluster"))
			g.Expect(evs[0].Note).To(And(ContainSubstring("kai-scheduler"), ContainSubstring("spec.submissionMode")))
		}).Should(Succeed())
		var clusters rayv1.RayClusterList
		Expect(env.Client.List(ctx, &clusters, client.InNamespace(ns))).To(Succeed())
		Expect(clusters.Items).To(BeEmpty())
	})
})

var _ = Describe("scheduler-plugins", func() {
	It("gives a gang-scheduled RayCluster a coscheduling PodGroup and labels its pods", func(ctx context.Context) {
		ns := startControllers(schedulerplugins.Name)
		rc := builders.RayCluster(ns, "demo").WorkerGroup("small", 2, 1, 4).With(func(c *rayv1.RayCluster) {
			c.Labels = map[string]string{rayv1.RayGangSchedulingEnabledLabelKey: "true"}
		}).Obj()
		plain := builders.RayCluster(ns, "plain").Obj()
		Expect(env.Client.Create(ctx, rc)).To(Succeed())
		Expect(env.Client.Create(ctx, plain)).To(Succeed())
		Eventually(func(g Gomega) {
			pg := podGroup(g, schedulerplugins.PodGroupGVK, ns, "demo")
			g.Expect(controlledBy(pg, string(rc.UID))).To(BeTrue())
			g.Expect(nestedInt(pg, "spec", "minMember")).To(BeEquivalentTo(3))
			g.Expect(nestedString(pg, "spec", "minResources", "cpu")).To(Equal("3"))
			pods := podsOf(g, ns, "demo")
			g.Expect(pods).To(HaveLen(3))
			for _, p := range pods {
				g.Expect(p.Spec.SchedulerName).To(Equal("scheduler-plugins-scheduler"), p.Name)
				g.Expect(p.Labels).To(HaveKeyWithValue(schedulerplugins.PodGroupLabelKey, "demo"), p.Name)
			}
			plainPods := podsOf(g, ns, "plain")
			g.Expect(plainPods).To(HaveLen(1))
			g.Expect(plainPods[0].Spec.SchedulerName).To(Equal("scheduler-plugins-scheduler"))
			g.Expect(plainPods[0].Labels).NotTo(HaveKey(schedulerplugins.PodGroupLabelKey))
		}).Should(Succeed())
		Expect(listPodGroups(Default, schedulerplugins.PodGroupGVK, ns)).To(HaveLen(1), "only the gang-scheduled cluster has a PodGroup")
	})
})
