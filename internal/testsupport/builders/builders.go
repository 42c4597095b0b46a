// Package builders makes the RayCluster, RayJob, RayService and RayCronJob objects the tests
// create, with small valid defaults, so a test spells out only what it is about.
package builders

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

const (
	// RayImage is the image of RayCluster's default containers, a real Ray release.
	RayImage = "rayproject/ray:2.9.0"
	// RuntimeImage is the image of the clusters RayJob and RayService default to: nothing runs
	// it in envtest, the tests play the RayCluster controller.
	RuntimeImage = "rayk8s/rayk8s:test"
	// DashboardPort is the head's dashboard port in RayJob's and RayService's cluster specs.
	DashboardPort = 8265
)

// ClusterBuilder builds a RayCluster.
type ClusterBuilder struct{ obj rayv1.RayCluster }

// RayCluster is a head-only cluster on RayImage, Ray 2.9.0, whose head requests 1 CPU and 2Gi of
// memory.
func RayCluster(ns, name string) *ClusterBuilder {
	b := &ClusterBuilder{}
	b.obj.Namespace, b.obj.Name = ns, name
	b.obj.Spec.RayVersion = "2.9.0"
	b.obj.Spec.HeadGroupSpec.RayStartParams = map[string]string{}
	b.obj.Spec.HeadGroupSpec.Template.Spec.Containers = []corev1.Container{{
		Name: "ray-head", Image: RayImage,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}},
	}}
	return b
}

// WorkerGroup adds a single-host worker group whose pods request 1 CPU.
func (b *ClusterBuilder) WorkerGroup(group string, replicas, minReplicas, maxReplicas int32) *ClusterBuilder {
	g := rayv1.WorkerGroupSpec{GroupName: group, Replicas: ptr.To(replicas), MinReplicas: ptr.To(minReplicas),
		MaxReplicas: ptr.To(maxReplicas), NumOfHosts: 1, RayStartParams: map[string]string{}}
	g.Template.Spec.Containers = []corev1.Container{{
		Name: "ray-worker", Image: RayImage,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
	}}
	b.obj.Spec.WorkerGroupSpecs = append(b.obj.Spec.WorkerGroupSpecs, g)
	return b
}

// With applies mutate to the object being built.
func (b *ClusterBuilder) With(mutate func(*rayv1.RayCluster)) *ClusterBuilder {
	mutate(&b.obj)
	return b
}

// Obj returns a copy of the object built so far.
func (b *ClusterBuilder) Obj() *rayv1.RayCluster { return b.obj.DeepCopy() }

// RuntimeClusterSpec is the cluster spec RayJob and RayService default to: a head on
// RuntimeImage declaring the dashboard port, and no worker groups.
func RuntimeClusterSpec() *rayv1.RayClusterSpec {
	return &rayv1.RayClusterSpec{
		HeadGroupSpec: rayv1.HeadGroupSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "ray-head", Image: RuntimeImage,
				Ports: []corev1.ContainerPort{{Name: "dashboard", ContainerPort: DashboardPort}}}},
		}}},
	}
}

// JobBuilder builds a RayJob.
type JobBuilder struct{ obj rayv1.RayJob }

// RayJob runs "python main.py" in K8sJobMode on a RuntimeClusterSpec with one worker group "w"
// (replicas left to the defaults).
func RayJob(ns, name string) *JobBuilder {
	b := &JobBuilder{}
	b.obj.Namespace, b.obj.Name = ns, name
	b.obj.Spec.Entrypoint = "python main.py"
	b.obj.Spec.SubmissionMode = rayv1.K8sJobMode
	b.obj.Spec.RayClusterSpec = RuntimeClusterSpec()
	b.obj.Spec.RayClusterSpec.WorkerGroupSpecs = []rayv1.WorkerGroupSpec{{GroupName: "w", Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "ray-worker", Image: RuntimeImage}},
	}}}}
	return b
}

// Mode sets the submission mode.
func (b *JobBuilder) Mode(m rayv1.JobSubmissionMode) *JobBuilder {
	b.obj.Spec.SubmissionMode = m
	return b
}

// Entrypoint sets the job's command.
func (b *JobBuilder) Entrypoint(e string) *JobBuilder {
	b.obj.Spec.Entrypoint = e
	return b
}

// Workers sets the replicas, minReplicas and maxReplicas of every worker group.
func (b *JobBuilder) Workers(n int32) *JobBuilder {
	for i := range b.obj.Spec.RayClusterSpec.WorkerGroupSpecs {
		g := &b.obj.Spec.RayClusterSpec.WorkerGroupSpecs[i]
		g.Replicas, g.MinReplicas, g.MaxReplicas = ptr.To(n), ptr.To(n), ptr.To(n)
	}
	return b
}

// ClusterSelector makes the job use the existing cluster named cluster instead of creating one.
func (b *JobBuilder) ClusterSelector(cluster string) *JobBuilder {
	b.obj.Spec.RayClusterSpec = nil
	b.obj.Spec.ClusterSelector = map[string]string{rayv1.RayJobClusterSelectorKey: cluster}
	return b
}

// With applies mutate to the object being built.
func (b *JobBuilder) With(mutate func(*rayv1.RayJob)) *JobBuilder {
	mutate(&b.obj)
	return b
}

// Obj returns a copy of the object built so far.
func (b *JobBuilder) Obj() *rayv1.RayJob { return b.obj.DeepCopy() }

// ServiceBuilder builds a RayService.
type ServiceBuilder struct{ obj rayv1.RayService }

// RayService serves nothing yet on a RuntimeClusterSpec.
func RayService(ns, name string) *ServiceBuilder {
	b := &ServiceBuilder{}
	b.obj.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: name}
	b.obj.Spec.RayClusterSpec = *RuntimeClusterSpec()
	return b
}

// ServeConfig sets serveConfigV2.
func (b *ServiceBuilder) ServeConfig(yaml string) *ServiceBuilder {
	b.obj.Spec.ServeConfigV2 = yaml
	return b
}

// ServePort declares the Serve port on the head container.
func (b *ServiceBuilder) ServePort(port int32) *ServiceBuilder {
	c := &b.obj.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0]
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: "serve", ContainerPort: port})
	return b
}

// ClusterDeletionDelay sets how long an outgoing cluster is kept after traffic left it.
func (b *ServiceBuilder) ClusterDeletionDelay(seconds int32) *ServiceBuilder {
	b.obj.Spec.RayClusterDeletionDelaySeconds = ptr.To(seconds)
	return b
}

// HeadEnv adds an environment variable to the head container.
func (b *ServiceBuilder) HeadEnv(name, value string) *ServiceBuilder {
	c := &b.obj.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	return b
}

// With applies mutate to the object being built.
func (b *ServiceBuilder) With(mutate func(*rayv1.RayService)) *ServiceBuilder {
	mutate(&b.obj)
	return b
}

// Obj returns a copy of the object built so far.
func (b *ServiceBuilder) Obj() *rayv1.RayService { return b.obj.DeepCopy() }

// CronJobBuilder builds a RayCronJob.
type CronJobBuilder struct{ obj rayv1.RayCronJob }

// RayCronJob runs the RayJob template of RayJob(ns, name) on schedule.
func RayCronJob(ns, name, schedule string) *CronJobBuilder {
	b := &CronJobBuilder{}
	b.obj.Namespace, b.obj.Name = ns, name
	b.obj.Spec.Schedule = schedule
	b.obj.Spec.JobTemplate = RayJob(ns, name).Obj().Spec
	return b
}

// TimeZone sets spec.timeZone.
func (b *CronJobBuilder) TimeZone(tz string) *CronJobBuilder {
	b.obj.Spec.TimeZone = ptr.To(tz)
	return b
}

// Suspend sets spec.suspend.
func (b *CronJobBuilder) Suspend(s bool) *CronJobBuilder {
	b.obj.Spec.Suspend = s
	return b
}

// Annotate sets an annotation.
func (b *CronJobBuilder) Annotate(key, value string) *CronJobBuilder {
	if b.obj.Annotations == nil {
		b.obj.Annotations = map[string]string{}
	}
	b.obj.Annotations[key] = value
	return b
}

// With applies mutate to the object being built.
func (b *CronJobBuilder) With(mutate func(*rayv1.RayCronJob)) *CronJobBuilder {
	mutate(&b.obj)
	return b
}

// Obj returns a copy of the object built so far.
func (b *CronJobBuilder) Obj() *rayv1.RayCronJob { return b.obj.DeepCopy() }
