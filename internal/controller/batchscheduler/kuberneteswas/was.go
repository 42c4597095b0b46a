// Package kuberneteswas builds what KubeRay's KubernetesWAS feature gate produces: Kubernetes
// workload-aware scheduling (scheduling.k8s.io/v1alpha3) gang-schedules a RayCluster that asks for
// it as one group. Per cluster there is a Workload named after the cluster with one pod group
// template "cluster", a PodGroup "<cluster>-cluster" made from that template, and every pod names
// the PodGroup in spec.schedulingGroup and uses the default scheduler. Builders are pure.
package kuberneteswas

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
)

// TemplateName is the Workload's one pod group template: the whole cluster, head and workers.
const TemplateName = "cluster"

// PodGroupProtectionFinalizer is the finalizer Kubernetes keeps on a PodGroup while pods use it;
// an owned PodGroup being replaced has it removed first, as KubeRay does.
const PodGroupProtectionFinalizer = "scheduling.k8s.io/podgroup-protection"

// Applies reports whether c is gang-scheduled: it carries ray.io/gang-scheduling-enabled=true
// and does not use the Ray autoscaler (KubeRay does not support the two together yet).
func Applies(c *rayv1.RayCluster) bool {
	return strings.EqualFold(c.Labels[rayv1.RayGangSchedulingEnabledLabelKey], "true") && !batchscheduler.AutoscalingEnabled(&c.Spec)
}

// WorkloadName names the cluster's Workload.
func WorkloadName(c *rayv1.RayCluster) string { return c.Name }

// PodGroupName names the cluster's PodGroup.
func PodGroupName(c *rayv1.RayCluster) string { return c.Name + "-" + TemplateName }

// policy gang-schedules the head and every desired worker pod.
func policy(c *rayv1.RayCluster) schedulingv1alpha3.PodGroupSchedulingPolicy {
	return schedulingv1alpha3.PodGroupSchedulingPolicy{Gang: &schedulingv1alpha3.GangSchedulingPolicy{MinCount: batchscheduler.GangOf(&c.Spec).Members}}
}

// MinCount is the gang size of c: the head plus its desired worker pods.
func MinCount(c *rayv1.RayCluster) int32 { return policy(c).Gang.MinCount }

func meta(c *rayv1.RayCluster, name string, owner metav1.OwnerReference) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: map[string]string{rayv1.RayClusterLabelKey: c.Name},
		OwnerReferences: []metav1.OwnerReference{owner}}
}

// BuildWorkload returns the cluster's Workload; owner is the cluster's controller reference.
func BuildWorkload(c *rayv1.RayCluster, owner metav1.OwnerReference) *schedulingv1alpha3.Workload {
	return &schedulingv1alpha3.Workload{
		ObjectMeta: meta(c, WorkloadName(c), owner),
		Spec: schedulingv1alpha3.WorkloadSpec{
			ControllerRef:     &schedulingv1alpha3.TypedLocalObjectReference{APIGroup: rayv1.GroupVersion.Group, Kind: "RayCluster", Name: c.Name},
			PodGroupTemplates: []schedulingv1alpha3.PodGroupTemplate{{Name: TemplateName, SchedulingPolicy: policy(c)}},
		},
	}
}

// BuildPodGroup returns the cluster's PodGroup, made from the Workload's template.
func BuildPodGroup(c *rayv1.RayCluster, owner metav1.OwnerReference) *schedulingv1alpha3.PodGroup {
	return &schedulingv1alpha3.PodGroup{
		ObjectMeta: meta(c, PodGroupName(c), owner),
		Spec: schedulingv1alpha3.PodGroupSpec{
			WorkloadRef:      &schedulingv1alpha3.WorkloadReference{WorkloadName: WorkloadName(c), TemplateName: TemplateName},
			SchedulingPolicy: policy(c),
		},
	}
}

// WorkloadStale reports whether observed no longer matches c (the Workload is immutable, so it
// is replaced).
func WorkloadStale(c *rayv1.RayCluster, observed *schedulingv1alpha3.Workload) bool {
	t := observed.Spec.PodGroupTemplates
	return len(t) != 1 || t[0].Name != TemplateName || t[0].SchedulingPolicy.Gang == nil || t[0].SchedulingPolicy.Gang.MinCount != MinCount(c)
}

// PodGroupStale reports whether observed no longer matches c.
func PodGroupStale(c *rayv1.RayCluster, observed *schedulingv1alpha3.PodGroup) bool {
	g := observed.Spec.SchedulingPolicy.Gang
	return g == nil || g.MinCount != MinCount(c)
}

// AddMetadata makes pod a member of the cluster's PodGroup, scheduled by the default scheduler.
func AddMetadata(c *rayv1.RayCluster, pod *corev1.Pod) {
	name := PodGroupName(c)
	pod.Spec.SchedulerName = corev1.DefaultSchedulerName
	pod.Spec.SchedulingGroup = &corev1.PodSchedulingGroup{PodGroupName: &name}
}
