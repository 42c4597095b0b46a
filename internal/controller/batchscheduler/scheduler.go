// Package batchscheduler is the contract between the Ray controllers and a gang scheduler
// (Volcano, YuniKorn, KAI-Scheduler, scheduler-plugins), as KubeRay's --batch-scheduler chooses
// one: the metadata a scheduler reads on pods, pod templates and RayClusters, and the group
// object (a PodGroup) some of them need before the pods exist. Everything here is pure; the
// controllers write what the builders return. The sub-packages hold one scheduler each.
package batchscheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Scheduler is one gang scheduler integration.
type Scheduler interface {
	// Name is the --batch-scheduler value that selects it.
	Name() string
	// GroupKind is the kind of the group object PodGroup builds, and false when the scheduler
	// never needs one. The manager refuses to start when this kind is not served.
	GroupKind() (schema.GroupVersionKind, bool)
	// PodGroup builds the group object w needs, or nil when it needs none (for example a
	// RayCluster whose group its RayJob owns). Owner references are the caller's job.
	PodGroup(w Workload) (*unstructured.Unstructured, error)
	// AddMetadata stamps child (a *corev1.Pod, a *corev1.PodTemplateSpec or a *rayv1.RayCluster)
	// with what the scheduler reads, taken from parent (the RayCluster or RayJob). group is the
	// Ray group the child belongs to: rayv1.HeadGroupName, a worker group name,
	// rayv1.SubmitterGroupName, or "" for a RayCluster.
	AddMetadata(parent metav1.Object, child metav1.Object, group string) error
	// CheckRayJob reports why the scheduler cannot gang-schedule job, or nil.
	CheckRayJob(job *rayv1.RayJob) error
}

// Workload is what a group object is computed from.
type Workload struct {
	// Owner is the RayCluster or RayJob the group belongs to: its name, namespace, labels and
	// annotations.
	Owner metav1.Object
	// Cluster is the RayCluster's spec (a RayJob's rayClusterSpec).
	Cluster *rayv1.RayClusterSpec
	// Submitter is what a RayJob's submitter requests, counted in the group's resources but not
	// in its members; nil for a RayCluster.
	Submitter corev1.ResourceList
	// Released is set for a finished RayJob whose cluster is gone: its group keeps nothing
	// reserved.
	Released bool
}

// ForRayCluster is the workload of a RayCluster.
func ForRayCluster(c *rayv1.RayCluster) Workload { return Workload{Owner: c, Cluster: &c.Spec} }

// CreatedByRayJob reports whether o is a RayCluster a RayJob created (its originated-from labels).
func CreatedByRayJob(o metav1.Object) bool {
	return o.GetLabels()[rayv1.RayOriginatedFromCRDLabelKey] == string(rayv1.RayJobCRD)
}

// SetSchedulerName sets the pod's schedulerName on a Pod or PodTemplateSpec; other kinds have none.
func SetSchedulerName(child metav1.Object, name string) {
	switch o := child.(type) {
	case *corev1.Pod:
		o.Spec.SchedulerName = name
	case *corev1.PodTemplateSpec:
		o.Spec.SchedulerName = name
	}
}

// SetLabel sets one label on o.
func SetLabel(o metav1.Object, key, value string) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[key] = value
	o.SetLabels(l)
}

// SetAnnotation sets one annotation on o.
func SetAnnotation(o metav1.Object, key, value string) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	o.SetAnnotations(a)
}

// CopyLabel copies parent's label from onto child as to, when parent has it with a value.
func CopyLabel(parent, child metav1.Object, from, to string) {
	if v := parent.GetLabels()[from]; v != "" {
		SetLabel(child, to, v)
	}
}

// GangSchedulingRequested reports whether o carries the ray.io/gang-scheduling-enabled label
// (its presence, whatever its value, as KubeRay reads it).
func GangSchedulingRequested(o metav1.Object) bool {
	_, ok := o.GetLabels()[rayv1.RayGangSchedulingEnabledLabelKey]
	return ok
}
