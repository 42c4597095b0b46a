package builders

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func TestRayCluster(t *testing.T) {
	g := NewWithT(t)
	b := RayCluster("ns", "rc").WorkerGroup("small", 2, 1, 5)
	c := b.Obj()
	g.Expect(c.Namespace).To(Equal("ns"))
	g.Expect(c.Name).To(Equal("rc"))
	g.Expect(c.Spec.HeadGroupSpec.Template.Spec.Containers).To(HaveLen(1))
	head := c.Spec.HeadGroupSpec.Template.Spec.Containers[0]
	g.Expect(head.Image).To(Equal(RayImage))
	g.Expect(head.Resources.Requests.Cpu().String()).To(Equal("1"))
	g.Expect(head.Resources.Requests.Memory().String()).To(Equal("2Gi"))
	g.Expect(c.Spec.WorkerGroupSpecs).To(HaveLen(1))
	w := c.Spec.WorkerGroupSpecs[0]
	g.Expect(w.GroupName).To(Equal("small"))
	g.Expect([]int32{*w.Replicas, *w.MinReplicas, *w.MaxReplicas, w.NumOfHosts}).To(Equal([]int32{2, 1, 5, 1}))

	c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](9)
	g.Expect(*b.Obj().Spec.WorkerGroupSpecs[0].Replicas).To(Equal(int32(2)), "Obj returns a copy")
	g.Expect(b.With(func(c *rayv1.RayCluster) { c.Spec.Suspend = ptr.To(true) }).Obj().Spec.Suspend).To(HaveValue(BeTrue()))
}

func TestRayJob(t *testing.T) {
	g := NewWithT(t)
	j := RayJob("ns", "job").Obj()
	g.Expect(j.Spec.Entrypoint).To(Equal("python main.py"))
	g.Expect(j.Spec.SubmissionMode).To(Equal(rayv1.K8sJobMode))
	g.Expect(j.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Ports).To(
		ContainElement(corev1.ContainerPort{Name: "dashboard", ContainerPort: DashboardPort}))
	g.Expect(j.Spec.RayClusterSpec.WorkerGroupSpecs).To(HaveLen(1))
	g.Expect(j.Spec.RayClusterSpec.WorkerGroupSpecs[0].Replicas).To(BeNil())

	j = RayJob("ns", "job").Mode(rayv1.HTTPMode).Entrypoint("echo hi").Workers(1).Obj()
	g.Expect(j.Spec.SubmissionMode).To(Equal(rayv1.HTTPMode))
	g.Expect(j.Spec.Entrypoint).To(Equal("echo hi"))
	w := j.Spec.RayClusterSpec.WorkerGroupSpecs[0]
	g.Expect([]int32{*w.Replicas, *w.MinReplicas, *w.MaxReplicas}).To(Equal([]int32{1, 1, 1}))

	j = RayJob("ns", "job").ClusterSelector("shared").Obj()
	g.Expect(j.Spec.RayClusterSpec).To(BeNil())
	g.Expect(j.Spec.ClusterSelector).To(Equal(map[string]string{rayv1.RayJobClusterSelectorKey: "shared"}))
}

func TestRayService(t *testing.T) {
	g := NewWithT(t)
	s := RayService("ns", "svc").ServeConfig("applications: []").ServePort(8000).ClusterDeletionDelay(2).HeadEnv("A", "1").Obj()
	g.Expect(s.Spec.ServeConfigV2).To(Equal("applications: []"))
	g.Expect(s.Spec.RayClusterDeletionDelaySeconds).To(HaveValue(Equal(int32(2))))
	head := s.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0]
	g.Expect(head.Ports).To(Equal([]corev1.ContainerPort{{Name: "dashboard", ContainerPort: DashboardPort}, {Name: "serve", ContainerPort: 8000}}))
	g.Expect(head.Env).To(Equal([]corev1.EnvVar{{Name: "A", Value: "1"}}))
	g.Expect(RayService("ns", "svc").Obj().Spec.RayClusterSpec.WorkerGroupSpecs).To(BeEmpty())
}

func TestRayCronJob(t *testing.T) {
	g := NewWithT(t)
	c := RayCronJob("ns", "cron", "*/5 * * * *").Obj()
	g.Expect(c.Spec.Schedule).To(Equal("*/5 * * * *"))
	g.Expect(c.Spec.JobTemplate.Entrypoint).To(Equal("python main.py"))
	g.Expect(c.Spec.TimeZone).To(BeNil())
	g.Expect(c.Spec.Suspend).To(BeFalse())

	c = RayCronJob("ns", "cron", "@hourly").TimeZone("Asia/Taipei").Suspend(true).Annotate("k", "v").Obj()
	g.Expect(c.Spec.TimeZone).To(HaveValue(Equal("Asia/Taipei")))
	g.Expect(c.Spec.Suspend).To(BeTrue())
	g.Expect(c.Annotations).To(HaveKeyWithValue("k", "v"))
}
