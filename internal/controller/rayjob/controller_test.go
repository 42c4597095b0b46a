package rayjob

import (
	"context"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

func TestHTTPModeSuccess(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "ok", rayv1.HTTPMode, `echo "hello $GREETING"`)
	rj.Spec.RuntimeEnvYAML = "env_vars:\n  GREETING: world\n"
	rj.Spec.Metadata = map[string]string{"team": "a"}
	create(t, rj)

	got := waitState(t, ns, "ok", rayv1.JobDeploymentStatusComplete)
	s := got.Status
	if s.JobStatus != rayv1.JobStatusSucceeded || deref(s.Succeeded) != 1 || deref(s.Failed) != 0 || s.EndTime == nil || s.StartTime == nil ||
		!strings.HasPrefix(s.JobID, "ok-") || !strings.HasPrefix(s.RayClusterName, "ok-") || s.RayJobStatusInfo.EndTime == nil ||
		s.DashboardURL != s.RayClusterName+"-head-svc."+ns+".svc.cluster.local:8265" {
		t.Fatalf("status: %s dashboard=%s", describe(got), s.DashboardURL)
	}
	rc, ok := getCluster(t, ns, s.RayClusterName)
	if !ok || !metav1.IsControlledBy(rc, got) || rc.Labels[rayv1.RayOriginatedFromCRDLabelKey] != "RayJob" {
		t.Fatalf("cluster %s: %+v", s.RayClusterName, rc)
	}
	// The job ran once on the head, with the runtime env and metadata.
	info, err := sharedClient(t).GetJob(context.Background(), s.JobID)
	if err != nil || info.Metadata["team"] != "a" || info.RuntimeEnv["env_vars"] == nil {
		t.Fatalf("job on the head: %+v, %v", info, err)
	}
	logs, _ := sharedClient(t).GetJobLogs(context.Background(), s.JobID)
	if !strings.Contains(logs, "hello world") {
		t.Fatalf("driver log = %q", logs)
	}
	// The head Service of the RayJob points at the cluster.
	var svc corev1.Service
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ok-head-svc"}, &svc); err != nil ||
		svc.Spec.Selector[rayv1.RayClusterLabelKey] != s.RayClusterName {
		t.Fatalf("head service: %+v %v", svc.Spec.Selector, err)
	}
	eventually(t, "transition and log events", hasEvent(t, ns, "ok", "DriverLogTail", "hello world"))
	eventually(t, "complete event", hasEvent(t, ns, "ok", "RayJobComplete", "SUCCEEDED"))
	// Shutdown was not requested: the cluster stays.
	if _, ok := getCluster(t, ns, s.RayClusterName); !ok {
		t.Fatal("cluster deleted without shutdownAfterJobFinishes")
	}
}

func TestHTTPModeFailureKeepsLogTail(t *testing.T) {
	ns := newNamespace(t)
	create(t, newRayJob(ns, "bad", rayv1.HTTPMode, `echo "boom marker"; exit 3`))

	got := waitState(t, ns, "bad", rayv1.JobDeploymentStatusFailed)
	s := got.Status
	if s.Reason != rayv1.AppFailed || s.JobStatus != rayv1.JobStatusFailed || deref(s.Failed) != 1 || s.EndTime == nil {
		t.Fatalf("status: %s", describe(got))
	}
	if !strings.Contains(s.Message, "driver log") || !strings.Contains(s.Message, "boom marker") {
		t.Fatalf("message has no log tail: %q", s.Message)
	}
	eventually(t, "failure event", hasEvent(t, ns, "bad", "RayJobFailed", "AppFailed"))
	eventually(t, "log tail event", hasEvent(t, ns, "bad", "DriverLogTail", "boom marker"))
}

func TestActiveDeadlineStopsJob(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "slow", rayv1.HTTPMode, "sleep 600")
	rj.Spec.ActiveDeadlineSeconds = ptr.To[int32](3)
	rj.Spec.BackoffLimit = ptr.To[int32](2) // a deadline is never retried
	create(t, rj)

	got := waitState(t, ns, "slow", rayv1.JobDeploymentStatusFailed)
	if got.Status.Reason != rayv1.DeadlineExceeded || deref(got.Status.Failed) != 1 {
		t.Fatalf("status: %s", describe(got))
	}
	// The Ray job was stopped, not left running on the cluster.
	eventually(t, "Ray job stopped", func() (bool, string) {
		info, err := sharedClient(t).GetJob(context.Background(), got.Status.JobID)
		if err != nil {
			return false, err.Error()
		}
		return info.Status.IsTerminal(), string(info.Status)
	})
}

func TestRetriesWithBackoffLimit(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "retry", rayv1.HTTPMode, "exit 3")
	rj.Spec.BackoffLimit = ptr.To[int32](1)
	create(t, rj)

	// Record every attempt's cluster and job id as the RayJob moves through them.
	attempts := map[string]string{}
	var final *rayv1.RayJob
	eventually(t, "two failed attempts", func() (bool, string) {
		cur := getJob(t, ns, "retry")
		if cur.Status.RayClusterName != "" && cur.Status.JobID != "" {
			attempts[cur.Status.RayClusterName] = cur.Status.JobID
		}
		final = cur
		return cur.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusFailed, describe(cur)
	})
	if deref(final.Status.Failed) != 2 || final.Status.Reason != rayv1.AppFailed {
		t.Fatalf("final status: %s", describe(final))
	}
	if len(attempts) != 2 {
		t.Fatalf("attempts (cluster -> job id) = %v, want 2 distinct clusters", attempts)
	}
	ids := map[string]bool{}
	for c, id := range attempts {
		ids[id] = true
		if c != final.Status.RayClusterName {
			// The first attempt's cluster was deleted before the retry.
			waitClusterGone(t, ns, c)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("job ids = %v, want a new one per attempt", attempts)
	}
	eventually(t, "retry event", hasEvent(t, ns, "retry", "RayJobRetrying", "attempt 1 failed"))
}

func TestInteractiveMode(t *testing.T) {
	ns := newNamespace(t)
	create(t, newRayJob(ns, "inter", rayv1.InteractiveMode, ""))
	waiting := waitState(t, ns, "inter", rayv1.JobDeploymentStatusWaiting)
	if waiting.Status.JobID != "" {
		t.Fatalf("job id set before the user gave one: %s", describe(waiting))
	}
	// The user submits through the dashboard, then hands the id over.
	id := fmt.Sprintf("interactive-%s", ns)
	if _, err := sharedClient(t).SubmitJob(context.Background(), &dashboard.JobSubmitRequest{Entrypoint: "echo interactive", SubmissionID: id}); err != nil {
		t.Fatal(err)
	}
	updateJob(t, ns, "inter", func(rj *rayv1.RayJob) { rj.Spec.JobID = id })
	got := waitState(t, ns, "inter", rayv1.JobDeploymentStatusComplete)
	if got.Status.JobID != id || got.Status.JobStatus != rayv1.JobStatusSucceeded {
		t.Fatalf("status: %s", describe(got))
	}
}

func TestClusterSelector(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "sel", rayv1.HTTPMode, "echo selected")
	rj.Spec.RayClusterSpec = nil
	rj.Spec.ClusterSelector = map[string]string{rayv1.RayJobClusterSelectorKey: "shared"}
	create(t, rj)
	// The cluster does not exist yet: the RayJob waits and says so.
	eventually(t, "RayClusterNotFound event", hasEvent(t, ns, "sel", "RayClusterNotFound", "shared"))
	if got := getJob(t, ns, "sel"); got.Status.JobDeploymentStatus != rayv1.JobDeploymentStatusInitializing {
		t.Fatalf("status: %s", describe(got))
	}
	// Creating it is enough: the cluster watch wakes the RayJob up.
	shared := newRayJob(ns, "x", rayv1.HTTPMode, "x").Spec.RayClusterSpec
	create(t, &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: ns}, Spec: *shared})

	got := waitState(t, ns, "sel", rayv1.JobDeploymentStatusComplete)
	if got.Status.RayClusterName != "shared" || got.Status.JobStatus != rayv1.JobStatusSucceeded {
		t.Fatalf("status: %s", describe(got))
	}
	rc, ok := getCluster(t, ns, "shared")
	if !ok || rc.DeletionTimestamp != nil || len(rc.OwnerReferences) != 0 {
		t.Fatalf("selected cluster was touched: %+v", rc)
	}
}

func TestSuspendAndResume(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "susp", rayv1.HTTPMode, "sleep 600")
	rj.Spec.ShutdownAfterJobFinishes = true
	create(t, rj)
	eventually(t, "job running on Ray", func() (bool, string) {
		cur := getJob(t, ns, "susp")
		return cur.Status.JobStatus == rayv1.JobStatusRunning, describe(cur)
	})
	first := getJob(t, ns, "susp").Status.RayClusterName

	updateJob(t, ns, "susp", func(rj *rayv1.RayJob) { rj.Spec.Suspend = true })
	got := waitState(t, ns, "susp", rayv1.JobDeploymentStatusSuspended)
	if got.Status.RayClusterName != "" || got.Status.JobID != "" || got.Status.JobStatus != rayv1.JobStatusNew {
		t.Fatalf("suspended status not reset: %s", describe(got))
	}
	waitClusterGone(t, ns, first)

	updateJob(t, ns, "susp", func(rj *rayv1.RayJob) { rj.Spec.Suspend = false })
	eventually(t, "resumed on a new cluster", func() (bool, string) {
		cur := getJob(t, ns, "susp")
		return cur.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusRunning && cur.Status.RayClusterName != "" && cur.Status.RayClusterName != first, describe(cur)
	})
}

func TestCreatedSuspendedWaitsWithoutCluster(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "queued", rayv1.HTTPMode, "echo queued")
	rj.Spec.Suspend = true
	rj.Spec.ShutdownAfterJobFinishes = true
	create(t, rj)
	got := waitState(t, ns, "queued", rayv1.JobDeploymentStatusSuspended)
	var list rayv1.RayClusterList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil || len(list.Items) != 0 {
		t.Fatalf("clusters created for a suspended RayJob: %d %v (%s)", len(list.Items), err, describe(got))
	}
	updateJob(t, ns, "queued", func(rj *rayv1.RayJob) { rj.Spec.Suspend = false })
	waitState(t, ns, "queued", rayv1.JobDeploymentStatusComplete)
}

func TestShutdownAfterTTL(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "ttl", rayv1.HTTPMode, "echo ttl")
	rj.Spec.ShutdownAfterJobFinishes = true
	rj.Spec.TTLSecondsAfterFinished = 1
	create(t, rj)
	got := waitState(t, ns, "ttl", rayv1.JobDeploymentStatusComplete)
	waitClusterGone(t, ns, got.Status.RayClusterName)
	eventually(t, "deletion event", hasEvent(t, ns, "ttl", "DeletedRayCluster", "shutdownAfterJobFinishes"))
}

func TestDeletionRules(t *testing.T) {
	succeeded := rayv1.JobStatusSucceeded
	rule := func(p rayv1.DeletionPolicyType) *rayv1.DeletionStrategy {
		return &rayv1.DeletionStrategy{DeletionRules: []rayv1.DeletionRule{{Policy: p, Condition: rayv1.DeletionCondition{JobStatus: &succeeded}}}}
	}
	cases := map[string]struct {
		strategy    *rayv1.DeletionStrategy
		deletesSelf bool
		check       func(t *testing.T, ns string, done *rayv1.RayJob)
	}{
		"DeleteWorkers suspends every worker group": {
			strategy: rule(rayv1.DeleteWorkers),
			check: func(t *testing.T, ns string, done *rayv1.RayJob) {
				eventually(t, "workers suspended", func() (bool, string) {
					rc, ok := getCluster(t, ns, done.Status.RayClusterName)
					if !ok {
						return false, "cluster gone"
					}
					s := rc.Spec.WorkerGroupSpecs[0].Suspend
					return s != nil && *s && rc.DeletionTimestamp == nil, fmt.Sprintf("suspend=%v", s)
				})
			},
		},
		"DeleteCluster deletes the cluster": {
			strategy: rule(rayv1.DeleteCluster),
			check: func(t *testing.T, ns string, done *rayv1.RayJob) {
				waitClusterGone(t, ns, done.Status.RayClusterName)
			},
		},
		"DeleteSelf deletes the RayJob (its children carry owner references for the GC)": {
			strategy:    rule(rayv1.DeleteSelf),
			deletesSelf: true,
			check: func(t *testing.T, ns string, last *rayv1.RayJob) {
				eventually(t, "deletion event", hasEvent(t, ns, "del", "DeletedRayJob", "deletion rule DeleteSelf"))
				// The RayJob may be gone before the test ever saw its status, so find its cluster by
				// listing rather than by status.rayClusterName.
				var clusters rayv1.RayClusterList
				if err := k8s.List(context.Background(), &clusters, client.InNamespace(ns)); err != nil {
					t.Fatal(err)
				}
				if len(clusters.Items) != 1 || !metav1.IsControlledBy(&clusters.Items[0], last) {
					t.Fatalf("want the RayJob's one cluster, controlled by it for the GC; got %+v", clusters.Items)
				}
			},
		},
		"DeleteNone keeps everything": {
			strategy: rule(rayv1.DeleteNone),
			check: func(t *testing.T, ns string, done *rayv1.RayJob) {
				if rc, ok := getCluster(t, ns, done.Status.RayClusterName); !ok || rc.DeletionTimestamp != nil {
					t.Fatal("cluster deleted by DeleteNone")
				}
			},
		},
		"legacy onSuccess DeleteCluster": {
			strategy: &rayv1.DeletionStrategy{
				OnSuccess: &rayv1.DeletionPolicy{Policy: ptr.To(rayv1.DeleteCluster)},
				OnFailure: &rayv1.DeletionPolicy{Policy: ptr.To(rayv1.DeleteNone)},
			},
			check: func(t *testing.T, ns string, done *rayv1.RayJob) {
				waitClusterGone(t, ns, done.Status.RayClusterName)
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			rj := newRayJob(ns, "del", rayv1.HTTPMode, "echo done")
			rj.Spec.DeletionStrategy = tc.strategy
			create(t, rj)
			if tc.deletesSelf {
				last := rj.DeepCopy() // create filled in its UID
				eventually(t, "RayJob deleted", func() (bool, string) {
					cur := &rayv1.RayJob{}
					err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "del"}, cur)
					if err == nil {
						last = cur
						return false, describe(cur)
					}
					return apierrors.IsNotFound(err), err.Error()
				})
				tc.check(t, ns, last)
				return
			}
			done := waitState(t, ns, "del", rayv1.JobDeploymentStatusComplete)
			tc.check(t, ns, done)
		})
	}
}

func TestK8sJobModeSubmitter(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "k8s", rayv1.K8sJobMode, "python -c 'print(1)'")
	rj.Spec.SubmitterConfig = &rayv1.SubmitterConfig{BackoffLimit: ptr.To[int32](4)}
	create(t, rj)
	running := waitState(t, ns, "k8s", rayv1.JobDeploymentStatusRunning)

	var job batchv1.Job
	eventually(t, "submitter Job", func() (bool, string) {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "k8s"}, &job)
		return err == nil, fmt.Sprint(err)
	})
	ctr := job.Spec.Template.Spec.Containers[0]
	addr := running.Status.DashboardURL
	if !metav1.IsControlledBy(&job, running) || *job.Spec.BackoffLimit != 4 || ctr.Image != "rayk8s/rayk8s:test" ||
		job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || len(ctr.Args) != 1 ||
		!strings.Contains(ctr.Args[0], "if ! ray job status --address http://"+addr+" '"+running.Status.JobID+"'") ||
		!strings.Contains(ctr.Args[0], "--no-wait") || !strings.Contains(ctr.Args[0], "ray job logs --address http://"+addr+" --follow") {
		t.Fatalf("submitter Job: owner=%v backoff=%d image=%s args=%v", job.OwnerReferences, *job.Spec.BackoffLimit, ctr.Image, ctr.Args)
	}
	// Play the submitter: submit the job as the script would; the RayJob follows it.
	if _, err := sharedClient(t).SubmitJob(context.Background(), &dashboard.JobSubmitRequest{Entrypoint: "echo via submitter", SubmissionID: running.Status.JobID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "job seen as SUCCEEDED while the submitter runs", func() (bool, string) {
		cur := getJob(t, ns, "k8s")
		return cur.Status.JobStatus == rayv1.JobStatusSucceeded && cur.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusRunning, describe(cur)
	})
	// The submitter fails (e.g. its log follow broke): the RayJob fails naming it.
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
	}
	if err := k8s.Status().Update(context.Background(), &job); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, ns, "k8s", rayv1.JobDeploymentStatusFailed)
	if got.Status.Reason != rayv1.SubmissionFailed || !strings.Contains(got.Status.Message, "BackoffLimitExceeded") {
		t.Fatalf("status: %s", describe(got))
	}
}

// headPodFor writes a head pod of the cluster, as the RayCluster controller and kubelet would.
func headPodFor(t *testing.T, rc *rayv1.RayCluster, containers []string, status corev1.PodStatus) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: rc.Name + "-head-abcde", Namespace: rc.Namespace,
			Labels: map[string]string{rayv1.RayClusterLabelKey: rc.Name, rayv1.RayNodeTypeLabelKey: string(rayv1.HeadNode)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: rayv1.GroupVersion.String(), Kind: "RayCluster", Name: rc.Name, UID: rc.UID,
				Controller: ptr.To(true)}}},
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "img"})
	}
	create(t, pod)
	pod.Status = status
	if err := k8s.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func TestSidecarModeTracksSubmitterContainer(t *testing.T) {
	for name, exit := range map[string]int32{"success": 0, "failure": 1} {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			create(t, newRayJob(ns, "side", rayv1.SidecarMode, "echo sidecar"))
			running := waitState(t, ns, "side", rayv1.JobDeploymentStatusRunning)
			rc, _ := getCluster(t, ns, running.Status.RayClusterName)
			head := rc.Spec.HeadGroupSpec.Template.Spec
			if len(head.Containers) != 2 || head.Containers[1].Name != SubmitterContainerName || head.RestartPolicy != corev1.RestartPolicyNever {
				t.Fatalf("head template: %+v", head)
			}
			// The sidecar submits and exits with the job's outcome.
			entry := "echo sidecar"
			if exit != 0 {
				entry = "exit 1"
			}
			if _, err := sharedClient(t).SubmitJob(context.Background(), &dashboard.JobSubmitRequest{Entrypoint: entry, SubmissionID: running.Status.JobID}); err != nil {
				t.Fatal(err)
			}
			headPodFor(t, rc, []string{"ray-head", SubmitterContainerName}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "ray-head", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
				{Name: SubmitterContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, FinishedAt: metav1.Now()}}},
			}})
			if exit == 0 {
				got := waitState(t, ns, "side", rayv1.JobDeploymentStatusComplete)
				if got.Status.JobStatus != rayv1.JobStatusSucceeded {
					t.Fatalf("status: %s", describe(got))
				}
				return
			}
			got := waitState(t, ns, "side", rayv1.JobDeploymentStatusFailed)
			if (got.Status.Reason != rayv1.AppFailed && got.Status.Reason != rayv1.SubmissionFailed) || !strings.Contains(got.Status.Message, "exit") {
				t.Fatalf("status: %s", describe(got))
			}
		})
	}
}

func TestCrashLoopingHeadFailsTheJob(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "crash", rayv1.HTTPMode, "echo never")
	rj.Annotations = map[string]string{manualClusterAnnotation: "true"}
	create(t, rj)
	var rc *rayv1.RayCluster
	eventually(t, "cluster created", func() (bool, string) {
		cur := getJob(t, ns, "crash")
		if cur.Status.RayClusterName == "" {
			return false, describe(cur)
		}
		c, ok := getCluster(t, ns, cur.Status.RayClusterName)
		rc = c
		return ok, describe(cur)
	})
	headPodFor(t, rc, []string{"ray-head"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "ray-head", RestartCount: 3,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 127, Reason: "Error", Message: "bash: raay: command not found"}},
	}}})
	got := waitState(t, ns, "crash", rayv1.JobDeploymentStatusFailed)
	if got.Status.Reason != rayv1.HeadPodCrashLoopBackOff || !strings.Contains(got.Status.Message, "exit code 127") {
		t.Fatalf("status: %s", describe(got))
	}
}

func TestHeadRestartThatLostTheJobIsReported(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "lost", rayv1.HTTPMode, "sleep 600")
	rj.Annotations = map[string]string{manualClusterAnnotation: "true"}
	create(t, rj)
	var rc *rayv1.RayCluster
	eventually(t, "cluster created", func() (bool, string) {
		cur := getJob(t, ns, "lost")
		if cur.Status.RayClusterName == "" {
			return false, describe(cur)
		}
		c, ok := getCluster(t, ns, cur.Status.RayClusterName)
		rc = c
		return ok, describe(cur)
	})
	heads.dedicate(t, ns, rc.Name)
	if err := setClusterReady(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "job running", func() (bool, string) {
		cur := getJob(t, ns, "lost")
		return cur.Status.JobStatus == rayv1.JobStatusRunning, describe(cur)
	})
	// The head restarts without fault tolerance: a fresh job table.
	heads.dedicate(t, ns, rc.Name)
	got := waitState(t, ns, "lost", rayv1.JobDeploymentStatusFailed)
	if got.Status.Reason != rayv1.JobLost {
		t.Fatalf("status: %s", describe(got))
	}
}

func TestValidationFailed(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "invalid", rayv1.HTTPMode, "echo")
	rj.Spec.RuntimeEnvYAML = "pip: [unclosed"
	create(t, rj)
	got := waitState(t, ns, "invalid", rayv1.JobDeploymentStatusValidationFailed)
	if got.Status.Reason != rayv1.ValidationFailed || !strings.Contains(got.Status.Message, "spec.runtimeEnvYAML") || got.Status.RayClusterName != "" {
		t.Fatalf("status: %s", describe(got))
	}
	eventually(t, "warning event", hasEvent(t, ns, "invalid", "InvalidRayJobSpec", "spec.runtimeEnvYAML"))
	// Fixing the spec starts the job.
	updateJob(t, ns, "invalid", func(rj *rayv1.RayJob) { rj.Spec.RuntimeEnvYAML = "env_vars: {A: b}" })
	waitState(t, ns, "invalid", rayv1.JobDeploymentStatusComplete)
}

func TestManagedByMultiKueueIsLeftAlone(t *testing.T) {
	ns := newNamespace(t)
	rj := newRayJob(ns, "mk", rayv1.HTTPMode, "echo")
	rj.Spec.ManagedBy = ptr.To(rayv1.MultiKueueController)
	create(t, rj)
	// A RayJob reconciled by us gets the finalizer at once; wait for a later one to have it, then
	// check this one never got anything.
	create(t, newRayJob(ns, "ours", rayv1.HTTPMode, "echo"))
	waitState(t, ns, "ours", rayv1.JobDeploymentStatusComplete)
	got := getJob(t, ns, "mk")
	if len(got.Finalizers) != 0 || got.Status.JobDeploymentStatus != rayv1.JobDeploymentStatusNew {
		t.Fatalf("managedBy MultiKueue was reconciled: finalizers=%v %s", got.Finalizers, describe(got))
	}
}
