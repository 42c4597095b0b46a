// Package yunikorn integrates Apache YuniKorn (https://yunikorn.apache.org): pods carry the
// application id and queue YuniKorn reads, and with ray.io/gang-scheduling-enabled the task
// groups (one per Ray group) that YuniKorn reserves before the pods are placed. YuniKorn needs
// no object created beforehand.
package yunikorn

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
)

// Name is the --batch-scheduler value, and the pods' schedulerName.
const Name = "yunikorn"

// Labels on a RayCluster or RayJob, and the pod labels and annotations YuniKorn reads.
const (
	AppIDLabelKey           = "yunikorn.apache.org/app-id"
	QueueLabelKey           = "yunikorn.apache.org/queue"
	PodAppIDLabelKey        = "applicationId"
	PodQueueLabelKey        = "queue"
	TaskGroupNameKey        = "yunikorn.apache.org/task-group-name"
	TaskGroupsAnnotationKey = "yunikorn.apache.org/task-groups"
)

// Scheduler is the YuniKorn integration.
type Scheduler struct{}

var _ batchscheduler.Scheduler = (*Scheduler)(nil)

// New returns the YuniKorn integration.
func New() *Scheduler { return &Scheduler{} }

// Name implements batchscheduler.Scheduler.
func (*Scheduler) Name() string { return Name }

// GroupKind implements batchscheduler.Scheduler: YuniKorn needs no group object.
func (*Scheduler) GroupKind() (schema.GroupVersionKind, bool) {
	return schema.GroupVersionKind{}, false
}

// PodGroup implements batchscheduler.Scheduler.
func (*Scheduler) PodGroup(batchscheduler.Workload) (*unstructured.Unstructured, error) {
	return nil, nil
}

// CheckRayJob implements batchscheduler.Scheduler: task groups come from the cluster spec.
func (*Scheduler) CheckRayJob(job *rayv1.RayJob) error {
	if job.Spec.RayClusterSpec == nil && batchscheduler.GangSchedulingRequested(job) {
		return fmt.Errorf("spec.clusterSelector: gang scheduling with %s needs spec.rayClusterSpec, not an existing RayCluster", Name)
	}
	return nil
}

// AddMetadata implements batchscheduler.Scheduler.
func (*Scheduler) AddMetadata(parent, child metav1.Object, group string) error {
	batchscheduler.CopyLabel(parent, child, AppIDLabelKey, PodAppIDLabelKey)
	batchscheduler.CopyLabel(parent, child, QueueLabelKey, PodQueueLabelKey)
	batchscheduler.SetSchedulerName(child, Name)
	if !batchscheduler.GangSchedulingRequested(parent) {
		return nil
	}
	groups := parent.GetAnnotations()[TaskGroupsAnnotationKey]
	if groups == "" {
		var err error
		if groups, err = TaskGroups(parent); err != nil {
			return err
		}
	}
	batchscheduler.SetAnnotation(child, TaskGroupsAnnotationKey, groups)
	if group != "" {
		batchscheduler.SetAnnotation(child, TaskGroupNameKey, group)
	}
	return nil
}

// taskGroup is one entry of the task-groups annotation, in YuniKorn's JSON shape.
type taskGroup struct {
	Name                      string                            `json:"name"`
	MinResource               map[string]resource.Quantity      `json:"minResource"`
	NodeSelector              map[string]string                 `json:"nodeSelector,omitempty"`
	Tolerations               []corev1.Toleration               `json:"tolerations,omitempty"`
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	Affinity                  *corev1.Affinity                  `json:"affinity,omitempty"`
	MinMember                 int32                             `json:"minMember"`
}

// TaskGroups is the task-groups annotation of a RayCluster or RayJob: the head (one member),
// each worker group with minReplicas × numOfHosts members, and a RayJob's submitter.
func TaskGroups(parent metav1.Object) (string, error) {
	var spec *rayv1.RayClusterSpec
	var submitter *corev1.PodSpec
	switch o := parent.(type) {
	case *rayv1.RayCluster:
		spec = &o.Spec
	case *rayv1.RayJob:
		spec = o.Spec.RayClusterSpec
		submitter = defaultSubmitterPod()
		if o.Spec.SubmitterPodTemplate != nil {
			submitter = &o.Spec.SubmitterPodTemplate.Spec
		}
	}
	groups := []taskGroup{}
	if spec != nil {
		groups = append(groups, newTaskGroup(rayv1.HeadGroupName, 1, &spec.HeadGroupSpec.Template.Spec))
		for i := range spec.WorkerGroupSpecs {
			wg := &spec.WorkerGroupSpecs[i]
			minReplicas := int32(0)
			if wg.MinReplicas != nil {
				minReplicas = *wg.MinReplicas
			}
			groups = append(groups, newTaskGroup(wg.GroupName, minReplicas*max(wg.NumOfHosts, 1), &wg.Template.Spec))
		}
	}
	if submitter != nil {
		groups = append(groups, newTaskGroup(rayv1.SubmitterGroupName, 1, submitter))
	}
	raw, err := json.Marshal(groups)
	if err != nil {
		return "", fmt.Errorf("encoding the %s annotation: %w", TaskGroupsAnnotationKey, err)
	}
	return string(raw), nil
}

func newTaskGroup(name string, members int32, spec *corev1.PodSpec) taskGroup {
	res := map[string]resource.Quantity{}
	for n, q := range batchscheduler.PodResources(spec) {
		res[string(n)] = q
	}
	return taskGroup{
		Name: name, MinMember: members, MinResource: res,
		NodeSelector: spec.NodeSelector, Tolerations: spec.Tolerations, Affinity: spec.Affinity,
	}
}

// defaultSubmitterPod is what the RayJob controller's default submitter pod requests (its
// container asks for 500m CPU and 200Mi of memory, as KubeRay's does).
func defaultSubmitterPod() *corev1.PodSpec {
	return &corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("200Mi")},
	}}}}
}
