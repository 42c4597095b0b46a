package rayjob

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// input is everything a decision depends on, gathered once per reconcile. The policy functions
// read it and never call out.
type input struct {
	job *rayv1.RayJob
	now time.Time
	cfg Config

	// suffixes for generated names (random in production, fixed in tests).
	clusterSuffix, jobSuffix string

	// cluster is the RayCluster named by status.rayClusterName (nil when absent). For a created
	// cluster it must be controlled by this RayJob.
	cluster *rayv1.RayCluster
	// head describes the cluster's head pod.
	head headPodFacts
	// submitter describes the K8sJobMode Job or the SidecarMode container.
	submitter submitterFacts
	// ray is the dashboard's view of the job (gathered only while Running).
	ray rayJobFacts
	// headServiceCluster is the cluster "<rayjob>-head-svc" points at ("" when it does not exist).
	headServiceCluster string
}

type submitterFacts struct {
	// exists: the submitter Job exists (K8sJobMode); the container was seen (SidecarMode).
	exists bool
	// deleting: the submitter Job is being deleted.
	deleting bool
	// finished, failed: the submitter ended (failed = unsuccessfully) at finishedAt.
	finished, failed bool
	finishedAt       time.Time
	message          string
}

type rayJobFacts struct {
	// checked: the dashboard was asked.
	checked bool
	info    *dashboard.JobDetails
	// notFound: the dashboard answered 404.
	notFound bool
	// err is any other failure to ask (resolver, network, 5xx).
	err error
}

// decision is what the policy wants: the new status, the side effects, and when to look again.
type decision struct {
	status  rayv1.RayJobStatus
	actions []action
	// requeueAt is the earliest time the RayJob must be reconciled again without a watch event.
	requeueAt time.Time
	// events are queued by the policy and emitted after the status write.
	events reconcilekit.Events
}

type actionKind string

const (
	actCreateCluster   actionKind = "CreateCluster"
	actCreateSubmitter actionKind = "CreateSubmitter"
	actSubmitJob       actionKind = "SubmitJob"
	actWatchJob        actionKind = "WatchJob"
	actEnsureService   actionKind = "EnsureHeadService"
	actDeleteCluster   actionKind = "DeleteCluster"
	actDeleteWorkers   actionKind = "DeleteWorkers"
	actDeleteSubmitter actionKind = "DeleteSubmitter"
	actDeleteSelf      actionKind = "DeleteSelf"
	actStopJob         actionKind = "StopJob"
	actKeepLogTail     actionKind = "KeepLogTail"
)

type action struct {
	kind actionKind
	// note explains why (events).
	note string
}

func (d *decision) do(kind actionKind, note string) {
	d.actions = append(d.actions, action{kind: kind, note: note})
}

func (d *decision) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	if d.requeueAt.IsZero() || t.Before(d.requeueAt) {
		d.requeueAt = t
	}
}

// decide runs KubeRay's RayJob state machine for one reconcile over gathered facts
// (docs/controllers.md).
func decide(in *input) decision {
	d := decision{status: *in.job.Status.DeepCopy()}
	switch in.job.Status.JobDeploymentStatus {
	case rayv1.JobDeploymentStatusNew:
		decideNew(in, &d)
	case rayv1.JobDeploymentStatusInitializing:
		decideInitializing(in, &d)
	case rayv1.JobDeploymentStatusWaiting:
		decideWaiting(in, &d)
	case rayv1.JobDeploymentStatusRunning:
		decideRunning(in, &d)
	case rayv1.JobDeploymentStatusSuspending, rayv1.JobDeploymentStatusRetrying:
		decideTearDown(in, &d)
	case rayv1.JobDeploymentStatusSuspended:
		decideSuspended(in, &d)
	case rayv1.JobDeploymentStatusComplete, rayv1.JobDeploymentStatusFailed:
		decideFinished(in, &d)
	case rayv1.JobDeploymentStatusValidationFailed:
		// The spec is valid again (the caller validated it): clean up the previous attempt, if
		// any, and start over.
		d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusRetrying
		d.status.Reason, d.status.Message = "", ""
	default:
		d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusValidationFailed
		d.status.Reason = rayv1.ValidationFailed
		d.status.Message = fmt.Sprintf("status.jobDeploymentStatus: unknown value %q", in.job.Status.JobDeploymentStatus)
	}
	finishAttempt(in, &d)
	return d
}

// decideNew names the attempt (job id, cluster) and starts it, or goes straight to Suspended when
// the RayJob was created suspended (Kueue creates RayJobs suspended and admits them later).
func decideNew(in *input, d *decision) {
	spec := &in.job.Spec
	if spec.Suspend {
		d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusSuspended
		return
	}
	if spec.SubmissionMode != rayv1.InteractiveMode && d.status.JobID == "" {
		d.status.JobID = spec.JobID
		if d.status.JobID == "" {
			d.status.JobID = in.job.Name + "-" + in.jobSuffix
		}
	}
	if d.status.RayClusterName == "" {
		if sel := clusterSelectorName(in.job); sel != "" {
			d.status.RayClusterName = sel
		} else {
			d.status.RayClusterName = in.job.Name + "-" + in.clusterSuffix
		}
	}
	d.status.JobStatus = rayv1.JobStatusNew
	d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusInitializing
	d.status.StartTime = ptrTime(in.now)
	d.status.EndTime = nil
	d.status.Reason, d.status.Message = "", ""
}

// decideInitializing gets the cluster ready and hands the job to the submission mode.
func decideInitializing(in *input, d *decision) {
	if in.job.Spec.Suspend {
		d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusSuspending
		return
	}
	if checkDeadlines(in, d) || checkHeadPod(in, d) {
		return
	}
	if in.cluster == nil {
		if clusterSelectorName(in.job) != "" {
			d.events.Add(corev1.EventTypeWarning, "RayClusterNotFound", "Select",
				"RayCluster %s named by clusterSelector does not exist", d.status.RayClusterName)
			d.status.Message = fmt.Sprintf("Waiting for RayCluster %s named by clusterSelector to exist", d.status.RayClusterName)
			return
		}
		d.do(actCreateCluster, "")
		d.status.Message = fmt.Sprintf("Creating RayCluster %s", d.status.RayClusterName)
		return
	}
	d.status.RayClusterStatus = *in.cluster.Status.DeepCopy()
	if in.cluster.DeletionTimestamp != nil {
		// Somebody deleted our cluster before the job ran; the cluster watch brings us back once
		// it is gone and a new one can be created under the same name.
		d.status.Message = fmt.Sprintf("RayCluster %s is being deleted", in.cluster.Name)
		return
	}
	if in.cluster.Status.State != rayv1.ClusterStateReady {
		d.status.Message = fmt.Sprintf("Waiting for RayCluster %s to be ready", in.cluster.Name)
		return
	}
	d.status.DashboardURL = dashboardAddress(in.cluster, in.cfg)
	d.status.Message = ""
	switch in.job.Spec.SubmissionMode {
	case rayv1.InteractiveMode:
		d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusWaiting
		d.status.Message = "Waiting for spec.jobId: submit the job to the cluster and set its submission id"
		decideWaiting(in, d)
		return
	case rayv1.HTTPMode, rayv1.SidecarMode:
	default: // K8sJobMode
		if !in.submitter.exists {
			d.do(actCreateSubmitter, "")
		}
	}
	d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusRunning
}

// decideWaiting waits (InteractiveMode) until the user names the job they submitted.
func decideWaiting(in *input, d *decision) {
	if in.job.Spec.Suspend {
		d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusSuspending
		return
	}
	if checkDeadlines(in, d) || checkHeadPod(in, d) {
		return
	}
	if in.job.Spec.JobID == "" {
		return
	}
	d.status.JobID = in.job.Spec.JobID
	d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusRunning
	d.status.Message = ""
}

// decideRunning follows the Ray job to its end.
func decideRunning(in *input, d *decision) {
	spec := &in.job.Spec
	if spec.Suspend {
		d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusSuspending
		return
	}
	if checkDeadlines(in, d) {
		return
	}
	st := &d.status
	// Ray said the job ended but the RayJob could not complete (e.g. the submitter never
	// finished): do not stay Running forever.
	if rayv1.IsJobTerminal(st.JobStatus) && st.RayJobStatusInfo.EndTime != nil {
		limit := st.RayJobStatusInfo.EndTime.Add(in.cfg.TransitionGracePeriod)
		if !in.now.Before(limit) {
			finishFromJobStatus(d, rayv1.JobDeploymentStatusTransitionGracePeriodExceeded,
				fmt.Sprintf("The Ray job ended %s ago but the RayJob could not complete within %s", in.now.Sub(st.RayJobStatusInfo.EndTime.Time).Round(time.Second), in.cfg.TransitionGracePeriod))
			return
		}
		d.wakeAt(limit)
	}
	if st.JobStatusCheckFailureStartTime != nil {
		limit := st.JobStatusCheckFailureStartTime.Add(in.cfg.StatusCheckTimeout)
		if !in.now.Before(limit) {
			fail(d, rayv1.JobStatusCheckTimeoutExceeded, fmt.Sprintf("The Ray job status could not be read for %s: %s", in.cfg.StatusCheckTimeout, st.Message))
			return
		}
		d.wakeAt(limit)
	}
	if in.cluster == nil || in.cluster.DeletionTimestamp != nil {
		fail(d, rayv1.AppFailed, fmt.Sprintf("RayCluster %s disappeared while the job was running", st.RayClusterName))
		return
	}
	st.RayClusterStatus = *in.cluster.Status.DeepCopy()
	if clusterSelectorName(in.job) == "" && in.headServiceCluster != in.cluster.Name {
		d.do(actEnsureService, "")
	}
	if checkHeadPod(in, d) {
		return
	}
	mode := spec.SubmissionMode
	sub := in.submitter
	if (mode == rayv1.K8sJobMode || mode == "" || mode == rayv1.SidecarMode) && sub.failed {
		reason := rayv1.SubmissionFailed
		if st.JobStatus == rayv1.JobStatusFailed {
			reason = rayv1.AppFailed
		}
		fail(d, reason, sub.message)
		return
	}

	ray := in.ray
	switch {
	case ray.err != nil:
		if st.JobStatusCheckFailureStartTime == nil {
			st.JobStatusCheckFailureStartTime = ptrTime(in.now)
		}
		st.Message = fmt.Sprintf("Failed to get the Ray job status: %v", ray.err)
		d.wakeAt(in.now.Add(checkBackoff(in.now, st.JobStatusCheckFailureStartTime.Time)))
		d.wakeAt(st.JobStatusCheckFailureStartTime.Add(in.cfg.StatusCheckTimeout))
	case ray.notFound:
		decideJobNotFound(in, d)
	case ray.info != nil:
		observeJob(in, d)
	}
}

// decideJobNotFound handles a 404 from the dashboard for the job id.
func decideJobNotFound(in *input, d *decision) {
	st := &d.status
	if st.JobStatus != rayv1.JobStatusNew {
		// We saw this job before; the dashboard forgot it, so the head restarted without GCS
		// fault tolerance. Resubmitting would silently run the job a second time.
		fail(d, rayv1.JobLost, fmt.Sprintf("Ray job %s was %s, but the dashboard no longer knows it: the head restarted and lost the job", st.JobID, st.JobStatus))
		return
	}
	switch in.job.Spec.SubmissionMode {
	case rayv1.HTTPMode:
		d.do(actSubmitJob, "")
		d.do(actWatchJob, "")
		return
	case rayv1.InteractiveMode:
	default:
		if in.submitter.finished {
			fail(d, rayv1.AppFailed, "Submitter completed but Ray job not found")
			return
		}
	}
	// The submitter (or the user) has not submitted yet. Bound the wait like an unreachable
	// dashboard, so a job that never appears fails instead of waiting forever.
	if st.JobStatusCheckFailureStartTime == nil {
		st.JobStatusCheckFailureStartTime = ptrTime(in.now)
	}
	st.Message = fmt.Sprintf("Waiting for Ray job %s to be submitted", st.JobID)
	d.wakeAt(in.now.Add(checkBackoff(in.now, st.JobStatusCheckFailureStartTime.Time)))
	d.wakeAt(st.JobStatusCheckFailureStartTime.Add(in.cfg.StatusCheckTimeout))
}

// observeJob copies the dashboard's view of the job and completes the RayJob when it ended.
func observeJob(in *input, d *decision) {
	st := &d.status
	info := in.ray.info
	st.JobStatusCheckFailureStartTime = nil
	st.JobStatus = rayv1.JobStatus(info.Status)
	st.Message = info.Message
	if info.StartTime > 0 {
		st.RayJobStatusInfo.StartTime = ptrTime(time.UnixMilli(int64(info.StartTime)))
	}
	if info.EndTime != nil && *info.EndTime > 0 {
		st.RayJobStatusInfo.EndTime = ptrTime(time.UnixMilli(int64(*info.EndTime)))
	}
	mode := in.job.Spec.SubmissionMode
	usesSubmitter := mode == rayv1.K8sJobMode || mode == "" || mode == rayv1.SidecarMode
	if !rayv1.IsJobTerminal(st.JobStatus) {
		if usesSubmitter && in.submitter.finished {
			limit := in.submitter.finishedAt.Add(in.cfg.SubmitterFinishedGracePeriod)
			if !in.now.Before(limit) {
				st.JobStatus = rayv1.JobStatusFailed
				fail(d, rayv1.JobDeploymentStatusTransitionGracePeriodExceeded,
					fmt.Sprintf("The submitter ended %s ago but the Ray job is still %s", in.now.Sub(in.submitter.finishedAt).Round(time.Second), info.Status))
				return
			}
			d.wakeAt(limit)
		}
		d.do(actWatchJob, "")
		d.wakeAt(in.now.Add(in.cfg.RunningRecheckInterval))
		return
	}
	if usesSubmitter && !in.submitter.finished {
		// The submitter follows the logs and exits right after the job; its watch brings us
		// back. The transition grace period bounds the wait.
		if st.RayJobStatusInfo.EndTime == nil {
			st.RayJobStatusInfo.EndTime = ptrTime(in.now)
		}
		d.wakeAt(st.RayJobStatusInfo.EndTime.Add(in.cfg.TransitionGracePeriod))
		return
	}
	finishFromJobStatus(d, rayv1.AppFailed, st.Message)
}

// finishFromJobStatus completes the RayJob from a terminal Ray job status: FAILED fails it with
// reason, SUCCEEDED and STOPPED complete it.
func finishFromJobStatus(d *decision, reason rayv1.JobFailedReason, message string) {
	if d.status.JobStatus == rayv1.JobStatusFailed {
		fail(d, reason, message)
		return
	}
	d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusComplete
	if reason == rayv1.JobDeploymentStatusTransitionGracePeriodExceeded {
		d.status.Reason = reason
	}
	d.status.Message = message
}

// decideTearDown deletes the attempt's cluster and submitter (Suspending, Retrying) and, once
// both are gone, resets the attempt.
func decideTearDown(in *input, d *decision) {
	waiting := false
	if in.cluster != nil && clusterSelectorName(in.job) == "" {
		waiting = true
		if in.cluster.DeletionTimestamp == nil {
			d.do(actDeleteCluster, string(in.job.Status.JobDeploymentStatus))
		}
	}
	if in.submitter.exists && usesSubmitterJob(in.job) {
		waiting = true
		if !in.submitter.deleting {
			d.do(actDeleteSubmitter, string(in.job.Status.JobDeploymentStatus))
		}
	}
	if waiting {
		return
	}
	st := &d.status
	st.RayClusterStatus = rayv1.RayClusterStatus{}
	st.RayClusterName, st.DashboardURL, st.JobID = "", "", ""
	st.Message, st.Reason = "", ""
	st.RayJobStatusInfo = rayv1.RayJobStatusInfo{}
	st.JobStatusCheckFailureStartTime = nil
	st.JobStatus = rayv1.JobStatusNew
	if in.job.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusSuspending {
		st.JobDeploymentStatus = rayv1.JobDeploymentStatusSuspended
		return
	}
	st.JobDeploymentStatus = rayv1.JobDeploymentStatusNew
	st.EndTime = nil
}

// decideSuspended resumes when spec.suspend is cleared.
func decideSuspended(in *input, d *decision) {
	if in.job.Spec.Suspend {
		return
	}
	d.status.JobStatus = rayv1.JobStatusNew
	d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusNew
}

// checkDeadlines fails the RayJob when activeDeadlineSeconds or preRunningDeadlineSeconds passed,
// and otherwise asks to be woken up when they will.
func checkDeadlines(in *input, d *decision) bool {
	start := in.job.Status.StartTime
	if start == nil {
		return false
	}
	if s := in.job.Spec.ActiveDeadlineSeconds; s != nil && *s > 0 {
		limit := start.Add(time.Duration(*s) * time.Second)
		if !in.now.Before(limit) {
			fail(d, rayv1.DeadlineExceeded, fmt.Sprintf("The RayJob was not finished %ds after it started (activeDeadlineSeconds)", *s))
			if in.job.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusRunning {
				// Stop the driver: on a selected cluster nothing else would.
				d.do(actStopJob, "activeDeadlineSeconds")
			}
			return true
		}
		d.wakeAt(limit)
	}
	if s := in.job.Spec.PreRunningDeadlineSeconds; s != nil && *s > 0 && in.job.Status.JobDeploymentStatus != rayv1.JobDeploymentStatusRunning {
		limit := start.Add(time.Duration(*s) * time.Second)
		if !in.now.Before(limit) {
			msg := fmt.Sprintf("The RayJob was not running %ds after it started (preRunningDeadlineSeconds)", *s)
			if hint := in.head.pendingHint(); hint != "" {
				msg += ": " + hint
			}
			fail(d, rayv1.PreRunningDeadlineExceeded, msg)
			return true
		}
		d.wakeAt(limit)
	}
	return false
}

// checkHeadPod fails the RayJob when its head pod cannot start or keeps failing.
func checkHeadPod(in *input, d *decision) bool {
	v := classifyHeadPod(in.head, in.now, in.cfg)
	if v.reason != "" {
		fail(d, v.reason, v.message)
		return true
	}
	d.wakeAt(v.recheckAt)
	return false
}

func fail(d *decision, reason rayv1.JobFailedReason, message string) {
	d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusFailed
	d.status.Reason = reason
	d.status.Message = message
}

// finishAttempt does the bookkeeping of an attempt that just ended: counters, end time, retries
// and the log tail.
func finishAttempt(in *input, d *decision) {
	prev, next := in.job.Status.JobDeploymentStatus, d.status.JobDeploymentStatus
	if prev == next || !rayv1.IsJobDeploymentTerminal(next) {
		return
	}
	st := &d.status
	if next == rayv1.JobDeploymentStatusFailed {
		st.Failed = ptrInt32(deref(st.Failed) + 1)
	} else if st.JobStatus == rayv1.JobStatusSucceeded {
		st.Succeeded = ptrInt32(deref(st.Succeeded) + 1)
	}
	st.EndTime = ptrTime(in.now)
	if prev == rayv1.JobDeploymentStatusRunning && st.JobID != "" && in.cluster != nil && in.cluster.DeletionTimestamp == nil {
		d.do(actKeepLogTail, "")
	}
	if next == rayv1.JobDeploymentStatusFailed && retryable(in.job, st) {
		st.JobDeploymentStatus = rayv1.JobDeploymentStatusRetrying
	}
	// Clean-up (deletion policies, TTL) runs in the next reconcile, which our own status write
	// triggers: the terminal state is persisted before anything is deleted, so a failed status
	// write can never leave a Running RayJob whose cluster is gone.
}

// retryable: a failed attempt is retried while failed ≤ backoffLimit, unless a deadline or the
// status-check timeout ended it (retrying cannot help there).
func retryable(job *rayv1.RayJob, st *rayv1.RayJobStatus) bool {
	limit := deref(job.Spec.BackoffLimit)
	if limit <= 0 || deref(st.Failed) >= limit+1 {
		return false
	}
	switch st.Reason {
	case rayv1.DeadlineExceeded, rayv1.JobStatusCheckTimeoutExceeded, rayv1.ValidationFailed:
		return false
	}
	return true
}

// checkBackoff is the wait before asking an unreachable dashboard again: it grows with how long
// the checks have been failing, from 1s up to 30s.
func checkBackoff(now, since time.Time) time.Duration {
	d := now.Sub(since) / 4
	return min(max(d, time.Second), 30*time.Second)
}

func clusterSelectorName(job *rayv1.RayJob) string {
	return job.Spec.ClusterSelector[rayv1.RayJobClusterSelectorKey]
}

func usesSubmitterJob(job *rayv1.RayJob) bool {
	m := job.Spec.SubmissionMode
	return m == rayv1.K8sJobMode || m == ""
}

func withStatus(job *rayv1.RayJob, st *rayv1.RayJobStatus) *rayv1.RayJob {
	j := job.DeepCopy()
	j.Status = *st.DeepCopy()
	return j
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

func ptrInt32(v int32) *int32 { return &v }

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
