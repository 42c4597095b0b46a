package raycluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/builder"

	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// watchBatchSchedulingGroups adds a watch on the batch scheduler's group objects, so a deleted
// or changed PodGroup is put back.
func (r *Reconciler) watchBatchSchedulingGroups(b *builder.Builder) *builder.Builder {
	if r.cfg.BatchScheduler == nil {
		return b
	}
	gvk, ok := r.cfg.BatchScheduler.GroupKind()
	if !ok {
		return b
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return b.Owns(u)
}

// reconcileBatchScheduling makes the group object the batch scheduler needs before the pods
// exist (a PodGroup), owned by the cluster, and keeps it in step with the spec.
func (r *Reconciler) reconcileBatchScheduling(ctx context.Context, s *scope) error {
	bs := r.cfg.BatchScheduler
	if bs == nil {
		return nil
	}
	want, err := bs.PodGroup(batchscheduler.ForRayCluster(s.cluster))
	if err != nil || want == nil {
		return err
	}
	if err := ensureControllerRef(s.cluster, want, r.client); err != nil {
		return err
	}
	return reconcilekit.ApplyGroup(ctx, r.client, FieldManager, want)
}

// addBatchSchedulingMetadata stamps a pod with what the batch scheduler reads (schedulerName,
// queue labels, group annotations).
func (r *Reconciler) addBatchSchedulingMetadata(s *scope, group string, pod *corev1.Pod) error {
	if r.cfg.BatchScheduler == nil {
		return nil
	}
	if err := r.cfg.BatchScheduler.AddMetadata(s.cluster, pod, group); err != nil {
		return fmt.Errorf("adding %s metadata: %w", r.cfg.BatchScheduler.Name(), err)
	}
	return nil
}
