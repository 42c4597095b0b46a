// Package volcano integrates Volcano (https://volcano.sh): a scheduling.volcano.sh/v1beta1
// PodGroup named ray-<name>-pg per RayCluster, or per RayJob for the cluster a RayJob creates,
// and pods that name it, their Ray group as the task, the queue and the scheduler.
package volcano

import (
	"fmt"
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
)

// Name is the --batch-scheduler value, and the pods' schedulerName.
const Name = "volcano"

// Keys Volcano reads, and the labels on a RayCluster or RayJob that set them.
const (
	// QueueLabelKey on a RayCluster or RayJob names the Volcano queue; pods carry it too.
	QueueLabelKey = "volcano.sh/queue-name"
	// NetworkTopologyModeLabelKey and NetworkTopologyHighestTierLabelKey set the PodGroup's
	// networkTopology.
	NetworkTopologyModeLabelKey        = "volcano.sh/network-topology-mode"
	NetworkTopologyHighestTierLabelKey = "volcano.sh/network-topology-highest-tier-allowed"
	// GroupNameAnnotationKey on a pod names its PodGroup.
	GroupNameAnnotationKey = "scheduling.k8s.io/group-name"
	// TaskSpecAnnotationKey on a pod names its task (the Ray group).
	TaskSpecAnnotationKey = "volcano.sh/task-spec"
)

// PodGroupGVK is the kind of Volcano's PodGroup.
var PodGroupGVK = schema.GroupVersionKind{Group: "scheduling.volcano.sh", Version: "v1beta1", Kind: "PodGroup"}

// Scheduler is the Volcano integration.
type Scheduler struct {
	// multiHostIndexing (the RayMultiHostIndexing gate) adds a subGroupPolicy per Ray group,
	// which relies on the replica labels that gate puts on worker pods.
	multiHostIndexing bool
}

var _ batchscheduler.Scheduler = (*Scheduler)(nil)

// New returns the Volcano integration.
func New(multiHostIndexing bool) *Scheduler { return &Scheduler{multiHostIndexing: multiHostIndexing} }

// Name implements batchscheduler.Scheduler.
func (*Scheduler) Name() string { return Name }

// GroupKind implements batchscheduler.Scheduler.
func (*Scheduler) GroupKind() (schema.GroupVersionKind, bool) { return PodGroupGVK, true }

// PodGroupName is the PodGroup of o: ray-<name>-pg, where a RayCluster a RayJob created is
// named by its RayJob, which owns the group.
func PodGroupName(o metav1.Object) string {
	name := o.GetName()
	if batchscheduler.CreatedByRayJob(o) {
		if job := o.GetLabels()[rayv1.RayOriginatedFromCRNameLabelKey]; job != "" {
			name = job
		}
	}
	return "ray-" + name + "-pg"
}

// CheckRayJob implements batchscheduler.Scheduler: the group is computed from the cluster spec.
func (*Scheduler) CheckRayJob(job *rayv1.RayJob) error {
	if job.Spec.RayClusterSpec == nil {
		return fmt.Errorf("spec.clusterSelector: gang scheduling with %s needs spec.rayClusterSpec, not an existing RayCluster", Name)
	}
	return nil
}

// PodGroup implements batchscheduler.Scheduler: minMember counts the gang's pods (not a RayJob's
// submitter, which waits for the cluster and so must not be needed to start it), minResources
// what they and the submitter request.
func (s *Scheduler) PodGroup(w batchscheduler.Workload) (*unstructured.Unstructured, error) {
	if _, isCluster := w.Owner.(*rayv1.RayCluster); isCluster && batchscheduler.CreatedByRayJob(w.Owner) {
		return nil, nil
	}
	gang := batchscheduler.GangOf(w.Cluster)
	resources := batchscheduler.Sum(gang.Resources, w.Submitter)
	if w.Released {
		gang.Members, resources = 0, corev1.ResourceList{}
	}
	spec := map[string]any{
		"minMember":    int64(gang.Members),
		"minResources": resourceMap(resources),
	}
	labels := w.Owner.GetLabels()
	if q := labels[QueueLabelKey]; q != "" {
		spec["queue"] = q
	}
	if pc := labels[rayv1.RayPriorityClassNameLabelKey]; pc != "" {
		spec["priorityClassName"] = pc
	}
	if mode, ok := labels[NetworkTopologyModeLabelKey]; ok {
		nt := map[string]any{"mode": mode}
		if tier, ok := labels[NetworkTopologyHighestTierLabelKey]; ok {
			n, err := strconv.Atoi(tier)
			if err != nil {
				return nil, fmt.Errorf("label %s: %q is not an integer", NetworkTopologyHighestTierLabelKey, tier)
			}
			nt["highestTierAllowed"] = int64(n)
		}
		spec["networkTopology"] = nt
	}
	if sub := s.subGroupPolicy(w); sub != nil && !w.Released {
		spec["subGroupPolicy"] = sub
	}
	pg := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	pg.SetGroupVersionKind(PodGroupGVK)
	pg.SetNamespace(w.Owner.GetNamespace())
	pg.SetName(PodGroupName(w.Owner))
	if a := w.Owner.GetAnnotations(); len(a) > 0 {
		pg.SetAnnotations(maps.Clone(a))
	}
	return pg, nil
}

// subGroupPolicy gives each Ray replica its own sub-group (the head one, a worker replica
// numOfHosts pods), so Volcano places a multi-host replica whole. A topology label on the owner
// applies to the whole group, which per-replica sub-groups would change, so none are made then.
func (s *Scheduler) subGroupPolicy(w batchscheduler.Workload) []any {
	if !s.multiHostIndexing {
		return nil
	}
	if _, ok := w.Owner.GetLabels()[NetworkTopologyModeLabelKey]; ok {
		return nil
	}
	out := []any{subGroup(rayv1.HeadGroupName, 1, 1, rayv1.RayNodeGroupLabelKey)}
	for i := range w.Cluster.WorkerGroupSpecs {
		wg := &w.Cluster.WorkerGroupSpecs[i]
		if (wg.Suspend != nil && *wg.Suspend) || wg.NumOfHosts < 1 {
			continue
		}
		key := rayv1.RayWorkerReplicaIndexKey
		if wg.NumOfHosts > 1 {
			key = rayv1.RayWorkerReplicaNameKey
		}
		out = append(out, subGroup(wg.GroupName, wg.NumOfHosts, batchscheduler.WorkerGroupGangReplicas(w.Cluster, wg), key))
	}
	return out
}

func subGroup(group string, size, minGroups int32, matchKey string) map[string]any {
	return map[string]any{
		"name":           group,
		"subGroupSize":   int64(size),
		"minSubGroups":   int64(minGroups),
		"labelSelector":  map[string]any{"matchLabels": map[string]any{rayv1.RayNodeGroupLabelKey: group}},
		"matchLabelKeys": []any{matchKey},
	}
}

// AddMetadata implements batchscheduler.Scheduler: queue and priority-class labels, the PodGroup
// and task annotations, and schedulerName on pods and pod templates.
func (*Scheduler) AddMetadata(parent, child metav1.Object, group string) error {
	batchscheduler.CopyLabel(parent, child, QueueLabelKey, QueueLabelKey)
	batchscheduler.CopyLabel(parent, child, rayv1.RayPriorityClassNameLabelKey, rayv1.RayPriorityClassNameLabelKey)
	batchscheduler.SetAnnotation(child, GroupNameAnnotationKey, PodGroupName(parent))
	batchscheduler.SetAnnotation(child, TaskSpecAnnotationKey, group)
	batchscheduler.SetSchedulerName(child, Name)
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
