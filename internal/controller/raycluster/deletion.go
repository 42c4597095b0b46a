package raycluster

import (
	"context"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// Event reasons of the GCS fault-tolerance clean-up.
const (
	EventCreatedRedisCleanupJob        = "CreatedRedisCleanupJob"
	EventFailedToCreateRedisCleanupJob = "FailedToCreateRedisCleanupJob"
	EventRedisCleanupFailed            = "RedisCleanupFailed"
	EventRedisCleanupSucceeded         = "RedisCleanupSucceeded"
	EventForceDeletedStuckCluster      = "ForceDeletedStuckCluster"
)

// reconcileFinalizer adds the Redis clean-up finalizer to a live cluster that needs it and
// removes a stale one (fault tolerance turned off, or the rocksdb backend). It reports whether it
// patched: the reconcile then ends, and the patch's watch event brings the cluster back, so no
// pod is created before the finalizer is in place.
func (r *Reconciler) reconcileFinalizer(ctx context.Context, s *scope) (bool, error) {
	if r.cfg.EnableGCSFTRedisCleanup && resources.UsesRedisGCS(s.cluster) {
		return reconcilekit.AddFinalizer(ctx, r.client, s.cluster, rayv1.GCSFaultToleranceRedisCleanupFinalizer)
	}
	return reconcilekit.RemoveFinalizer(ctx, r.client, s.cluster, rayv1.GCSFaultToleranceRedisCleanupFinalizer)
}

// reconcileDelete runs the Redis clean-up of a cluster being deleted: delete every pod, wait
// until the head pod is gone, run the clean-up Job, and remove the finalizer when the Job
// finished (or failed, or the deletion timeout passed). Without the finalizer there is nothing
// to do: the garbage collector deletes the children through their owner references.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	c := s.cluster
	if !controllerutil.ContainsFinalizer(c, rayv1.GCSFaultToleranceRedisCleanupFinalizer) {
		return ctrl.Result{}, nil
	}
	deadline := c.DeletionTimestamp.Add(deletionTimeout(c))
	if !s.now.Before(deadline) {
		s.events.Add(corev1.EventTypeWarning, EventForceDeletedStuckCluster, "Cleanup",
			"Removing finalizer %s: Redis clean-up did not finish within %s; remove the cluster's keys from Redis by hand",
			rayv1.GCSFaultToleranceRedisCleanupFinalizer, deletionTimeout(c))
		return r.removeFinalizer(ctx, s)
	}
	s.wakeAt(deadline)

	if len(s.pods) > 0 {
		if err := r.deleteAllPods(ctx, s, "the cluster is being deleted"); err != nil {
			s.events.Emit(r.Recorder, c)
			return ctrl.Result{}, err
		}
	}
	if len(s.headPods()) > 0 || len(podsOfType(s.allPods, rayv1.HeadNode)) > 0 || r.awaitPendingCreates(s) {
		// Pod deletions (and pods created but not cached yet) come back through the watch.
		s.events.Emit(r.Recorder, c)
		return r.result(s), nil
	}
	job := cleanupJob(s.jobs)
	if job == nil {
		job = resources.BuildRedisCleanupJob(c, r.cfg.Resources)
		if job == nil {
			return ctrl.Result{}, fmt.Errorf("the redis clean-up job builder returned nothing")
		}
		if err := ensureControllerRef(c, job, r.client); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			s.events.Add(corev1.EventTypeWarning, EventFailedToCreateRedisCleanupJob, "Cleanup", "Failed to create Redis clean-up job: %v", err)
			s.events.Emit(r.Recorder, c)
			return ctrl.Result{}, fmt.Errorf("creating redis clean-up job: %w", err)
		}
		s.events.Add(corev1.EventTypeNormal, EventCreatedRedisCleanupJob, "Cleanup", "Created Redis clean-up job %s", job.Name)
		s.events.Emit(r.Recorder, c)
		return r.result(s), nil
	}
	switch {
	case jobCondition(job, batchv1.JobComplete):
		s.events.Add(corev1.EventTypeNormal, EventRedisCleanupSucceeded, "Cleanup", "Redis clean-up job %s completed", job.Name)
	case jobCondition(job, batchv1.JobFailed):
		s.events.Add(corev1.EventTypeWarning, EventRedisCleanupFailed, "Cleanup",
			"Redis clean-up job %s failed; remove the cluster's keys from Redis by hand", job.Name)
	default:
		// The Job watch brings us back when it finishes.
		return r.result(s), nil
	}
	return r.removeFinalizer(ctx, s)
}

func (r *Reconciler) removeFinalizer(ctx context.Context, s *scope) (ctrl.Result, error) {
	if _, err := reconcilekit.RemoveFinalizer(ctx, r.client, s.cluster, rayv1.GCSFaultToleranceRedisCleanupFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	s.events.Emit(r.Recorder, s.cluster)
	r.exp.forget(s.key)
	return ctrl.Result{}, nil
}

// deletionTimeout is the ray.io/gcs-ft-deletion-timeout annotation in seconds, or the default.
func deletionTimeout(c *rayv1.RayCluster) time.Duration {
	if v, ok := c.Annotations[rayv1.GCSFaultToleranceDeletionTimeoutAnnotationKey]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return DefaultGCSFTDeletionTimeout
}

func cleanupJob(jobs []batchv1.Job) *batchv1.Job {
	for i := range jobs {
		if jobs[i].Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.RedisCleanupNode) {
			return &jobs[i]
		}
	}
	if len(jobs) > 0 {
		return &jobs[0]
	}
	return nil
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
