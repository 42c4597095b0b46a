package rayjob

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/eventnote"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// actionOrder is the order side effects run in: the log tail is read before anything is deleted,
// creations come before the submission, deletions last.
var actionOrder = []actionKind{
	actKeepLogTail, actStopJob, actCreateCluster, actCreateSubmitter, actSubmitJob, actWatchJob,
	actEnsureService, actDeleteSubmitter, actDeleteWorkers, actDeleteCluster, actDeleteSelf,
}

// act carries out the decision's side effects. Outcomes that matter to the user (a failed
// submission, the log tail) are recorded in d.status and d.events; API errors are returned.
func (r *Reconciler) act(ctx context.Context, in *input, d *decision) error {
	slices.SortStableFunc(d.actions, func(a, b action) int {
		return slices.Index(actionOrder, a.kind) - slices.Index(actionOrder, b.kind)
	})
	var errs []error
	for _, a := range d.actions {
		if err := r.run(ctx, in, d, a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.kind, err))
		}
	}
	if err := r.batchScheduleCompletion(ctx, withStatus(in.job, &d.status), in.cluster); err != nil {
		errs = append(errs, fmt.Errorf("batch scheduling on completion: %w", err))
	}
	return errors.Join(errs...)
}

func (r *Reconciler) run(ctx context.Context, in *input, d *decision, a action) error {
	rj := in.job
	key := client.ObjectKeyFromObject(rj)
	log := logf.FromContext(ctx)
	switch a.kind {
	case actCreateCluster:
		rc, err := BuildRayCluster(withStatus(rj, &d.status))
		if err != nil {
			return err
		}
		if err := r.batchScheduleCluster(ctx, rj, rc); err != nil {
			d.events.Add(corev1.EventTypeWarning, "FailedToCreateRayCluster", "Create", "Failed to create RayCluster %s: %v", rc.Name, err)
			return err
		}
		log.V(2).Info("Creating RayCluster", "RayCluster", rc.Name)
		if err := r.client.Create(ctx, rc); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			d.events.Add(corev1.EventTypeWarning, "FailedToCreateRayCluster", "Create", "Failed to create RayCluster %s: %v", rc.Name, err)
			return err
		}
		d.events.Add(corev1.EventTypeNormal, "CreatedRayCluster", "Create", "Created RayCluster %s", rc.Name)

	case actCreateSubmitter:
		image := headImage(rj.Spec.RayClusterSpec)
		if in.cluster != nil {
			image = headImage(&in.cluster.Spec)
		}
		job, err := BuildSubmitterJob(withStatus(rj, &d.status), image)
		if err != nil {
			return err
		}
		if err := r.batchScheduleSubmitter(rj, &job.Spec.Template); err != nil {
			return err
		}
		log.V(2).Info("Creating submitter Job", "Job", job.Name)
		if err := r.client.Create(ctx, job); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			d.events.Add(corev1.EventTypeWarning, "FailedToCreateRayJobSubmitter", "Create", "Failed to create submitter Job %s: %v", job.GetName(), err)
			return err
		}
		d.events.Add(corev1.EventTypeNormal, "CreatedRayJobSubmitter", "Create", "Created submitter Job %s", job.Name)

	case actSubmitJob:
		r.submit(ctx, in, d)

	case actWatchJob:
		c, err := r.Resolver.DashboardClient(ctx, in.cluster)
		if err != nil {
			return nil // the next status check reports it
		}
		r.watcher.ensure(key, d.status.JobID, c)

	case actEnsureService:
		// "<rayjob>-head-svc": a stable name for the dashboard of whatever cluster the current
		// attempt runs on (KubeRay creates it too).
		svc := resources.BuildOwnerHeadService(rj, rayv1.RayJobCRD, in.cluster, r.cfg.Resources)
		if err := reconcilekit.Apply(ctx, r.client, FieldManager, svc); err != nil {
			return fmt.Errorf("applying Service %s: %w", svc.Name, err)
		}

	case actDeleteSubmitter:
		job := submitterStub(rj)
		log.V(2).Info("Deleting submitter Job", "Job", job.GetName())
		if err := r.client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			d.events.Add(corev1.EventTypeWarning, "FailedToDeleteRayJobSubmitter", "Delete", "Failed to delete submitter Job %s: %v", job.GetName(), err)
			return err
		}
		d.events.Add(corev1.EventTypeNormal, "DeletedRayJobSubmitter", "Delete", "Deleted submitter Job %s (%s)", job.GetName(), a.note)

	case actDeleteCluster:
		if in.cluster == nil || !metav1.IsControlledBy(in.cluster, rj) {
			return nil // never delete a cluster the RayJob only selected
		}
		log.V(2).Info("Deleting RayCluster", "RayCluster", in.cluster.Name, "reason", a.note)
		if err := r.client.Delete(ctx, in.cluster, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			d.events.Add(corev1.EventTypeWarning, "FailedToDeleteRayCluster", "Delete", "Failed to delete RayCluster %s: %v", in.cluster.Name, err)
			return err
		}
		d.events.Add(corev1.EventTypeNormal, "DeletedRayCluster", "Delete", "Deleted RayCluster %s (%s)", in.cluster.Name, a.note)

	case actDeleteWorkers:
		if in.cluster == nil || !metav1.IsControlledBy(in.cluster, rj) {
			return nil
		}
		before := in.cluster.DeepCopy()
		rc := in.cluster.DeepCopy()
		for i := range rc.Spec.WorkerGroupSpecs {
			rc.Spec.WorkerGroupSpecs[i].Suspend = ptr.To(true)
		}
		log.V(2).Info("Suspending worker groups", "RayCluster", rc.Name, "reason", a.note)
		if err := r.client.Patch(ctx, rc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			d.events.Add(corev1.EventTypeWarning, "FailedToUpdateRayCluster", "Update", "Failed to suspend the workers of RayCluster %s: %v", rc.Name, err)
			return err
		}
		d.events.Add(corev1.EventTypeNormal, "UpdatedRayCluster", "Update", "Suspended the worker groups of RayCluster %s (%s)", rc.Name, a.note)

	case actDeleteSelf:
		log.V(2).Info("Deleting RayJob", "reason", a.note)
		if err := r.client.Delete(ctx, rj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		d.events.Add(corev1.EventTypeNormal, "DeletedRayJob", "Delete", "Deleting the RayJob (%s)", a.note)

	case actStopJob:
		r.stopJob(ctx, in.cluster, d.status.JobID, d)

	case actKeepLogTail:
		r.keepLogTail(ctx, in, d)
	}
	return nil
}

// submit POSTs the job (HTTPMode). It only runs after the dashboard answered 404 for the id, and
// a 500 "use a different submission_id" means an earlier POST got through: either way the job is
// submitted exactly once. Other errors start the status-check timer, so a dashboard that keeps
// refusing fails the RayJob after StatusCheckTimeout instead of being retried forever.
func (r *Reconciler) submit(ctx context.Context, in *input, d *decision) {
	st := &d.status
	fail := func(err error) {
		if st.JobStatusCheckFailureStartTime == nil {
			st.JobStatusCheckFailureStartTime = ptrTime(in.now)
		}
		st.Message = fmt.Sprintf("Failed to submit Ray job %s: %v", st.JobID, err)
		d.wakeAt(in.now.Add(checkBackoff(in.now, st.JobStatusCheckFailureStartTime.Time)))
		d.events.Add(corev1.EventTypeWarning, "FailedToSubmitRayJob", "Submit", "%s", st.Message)
	}
	req, err := submitRequest(withStatus(in.job, st))
	if err != nil {
		fail(err)
		return
	}
	c, err := r.Resolver.DashboardClient(ctx, in.cluster)
	if err != nil {
		fail(err)
		return
	}
	logf.FromContext(ctx).V(2).Info("Submitting Ray job", "jobId", st.JobID)
	if _, err := c.SubmitJob(ctx, req); err != nil && !dashboard.IsDuplicateSubmission(err) {
		fail(err)
		return
	}
	st.JobStatusCheckFailureStartTime = nil
	st.Message = fmt.Sprintf("Submitted Ray job %s", st.JobID)
	d.events.Add(corev1.EventTypeNormal, "SubmittedRayJob", "Submit", "Submitted Ray job %s to RayCluster %s", st.JobID, in.cluster.Name)
}

// submitRequest is the POST /api/jobs/ body of the RayJob.
func submitRequest(rj *rayv1.RayJob) (*dashboard.JobSubmitRequest, error) {
	s := &rj.Spec
	req := &dashboard.JobSubmitRequest{
		Entrypoint:        s.Entrypoint,
		SubmissionID:      rj.Status.JobID,
		Metadata:          s.Metadata,
		EntrypointNumCPUs: float64(s.EntrypointNumCPUs),
		EntrypointNumGPUs: float64(s.EntrypointNumGPUs),
	}
	if s.RuntimeEnvYAML != "" {
		env, err := runtimeEnv(s.RuntimeEnvYAML)
		if err != nil {
			return nil, fmt.Errorf("spec.runtimeEnvYAML: %w", err)
		}
		req.RuntimeEnv = env
	}
	if s.EntrypointResources != "" {
		res, err := entrypointResources(s.EntrypointResources)
		if err != nil {
			return nil, fmt.Errorf("spec.entrypointResources: %w", err)
		}
		req.EntrypointResources = res
	}
	return req, nil
}

// stopJob asks the dashboard to stop the job; failures are reported in an event only (the cluster
// may already be gone, and the RayJob's own fate does not depend on it).
func (r *Reconciler) stopJob(ctx context.Context, cluster *rayv1.RayCluster, id string, d *decision) {
	if cluster == nil || cluster.DeletionTimestamp != nil || id == "" {
		return
	}
	c, err := r.Resolver.DashboardClient(ctx, cluster)
	if err == nil {
		_, err = c.StopJob(ctx, id)
	}
	if err != nil && !dashboard.IsNotFound(err) {
		d.events.Add(corev1.EventTypeWarning, "FailedToStopRayJob", "Stop", "Failed to stop Ray job %s: %v", id, err)
		return
	}
	d.events.Add(corev1.EventTypeNormal, "StoppedRayJob", "Stop", "Stopped Ray job %s", id)
}

// keepLogTail keeps the last LogTailBytes of the driver log of a job that just ended: in events
// (split to fit the 1 KiB note limit) and, when the attempt failed, in status.message.
func (r *Reconciler) keepLogTail(ctx context.Context, in *input, d *decision) {
	c, err := r.Resolver.DashboardClient(ctx, in.cluster)
	if err != nil {
		return
	}
	logs, err := c.GetJobLogs(ctx, d.status.JobID)
	if err != nil || logs == "" {
		return
	}
	tail := logTail(logs, LogTailBytes)
	failed := d.status.JobDeploymentStatus == rayv1.JobDeploymentStatusFailed || d.status.JobDeploymentStatus == rayv1.JobDeploymentStatusRetrying
	typ := corev1.EventTypeNormal
	if failed {
		typ = corev1.EventTypeWarning
		d.status.Message = fmt.Sprintf("%s\nLast %d bytes of the driver log:\n%s", d.status.Message, len(tail), tail)
	}
	chunks := splitNote(tail, eventnote.Max-32)
	for i, ch := range chunks {
		d.events.Add(typ, "DriverLogTail", "Finish", "Driver log of %s [%d/%d]:\n%s", d.status.JobID, i+1, len(chunks), ch)
	}
}

func submitterStub(rj *rayv1.RayJob) client.Object {
	j := &metav1.PartialObjectMetadata{}
	j.APIVersion, j.Kind = "batch/v1", "Job"
	j.Name, j.Namespace = SubmitterJobName(rj), rj.Namespace
	return j
}
