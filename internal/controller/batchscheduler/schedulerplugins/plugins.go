// Package schedulerplugins integrates the coscheduling plugin of kubernetes-sigs/scheduler-plugins
// (https://scheduler-plugins.sigs.k8s.io): with ray.io/gang-scheduling-enabled on a RayCluster, a
// scheduling.x-k8s.io/v1alpha1 PodGroup named after the cluster, and pods labelled with it.
package schedulerplugins

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
)

// Name is the --batch-scheduler value.
const Name = "scheduler-plugins"

// SchedulerName is the pods' schedulerName: the scheduler profile scheduler-plugins' Helm chart
// installs as a second scheduler.
const SchedulerName = "scheduler-plugins-scheduler"

// PodGroupLabelKey on a pod names its PodGroup.
const PodGroupLabelKey = "scheduling.x-k8s.io/pod-group"

// PodGroupGVK is the kind of the coscheduling PodGroup.
var PodGroupGVK = schema.GroupVersionKind{Group: "scheduling.x-k8s.io", Version: "v1alpha1", Kind: "PodGroup"}

// Scheduler is the scheduler-plugins integration.
type Scheduler struct{}

var _ batchscheduler.Scheduler = (*Scheduler)(nil)

// New returns the scheduler-plugins integration.
func New() *Scheduler { return &Scheduler{} }

// Name implements batchscheduler.Scheduler.
func (*Scheduler) Name() string { return Name }

// GroupKind implements batchscheduler.Scheduler.
func (*Scheduler) GroupKind() (schema.GroupVersionKind, bool) { return PodGroupGVK, true }

// CheckRayJob implements batchscheduler.Scheduler: the RayJob's RayCluster gets its own group.
func (*Scheduler) CheckRayJob(*rayv1.RayJob) error { return nil }

// PodGroup implements batchscheduler.Scheduler: for a RayCluster labelled
// ray.io/gang-scheduling-enabled, minMember is the head plus the desired workers and
// minResources what they request.
func (*Scheduler) PodGroup(w batchscheduler.Workload) (*unstructured.Unstructured, error) {
	if _, ok := w.Owner.(*rayv1.RayCluster); !ok || !batchscheduler.GangSchedulingRequested(w.Owner) {
		return nil, nil
	}
	gang := batchscheduler.GangOf(w.Cluster)
	pg := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"minMember":    int64(gang.Members),
		"minResources": resourceMap(gang.Resources),
	}}}
	pg.SetGroupVersionKind(PodGroupGVK)
	pg.SetNamespace(w.Owner.GetNamespace())
	pg.SetName(w.Owner.GetName())
	return pg, nil
}

// AddMetadata implements batchscheduler.Scheduler: schedulerName on the RayCluster's pods, and
// the PodGroup label when the cluster asks for gang scheduling.
func (*Scheduler) AddMetadata(parent, child metav1.Object, _ string) error {
	if _, ok := parent.(*rayv1.RayCluster); !ok {
		return nil
	}
	if _, ok := child.(*corev1.Pod); !ok {
		return nil
	}
	if batchscheduler.GangSchedulingRequested(parent) {
		batchscheduler.SetLabel(child, PodGroupLabelKey, parent.GetName())
	}
	batchscheduler.SetSchedulerName(child, SchedulerName)
	return nil
}

// resourceMap is l as the group's JSON, or nil (the field left out) when l is empty: the API
// server would take an empty object in an apply request for null.
func resourceMap(l corev1.ResourceList) any {
	if len(l) == 0 {
		return nil
	}
	out := make(map[string]any, len(l))
	for n, q := range l {
		out[string(n)] = q.String()
	}
	return out
}
