// Package kaischeduler integrates NVIDIA KAI-Scheduler (https://github.com/NVIDIA/KAI-Scheduler):
// pods name the scheduler and carry the queue label; KAI's own pod grouper makes the PodGroups,
// so nothing is created beforehand.
package kaischeduler

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
)

// Name is the --batch-scheduler value, and the pods' schedulerName.
const Name = "kai-scheduler"

// QueueLabelKey on a RayCluster or RayJob names the KAI queue; pods carry it too. Without it KAI
// leaves the pods pending.
const QueueLabelKey = "kai.scheduler/queue"

// Scheduler is the KAI-Scheduler integration.
type Scheduler struct{}

var _ batchscheduler.Scheduler = (*Scheduler)(nil)

// New returns the KAI-Scheduler integration.
func New() *Scheduler { return &Scheduler{} }

// Name implements batchscheduler.Scheduler.
func (*Scheduler) Name() string { return Name }

// GroupKind implements batchscheduler.Scheduler: KAI makes its PodGroups itself.
func (*Scheduler) GroupKind() (schema.GroupVersionKind, bool) {
	return schema.GroupVersionKind{}, false
}

// PodGroup implements batchscheduler.Scheduler.
func (*Scheduler) PodGroup(batchscheduler.Workload) (*unstructured.Unstructured, error) {
	return nil, nil
}

// CheckRayJob implements batchscheduler.Scheduler: in K8sJobMode the submitter pod appears only
// once the cluster is ready, which KAI's grouper cannot gang with the cluster's pods.
func (*Scheduler) CheckRayJob(job *rayv1.RayJob) error {
	if job.Spec.SubmissionMode == rayv1.K8sJobMode || job.Spec.SubmissionMode == "" {
		return fmt.Errorf("spec.submissionMode: %s cannot gang-schedule K8sJobMode, whose submitter pod is created only after the RayCluster is ready", Name)
	}
	return nil
}

// AddMetadata implements batchscheduler.Scheduler.
func (*Scheduler) AddMetadata(parent, child metav1.Object, _ string) error {
	batchscheduler.SetSchedulerName(child, Name)
	batchscheduler.CopyLabel(parent, child, QueueLabelKey, QueueLabelKey)
	return nil
}
