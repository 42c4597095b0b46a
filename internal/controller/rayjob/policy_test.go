package rayjob

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// outcome is the part of a decision the table compares.
type outcome struct {
	State     rayv1.JobDeploymentStatus
	Reason    rayv1.JobFailedReason
	JobStatus rayv1.JobStatus
	JobID     string
	Cluster   string
	Actions   []actionKind
	RequeueAt time.Time
	Failed    int32
	Succeeded int32
	Ended     bool
}

func summarize(d decision) outcome {
	o := outcome{State: d.status.JobDeploymentStatus, Reason: d.status.Reason, JobStatus: d.status.JobStatus,
		JobID: d.status.JobID, Cluster: d.status.RayClusterName, RequeueAt: d.requeueAt,
		Failed: deref(d.status.Failed), Succeeded: deref(d.status.Succeeded), Ended: d.status.EndTime != nil}
	for _, a := range d.actions {
		o.Actions = append(o.Actions, a.kind)
	}
	return o
}

func baseInput(job *rayv1.RayJob, now time.Time) *input {
	return &input{job: job, now: now, cfg: DefaultConfig(), clusterSuffix: "ccccc", jobSuffix: "jjjjj"}
}

func rayInfo(status dashboard.JobStatus, end *time.Time) rayJobFacts {
	info := &dashboard.JobDetails{Status: status, Message: "msg " + string(status), StartTime: uint64(t0.UnixMilli())}
	if end != nil {
		info.EndTime = ptr.To(uint64(end.UnixMilli()))
	}
	return rayJobFacts{checked: true, info: info}
}

func TestDecide(t *testing.T) {
	running := func(m rayv1.JobSubmissionMode) *jobWrapper {
		return makeJob("rj").mode(m).state(rayv1.JobDeploymentStatusRunning).started(t0).attempt("rj-ccccc", "rj-jjjjj")
	}
	readyCluster := func(j *rayv1.RayJob) *rayv1.RayCluster { return clusterFor(j, rayv1.ClusterStateReady) }
	later := t0.Add(10 * time.Second)

	cases := map[string]struct {
		in   func() *input
		want outcome
	}{
		"new: names the attempt and starts it": {
			in:   func() *input { return baseInput(makeJob("rj").obj(), t0) },
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, JobID: "rj-jjjjj", Cluster: "rj-ccccc"},
		},
		"new: user-provided job id": {
			in: func() *input {
				return baseInput(makeJob("rj").with(func(j *rayv1.RayJob) { j.Spec.JobID = "mine" }).obj(), t0)
			},
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, JobID: "mine", Cluster: "rj-ccccc"},
		},
		"new: InteractiveMode has no job id yet": {
			in:   func() *input { return baseInput(makeJob("rj").mode(rayv1.InteractiveMode).obj(), t0) },
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, Cluster: "rj-ccccc"},
		},
		"new: clusterSelector names the cluster": {
			in:   func() *input { return baseInput(makeJob("rj").selector("shared").obj(), t0) },
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, JobID: "rj-jjjjj", Cluster: "shared"},
		},
		"new: created suspended goes straight to Suspended (Kueue)": {
			in: func() *input {
				return baseInput(makeJob("rj").with(func(j *rayv1.RayJob) { j.Spec.Suspend = true }).obj(), t0)
			},
			want: outcome{State: rayv1.JobDeploymentStatusSuspended},
		},
		"initializing: creates the cluster": {
			in: func() *input {
				return baseInput(makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").obj(), later)
			},
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Actions: []actionKind{actCreateCluster}},
		},
		"initializing: waits for a cluster that is not ready, until the pre-running deadline": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").
					with(func(j *rayv1.RayJob) { j.Spec.PreRunningDeadlineSeconds = int32p(60) }).obj()
				in := baseInput(j, later)
				in.cluster = clusterFor(j, "")
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, JobID: "rj-jjjjj", Cluster: "rj-ccccc", RequeueAt: t0.Add(60 * time.Second)},
		},
		"initializing: K8sJobMode creates the submitter and runs": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusRunning, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Actions: []actionKind{actCreateSubmitter}},
		},
		"initializing: HTTPMode runs": {
			in: func() *input {
				j := makeJob("rj").mode(rayv1.HTTPMode).state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusRunning, JobID: "rj-jjjjj", Cluster: "rj-ccccc"},
		},
		"initializing: InteractiveMode waits for the job id": {
			in: func() *input {
				j := makeJob("rj").mode(rayv1.InteractiveMode).state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "").obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusWaiting, Cluster: "rj-ccccc"},
		},
		"initializing: missing selected cluster waits for its watch": {
			in: func() *input {
				return baseInput(makeJob("rj").selector("shared").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("shared", "rj-jjjjj").obj(), later)
			},
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, JobID: "rj-jjjjj", Cluster: "shared"},
		},
		"initializing: activeDeadlineSeconds passed": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").
					with(func(j *rayv1.RayJob) { j.Spec.ActiveDeadlineSeconds = int32p(5) }).obj()
				return baseInput(j, later)
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.DeadlineExceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Failed: 1, Ended: true},
		},
		"initializing: preRunningDeadlineSeconds passed": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").
					with(func(j *rayv1.RayJob) { j.Spec.PreRunningDeadlineSeconds = int32p(5) }).obj()
				return baseInput(j, later)
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.PreRunningDeadlineExceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Failed: 1, Ended: true},
		},
		"initializing: crash-looping head fails with a reason naming it": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").obj()
				in := baseInput(j, later)
				in.cluster = clusterFor(j, "")
				in.head = headPod(func(p *corev1.Pod) { p.Status.ContainerStatuses[0].RestartCount = 3 })
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.HeadPodCrashLoopBackOff, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Failed: 1, Ended: true},
		},
		"initializing: unschedulable head is given the pending timeout": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).started(t0).attempt("rj-ccccc", "rj-jjjjj").obj()
				in := baseInput(j, later)
				in.cluster = clusterFor(j, "")
				in.head = headPod(func(p *corev1.Pod) {
					p.Status.Phase = corev1.PodPending
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
						Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.NewTime(t0)}}
				})
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusInitializing, JobID: "rj-jjjjj", Cluster: "rj-ccccc", RequeueAt: t0.Add(DefaultHeadPodPendingTimeout)},
		},
		"waiting: the user's job id starts tracking": {
			in: func() *input {
				j := makeJob("rj").mode(rayv1.InteractiveMode).state(rayv1.JobDeploymentStatusWaiting).started(t0).attempt("rj-ccccc", "").
					with(func(j *rayv1.RayJob) { j.Spec.JobID = "theirs" }).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusRunning, JobID: "theirs", Cluster: "rj-ccccc"},
		},
		"running: HTTPMode submits a job the dashboard does not know": {
			in: func() *input {
				j := running(rayv1.HTTPMode).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.ray = rayJobFacts{checked: true, notFound: true}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusRunning, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Actions: []actionKind{actEnsureService, actSubmitJob, actWatchJob}},
		},
		"running: a job seen before and now unknown was lost by a head restart": {
			in: func() *input {
				j := running(rayv1.HTTPMode).jobStatus(rayv1.JobStatusRunning).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.ray = rayJobFacts{checked: true, notFound: true}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.JobLost, JobStatus: rayv1.JobStatusRunning, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: SUCCEEDED completes (clean-up waits for the next reconcile)": {
			in: func() *input {
				j := running(rayv1.HTTPMode).with(func(j *rayv1.RayJob) { j.Spec.ShutdownAfterJobFinishes = true }).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.ray = rayInfo(dashboard.JobStatusSucceeded, &later)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusComplete, JobStatus: rayv1.JobStatusSucceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Succeeded: 1, Ended: true},
		},
		"running: FAILED fails with AppFailed": {
			in: func() *input {
				j := running(rayv1.HTTPMode).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.ray = rayInfo(dashboard.JobStatusFailed, &later)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.AppFailed, JobStatus: rayv1.JobStatusFailed, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: FAILED with retries left retries": {
			in: func() *input {
				j := running(rayv1.HTTPMode).with(func(j *rayv1.RayJob) { j.Spec.BackoffLimit = int32p(2) }).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.ray = rayInfo(dashboard.JobStatusFailed, &later)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusRetrying, Reason: rayv1.AppFailed, JobStatus: rayv1.JobStatusFailed, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: the last retry fails for good": {
			in: func() *input {
				j := running(rayv1.HTTPMode).with(func(j *rayv1.RayJob) { j.Spec.BackoffLimit = int32p(1); j.Status.Failed = int32p(1) }).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.ray = rayInfo(dashboard.JobStatusFailed, &later)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.AppFailed, JobStatus: rayv1.JobStatusFailed, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 2, Ended: true},
		},
		"running: an unreachable dashboard starts the status-check timer": {
			in: func() *input {
				j := running(rayv1.HTTPMode).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.ray = rayJobFacts{checked: true, err: errors.New("connection refused")}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusRunning, JobID: "rj-jjjjj", Cluster: "rj-ccccc", RequeueAt: later.Add(time.Second)},
		},
		"running: the dashboard unreachable for too long fails": {
			in: func() *input {
				j := running(rayv1.HTTPMode).with(func(j *rayv1.RayJob) { j.Status.JobStatusCheckFailureStartTime = ptrTime(t0) }).obj()
				in := baseInput(j, t0.Add(DefaultStatusCheckTimeout))
				in.cluster = readyCluster(j)
				in.ray = rayJobFacts{checked: true, err: errors.New("connection refused")}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.JobStatusCheckTimeoutExceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: failed submitter Job fails with SubmissionFailed": {
			in: func() *input {
				j := running(rayv1.K8sJobMode).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.submitter = submitterFacts{exists: true, finished: true, failed: true, finishedAt: later, message: "BackoffLimitExceeded"}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.SubmissionFailed, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: submitter done but job unknown fails": {
			in: func() *input {
				j := running(rayv1.K8sJobMode).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.submitter = submitterFacts{exists: true, finished: true, finishedAt: later}
				in.ray = rayJobFacts{checked: true, notFound: true}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.AppFailed, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: a terminal job waits for its submitter to exit": {
			in: func() *input {
				j := running(rayv1.K8sJobMode).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.submitter = submitterFacts{exists: true}
				in.ray = rayInfo(dashboard.JobStatusSucceeded, &later)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusRunning, JobStatus: rayv1.JobStatusSucceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				RequeueAt: later.Add(DefaultTransitionGracePeriod)},
		},
		"running: a job still running long after its submitter exited fails": {
			in: func() *input {
				j := running(rayv1.K8sJobMode).obj()
				in := baseInput(j, later.Add(DefaultSubmitterFinishedGracePeriod))
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.submitter = submitterFacts{exists: true, finished: true, finishedAt: later}
				in.ray = rayInfo(dashboard.JobStatusRunning, nil)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.JobDeploymentStatusTransitionGracePeriodExceeded, JobStatus: rayv1.JobStatusFailed,
				JobID: "rj-jjjjj", Cluster: "rj-ccccc", Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: SidecarMode submitter exit code fails the job": {
			in: func() *input {
				j := running(rayv1.SidecarMode).jobStatus(rayv1.JobStatusRunning).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.headServiceCluster = "rj-ccccc"
				in.head = headPod(nil)
				in.submitter = submitterFacts{exists: true, finished: true, failed: true, finishedAt: later, message: "exit 1"}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, Reason: rayv1.SubmissionFailed, JobStatus: rayv1.JobStatusRunning, JobID: "rj-jjjjj", Cluster: "rj-ccccc",
				Actions: []actionKind{actKeepLogTail}, Failed: 1, Ended: true},
		},
		"running: suspend starts suspending": {
			in: func() *input {
				j := running(rayv1.HTTPMode).with(func(j *rayv1.RayJob) { j.Spec.Suspend = true }).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusSuspending, JobID: "rj-jjjjj", Cluster: "rj-ccccc"},
		},
		"suspending: deletes cluster and submitter and waits": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusSuspending).started(t0).attempt("rj-ccccc", "rj-jjjjj").obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.submitter = submitterFacts{exists: true}
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusSuspending, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Actions: []actionKind{actDeleteCluster, actDeleteSubmitter}},
		},
		"suspending: everything gone resets the attempt": {
			in: func() *input {
				return baseInput(makeJob("rj").state(rayv1.JobDeploymentStatusSuspending).started(t0).attempt("rj-ccccc", "rj-jjjjj").obj(), later)
			},
			want: outcome{State: rayv1.JobDeploymentStatusSuspended},
		},
		"retrying: everything gone starts a new attempt": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusRetrying).started(t0).attempt("rj-ccccc", "rj-jjjjj").
					with(func(j *rayv1.RayJob) { j.Status.Failed = int32p(1) }).obj()
				return baseInput(j, later)
			},
			want: outcome{State: rayv1.JobDeploymentStatusNew, Failed: 1},
		},
		"suspended: resuming starts over": {
			in: func() *input {
				return baseInput(makeJob("rj").state(rayv1.JobDeploymentStatusSuspended).obj(), later)
			},
			want: outcome{State: rayv1.JobDeploymentStatusNew},
		},
		"complete: shutdown waits for the TTL": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusComplete).started(t0).ended(t0).attempt("rj-ccccc", "rj-jjjjj").jobStatus(rayv1.JobStatusSucceeded).
					with(func(j *rayv1.RayJob) { j.Spec.ShutdownAfterJobFinishes = true; j.Spec.TTLSecondsAfterFinished = 60 }).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusComplete, JobStatus: rayv1.JobStatusSucceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Ended: true, RequeueAt: t0.Add(time.Minute)},
		},
		"complete: shutdown after the TTL deletes the cluster": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusComplete).started(t0).ended(t0).attempt("rj-ccccc", "rj-jjjjj").jobStatus(rayv1.JobStatusSucceeded).
					with(func(j *rayv1.RayJob) { j.Spec.ShutdownAfterJobFinishes = true; j.Spec.TTLSecondsAfterFinished = 5 }).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusComplete, JobStatus: rayv1.JobStatusSucceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Ended: true, Actions: []actionKind{actDeleteCluster}},
		},
		"failed: the most impactful overdue rule runs, the next pending one is scheduled": {
			in: func() *input {
				failed := rayv1.JobStatusFailed
				j := makeJob("rj").state(rayv1.JobDeploymentStatusFailed).started(t0).ended(t0).attempt("rj-ccccc", "rj-jjjjj").jobStatus(failed).
					with(func(j *rayv1.RayJob) {
						j.Spec.DeletionStrategy = &rayv1.DeletionStrategy{DeletionRules: []rayv1.DeletionRule{
							{Policy: rayv1.DeleteWorkers, Condition: rayv1.DeletionCondition{JobStatus: &failed, TTLSeconds: 0}},
							{Policy: rayv1.DeleteCluster, Condition: rayv1.DeletionCondition{JobStatus: &failed, TTLSeconds: 5}},
							{Policy: rayv1.DeleteSelf, Condition: rayv1.DeletionCondition{JobStatus: &failed, TTLSeconds: 30}},
						}}
					}).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusFailed, JobStatus: rayv1.JobStatusFailed, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Ended: true,
				Actions: []actionKind{actDeleteCluster}, RequeueAt: t0.Add(30*time.Second + DefaultDeletionRequeueSlack)},
		},
		"complete: legacy onSuccess policy": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusComplete).started(t0).ended(t0).attempt("rj-ccccc", "rj-jjjjj").jobStatus(rayv1.JobStatusSucceeded).
					with(func(j *rayv1.RayJob) {
						j.Spec.DeletionStrategy = &rayv1.DeletionStrategy{
							OnSuccess: &rayv1.DeletionPolicy{Policy: ptr.To(rayv1.DeleteSelf)},
							OnFailure: &rayv1.DeletionPolicy{Policy: ptr.To(rayv1.DeleteNone)},
						}
					}).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusComplete, JobStatus: rayv1.JobStatusSucceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Ended: true, Actions: []actionKind{actDeleteSelf}},
		},
		"complete: workers already suspended is done": {
			in: func() *input {
				j := makeJob("rj").state(rayv1.JobDeploymentStatusComplete).started(t0).ended(t0).attempt("rj-ccccc", "rj-jjjjj").jobStatus(rayv1.JobStatusSucceeded).
					with(func(j *rayv1.RayJob) {
						s := rayv1.JobStatusSucceeded
						j.Spec.DeletionStrategy = &rayv1.DeletionStrategy{DeletionRules: []rayv1.DeletionRule{
							{Policy: rayv1.DeleteWorkers, Condition: rayv1.DeletionCondition{JobStatus: &s}}}}
					}).obj()
				in := baseInput(j, later)
				in.cluster = readyCluster(j)
				in.cluster.Spec.WorkerGroupSpecs[0].Suspend = ptr.To(true)
				return in
			},
			want: outcome{State: rayv1.JobDeploymentStatusComplete, JobStatus: rayv1.JobStatusSucceeded, JobID: "rj-jjjjj", Cluster: "rj-ccccc", Ended: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := summarize(decide(tc.in()))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decision (-want,+got):\n%s", diff)
			}
		})
	}
}
