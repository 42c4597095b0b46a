package rayjob

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"
)

// statusOf describes the RayJob for a failure message.
func statusOf(rj *rayv1.RayJob) string { return "status: " + describe(rj) }

var _ = Describe("RayJob controller", func() {
	It("runs a job in HTTPMode to success", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "ok", rayv1.HTTPMode, `echo "hello $GREETING"`)
		rj.Spec.RuntimeEnvYAML = "env_vars:\n  GREETING: world\n"
		rj.Spec.Metadata = map[string]string{"team": "a"}
		create(rj)

		got := waitState(ns, "ok", rayv1.JobDeploymentStatusComplete)
		s := got.Status
		Expect(got).To(And(
			HaveField("Status.JobStatus", rayv1.JobStatusSucceeded),
			HaveField("Status.Succeeded", HaveValue(BeEquivalentTo(1))),
			HaveField("Status.Failed", Or(BeNil(), HaveValue(BeZero()))),
			HaveField("Status.StartTime", Not(BeNil())),
			HaveField("Status.EndTime", Not(BeNil())),
			HaveField("Status.JobID", HavePrefix("ok-")),
			HaveField("Status.RayClusterName", HavePrefix("ok-")),
			HaveField("Status.RayJobStatusInfo.EndTime", Not(BeNil())),
			HaveField("Status.DashboardURL", s.RayClusterName+"-head-svc."+ns+".svc.cluster.local:8265"),
		), statusOf(got))
		rc, ok := getCluster(ns, s.RayClusterName)
		Expect(ok).To(BeTrue(), "cluster %s", s.RayClusterName)
		Expect(rc).To(BeControlledBy(got))
		Expect(rc.Labels).To(HaveKeyWithValue(rayv1.RayOriginatedFromCRDLabelKey, "RayJob"))
		// The job ran once on the head, with the runtime env and metadata.
		info, err := sharedClient().GetJob(context.Background(), s.JobID)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Metadata).To(HaveKeyWithValue("team", "a"), "job on the head")
		Expect(info.RuntimeEnv).To(HaveKeyWithValue("env_vars", Not(BeNil())), "job on the head")
		logs, _ := sharedClient().GetJobLogs(context.Background(), s.JobID)
		Expect(logs).To(ContainSubstring("hello world"), "driver log")
		// The head Service of the RayJob points at the cluster.
		var svc corev1.Service
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ok-head-svc"}, &svc)).To(Succeed())
		Expect(svc.Spec.Selector).To(HaveKeyWithValue(rayv1.RayClusterLabelKey, s.RayClusterName), "head service")
		Eventually(eventsOf(ns, "ok")).Should(HaveEvent("", "DriverLogTail", "hello world"), "transition and log events")
		Eventually(eventsOf(ns, "ok")).Should(HaveEvent("", "RayJobComplete", "SUCCEEDED"), "complete event")
		// Shutdown was not requested: the cluster stays.
		_, ok = getCluster(ns, s.RayClusterName)
		Expect(ok).To(BeTrue(), "cluster deleted without shutdownAfterJobFinishes")
	})

	It("keeps the log tail of a failed job in HTTPMode", func() {
		ns := newNamespace()
		create(newRayJob(ns, "bad", rayv1.HTTPMode, `echo "boom marker"; exit 3`))

		got := waitState(ns, "bad", rayv1.JobDeploymentStatusFailed)
		Expect(got).To(And(
			HaveField("Status.Reason", rayv1.AppFailed),
			HaveField("Status.JobStatus", rayv1.JobStatusFailed),
			HaveField("Status.Failed", HaveValue(BeEquivalentTo(1))),
			HaveField("Status.EndTime", Not(BeNil())),
		), statusOf(got))
		Expect(got.Status.Message).To(And(ContainSubstring("driver log"), ContainSubstring("boom marker")), "message has no log tail")
		Eventually(eventsOf(ns, "bad")).Should(HaveEvent("", "RayJobFailed", "AppFailed"), "failure event")
		Eventually(eventsOf(ns, "bad")).Should(HaveEvent("", "DriverLogTail", "boom marker"), "log tail event")
	})

	It("stops a job at its active deadline", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "slow", rayv1.HTTPMode, "sleep 600")
		rj.Spec.ActiveDeadlineSeconds = ptr.To[int32](3)
		rj.Spec.BackoffLimit = ptr.To[int32](2) // a deadline is never retried
		create(rj)

		got := waitState(ns, "slow", rayv1.JobDeploymentStatusFailed)
		Expect(got).To(And(
			HaveField("Status.Reason", rayv1.DeadlineExceeded),
			HaveField("Status.Failed", HaveValue(BeEquivalentTo(1))),
		), statusOf(got))
		// The Ray job was stopped, not left running on the cluster.
		Eventually(func() (dashboard.JobStatus, error) {
			info, err := sharedClient().GetJob(context.Background(), got.Status.JobID)
			if err != nil {
				return "", err
			}
			return info.Status, nil
		}).Should(Satisfy(dashboard.JobStatus.IsTerminal), "Ray job stopped")
	})

	It("retries up to backoffLimit", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "retry", rayv1.HTTPMode, "exit 3")
		rj.Spec.BackoffLimit = ptr.To[int32](1)
		create(rj)

		// Record every attempt's cluster and job id as the RayJob moves through them.
		attempts := map[string]string{}
		final := waitJob(ns, "retry", "two failed attempts", WithTransform(func(cur *rayv1.RayJob) *rayv1.RayJob {
			if cur.Status.RayClusterName != "" && cur.Status.JobID != "" {
				attempts[cur.Status.RayClusterName] = cur.Status.JobID
			}
			return cur
		}, HaveDeploymentStatus(rayv1.JobDeploymentStatusFailed)))
		Expect(final).To(And(
			HaveField("Status.Failed", HaveValue(BeEquivalentTo(2))),
			HaveField("Status.Reason", rayv1.AppFailed),
		), "final "+statusOf(final))
		Expect(attempts).To(HaveLen(2), "attempts (cluster -> job id), want 2 distinct clusters")
		ids := map[string]bool{}
		for c, id := range attempts {
			ids[id] = true
			if c != final.Status.RayClusterName {
				// The first attempt's cluster was deleted before the retry.
				waitClusterGone(ns, c)
			}
		}
		Expect(ids).To(HaveLen(2), "job ids %v, want a new one per attempt", attempts)
		Eventually(eventsOf(ns, "retry")).Should(HaveEvent("", "RayJobRetrying", "attempt 1 failed"), "retry event")
	})

	It("follows the job the user submits in InteractiveMode", func() {
		ns := newNamespace()
		create(newRayJob(ns, "inter", rayv1.InteractiveMode, ""))
		waiting := waitState(ns, "inter", rayv1.JobDeploymentStatusWaiting)
		Expect(waiting.Status.JobID).To(BeEmpty(), "job id set before the user gave one")
		// The user submits through the dashboard, then hands the id over.
		id := fmt.Sprintf("interactive-%s", ns)
		_, err := sharedClient().SubmitJob(context.Background(), &dashboard.JobSubmitRequest{Entrypoint: "echo interactive", SubmissionID: id})
		Expect(err).NotTo(HaveOccurred())
		updateJob(ns, "inter", func(rj *rayv1.RayJob) { rj.Spec.JobID = id })
		got := waitState(ns, "inter", rayv1.JobDeploymentStatusComplete)
		Expect(got).To(And(
			HaveField("Status.JobID", id),
			HaveField("Status.JobStatus", rayv1.JobStatusSucceeded),
		), statusOf(got))
	})

	It("runs on the cluster its clusterSelector names, once it exists", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "sel", rayv1.HTTPMode, "echo selected")
		rj.Spec.RayClusterSpec = nil
		rj.Spec.ClusterSelector = map[string]string{rayv1.RayJobClusterSelectorKey: "shared"}
		create(rj)
		// The cluster does not exist yet: the RayJob waits and says so.
		Eventually(eventsOf(ns, "sel")).Should(HaveEvent("", "RayClusterNotFound", "shared"), "RayClusterNotFound event")
		got := getJob(ns, "sel")
		Expect(got).To(HaveDeploymentStatus(rayv1.JobDeploymentStatusInitializing), statusOf(got))
		// Creating it is enough: the cluster watch wakes the RayJob up.
		shared := newRayJob(ns, "x", rayv1.HTTPMode, "x").Spec.RayClusterSpec
		create(&rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: ns}, Spec: *shared})

		got = waitState(ns, "sel", rayv1.JobDeploymentStatusComplete)
		Expect(got).To(And(
			HaveField("Status.RayClusterName", "shared"),
			HaveField("Status.JobStatus", rayv1.JobStatusSucceeded),
		), statusOf(got))
		rc, ok := getCluster(ns, "shared")
		Expect(ok).To(BeTrue(), "selected cluster deleted")
		Expect(rc.DeletionTimestamp).To(BeNil(), "selected cluster was touched")
		Expect(rc.OwnerReferences).To(BeEmpty(), "selected cluster was touched")
	})

	It("suspends and resumes", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "susp", rayv1.HTTPMode, "sleep 600")
		rj.Spec.ShutdownAfterJobFinishes = true
		create(rj)
		waitJob(ns, "susp", "job running on Ray", HaveField("Status.JobStatus", rayv1.JobStatusRunning))
		first := getJob(ns, "susp").Status.RayClusterName

		updateJob(ns, "susp", func(rj *rayv1.RayJob) { rj.Spec.Suspend = true })
		got := waitState(ns, "susp", rayv1.JobDeploymentStatusSuspended)
		Expect(got).To(And(
			HaveField("Status.RayClusterName", BeEmpty()),
			HaveField("Status.JobID", BeEmpty()),
			HaveField("Status.JobStatus", rayv1.JobStatusNew),
		), "suspended status not reset: %s", describe(got))
		waitClusterGone(ns, first)

		updateJob(ns, "susp", func(rj *rayv1.RayJob) { rj.Spec.Suspend = false })
		waitJob(ns, "susp", "resumed on a new cluster", And(
			HaveDeploymentStatus(rayv1.JobDeploymentStatusRunning),
			HaveField("Status.RayClusterName", And(Not(BeEmpty()), Not(Equal(first))))))
	})

	It("creates no cluster for a RayJob created suspended", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "queued", rayv1.HTTPMode, "echo queued")
		rj.Spec.Suspend = true
		rj.Spec.ShutdownAfterJobFinishes = true
		create(rj)
		got := waitState(ns, "queued", rayv1.JobDeploymentStatusSuspended)
		var list rayv1.RayClusterList
		Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(BeEmpty(), "clusters created for a suspended RayJob (%s)", describe(got))
		updateJob(ns, "queued", func(rj *rayv1.RayJob) { rj.Spec.Suspend = false })
		waitState(ns, "queued", rayv1.JobDeploymentStatusComplete)
	})

	It("shuts the cluster down after the TTL", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "ttl", rayv1.HTTPMode, "echo ttl")
		rj.Spec.ShutdownAfterJobFinishes = true
		rj.Spec.TTLSecondsAfterFinished = 1
		create(rj)
		got := waitState(ns, "ttl", rayv1.JobDeploymentStatusComplete)
		waitClusterGone(ns, got.Status.RayClusterName)
		Eventually(eventsOf(ns, "ttl")).Should(HaveEvent("", "DeletedRayCluster", "shutdownAfterJobFinishes"), "deletion event")
	})

	succeeded := rayv1.JobStatusSucceeded
	rule := func(p rayv1.DeletionPolicyType) *rayv1.DeletionStrategy {
		return &rayv1.DeletionStrategy{DeletionRules: []rayv1.DeletionRule{{Policy: p, Condition: rayv1.DeletionCondition{JobStatus: &succeeded}}}}
	}
	DescribeTable("deletion rules",
		func(strategy *rayv1.DeletionStrategy, deletesSelf bool, check func(ns string, done *rayv1.RayJob)) {
			ns := newNamespace()
			rj := newRayJob(ns, "del", rayv1.HTTPMode, "echo done")
			rj.Spec.DeletionStrategy = strategy
			create(rj)
			if deletesSelf {
				last := rj.DeepCopy() // create filled in its UID
				Eventually(func() error {
					cur := &rayv1.RayJob{}
					err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "del"}, cur)
					if err == nil {
						last = cur
					}
					return err
				}).Should(Satisfy(apierrors.IsNotFound), "RayJob deleted")
				check(ns, last)
				return
			}
			done := waitState(ns, "del", rayv1.JobDeploymentStatusComplete)
			check(ns, done)
		},
		Entry("DeleteWorkers suspends every worker group", rule(rayv1.DeleteWorkers), false, func(ns string, done *rayv1.RayJob) {
			Eventually(func(g Gomega) {
				rc, ok := getCluster(ns, done.Status.RayClusterName)
				g.Expect(ok).To(BeTrue(), "cluster gone")
				g.Expect(rc.Spec.WorkerGroupSpecs[0].Suspend).To(HaveValue(BeTrue()), "suspend")
				g.Expect(rc.DeletionTimestamp).To(BeNil(), "cluster deleted")
			}).Should(Succeed(), "workers suspended")
		}),
		Entry("DeleteCluster deletes the cluster", rule(rayv1.DeleteCluster), false, func(ns string, done *rayv1.RayJob) {
			waitClusterGone(ns, done.Status.RayClusterName)
		}),
		Entry("DeleteSelf deletes the RayJob (its children carry owner references for the GC)", rule(rayv1.DeleteSelf), true, func(ns string, last *rayv1.RayJob) {
			Eventually(eventsOf(ns, "del")).Should(HaveEvent("", "DeletedRayJob", "deletion rule DeleteSelf"), "deletion event")
			// The RayJob may be gone before the spec ever saw its status, so find its cluster by
			// listing rather than by status.rayClusterName.
			var clusters rayv1.RayClusterList
			Expect(k8s.List(context.Background(), &clusters, client.InNamespace(ns))).To(Succeed())
			Expect(clusters.Items).To(HaveLen(1), "want the RayJob's one cluster")
			Expect(&clusters.Items[0]).To(BeControlledBy(last), "the RayJob's cluster, controlled by it for the GC")
		}),
		Entry("DeleteNone keeps everything", rule(rayv1.DeleteNone), false, func(ns string, done *rayv1.RayJob) {
			rc, ok := getCluster(ns, done.Status.RayClusterName)
			Expect(ok).To(BeTrue(), "cluster deleted by DeleteNone")
			Expect(rc.DeletionTimestamp).To(BeNil(), "cluster deleted by DeleteNone")
		}),
		Entry("legacy onSuccess DeleteCluster", &rayv1.DeletionStrategy{
			OnSuccess: &rayv1.DeletionPolicy{Policy: ptr.To(rayv1.DeleteCluster)},
			OnFailure: &rayv1.DeletionPolicy{Policy: ptr.To(rayv1.DeleteNone)},
		}, false, func(ns string, done *rayv1.RayJob) {
			waitClusterGone(ns, done.Status.RayClusterName)
		}),
	)

	It("creates the submitter Job in K8sJobMode and fails when it fails", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "k8s", rayv1.K8sJobMode, "python -c 'print(1)'")
		rj.Spec.SubmitterConfig = &rayv1.SubmitterConfig{BackoffLimit: ptr.To[int32](4)}
		create(rj)
		running := waitState(ns, "k8s", rayv1.JobDeploymentStatusRunning)

		var job batchv1.Job
		Eventually(func() error {
			return k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "k8s"}, &job)
		}).Should(Succeed(), "submitter Job")
		ctr := job.Spec.Template.Spec.Containers[0]
		addr := running.Status.DashboardURL
		Expect(&job).To(BeControlledBy(running))
		Expect(job.Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(4)), "submitter Job backoffLimit")
		Expect(ctr.Image).To(Equal("rayk8s/rayk8s:test"), "submitter image")
		Expect(job.Spec.Template.Spec.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
		Expect(ctr.Args).To(HaveExactElements(And(
			ContainSubstring("if ! ray job status --address http://"+addr+" '"+running.Status.JobID+"'"),
			ContainSubstring("--no-wait"),
			ContainSubstring("ray job logs --address http://"+addr+" --follow"),
		)), "submitter args")
		// Play the submitter: submit the job as the script would; the RayJob follows it.
		_, err := sharedClient().SubmitJob(context.Background(), &dashboard.JobSubmitRequest{Entrypoint: "echo via submitter", SubmissionID: running.Status.JobID})
		Expect(err).NotTo(HaveOccurred())
		waitJob(ns, "k8s", "job seen as SUCCEEDED while the submitter runs", And(
			HaveField("Status.JobStatus", rayv1.JobStatusSucceeded),
			HaveDeploymentStatus(rayv1.JobDeploymentStatusRunning)))
		// The submitter fails (e.g. its log follow broke): the RayJob fails naming it.
		now := metav1.Now()
		job.Status.StartTime = &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
		}
		Expect(k8s.Status().Update(context.Background(), &job)).To(Succeed())
		got := waitState(ns, "k8s", rayv1.JobDeploymentStatusFailed)
		Expect(got).To(And(
			HaveField("Status.Reason", rayv1.SubmissionFailed),
			HaveField("Status.Message", ContainSubstring("BackoffLimitExceeded")),
		), statusOf(got))
	})

	DescribeTable("SidecarMode tracks the submitter container",
		func(exit int32) {
			ns := newNamespace()
			create(newRayJob(ns, "side", rayv1.SidecarMode, "echo sidecar"))
			running := waitState(ns, "side", rayv1.JobDeploymentStatusRunning)
			rc, _ := getCluster(ns, running.Status.RayClusterName)
			head := rc.Spec.HeadGroupSpec.Template.Spec
			Expect(head.Containers).To(HaveLen(2), "head template containers")
			Expect(head.Containers[1].Name).To(Equal(SubmitterContainerName), "head template's second container")
			Expect(head.RestartPolicy).To(Equal(corev1.RestartPolicyNever), "head template restartPolicy")
			// The sidecar submits and exits with the job's outcome.
			entry := "echo sidecar"
			if exit != 0 {
				entry = "exit 1"
			}
			_, err := sharedClient().SubmitJob(context.Background(), &dashboard.JobSubmitRequest{Entrypoint: entry, SubmissionID: running.Status.JobID})
			Expect(err).NotTo(HaveOccurred())
			headPodFor(rc, []string{"ray-head", SubmitterContainerName}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "ray-head", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
				{Name: SubmitterContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, FinishedAt: metav1.Now()}}},
			}})
			if exit == 0 {
				got := waitState(ns, "side", rayv1.JobDeploymentStatusComplete)
				Expect(got).To(HaveField("Status.JobStatus", rayv1.JobStatusSucceeded), statusOf(got))
				return
			}
			got := waitState(ns, "side", rayv1.JobDeploymentStatusFailed)
			Expect(got).To(And(
				HaveField("Status.Reason", BeElementOf(rayv1.AppFailed, rayv1.SubmissionFailed)),
				HaveField("Status.Message", ContainSubstring("exit")),
			), statusOf(got))
		},
		Entry("success", int32(0)),
		Entry("failure", int32(1)),
	)

	It("fails the job when the head crash-loops", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "crash", rayv1.HTTPMode, "echo never")
		rj.Annotations = map[string]string{manualClusterAnnotation: "true"}
		create(rj)
		rc := waitCluster(ns, "crash")
		headPodFor(rc, []string{"ray-head"}, corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "ray-head", RestartCount: 3,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 127, Reason: "Error", Message: "bash: raay: command not found"}},
		}}})
		got := waitState(ns, "crash", rayv1.JobDeploymentStatusFailed)
		Expect(got).To(And(
			HaveField("Status.Reason", rayv1.HeadPodCrashLoopBackOff),
			HaveField("Status.Message", ContainSubstring("exit code 127")),
		), statusOf(got))
	})

	It("reports a head restart that lost the job", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "lost", rayv1.HTTPMode, "sleep 600")
		rj.Annotations = map[string]string{manualClusterAnnotation: "true"}
		create(rj)
		rc := waitCluster(ns, "lost")
		heads.dedicate(ns, rc.Name)
		Expect(setClusterReady(context.Background(), rc)).To(Succeed())
		waitJob(ns, "lost", "job running", HaveField("Status.JobStatus", rayv1.JobStatusRunning))
		// The head restarts without fault tolerance: a fresh job table.
		heads.dedicate(ns, rc.Name)
		got := waitState(ns, "lost", rayv1.JobDeploymentStatusFailed)
		Expect(got).To(HaveField("Status.Reason", rayv1.JobLost), statusOf(got))
	})

	It("reports an invalid spec and starts once it is fixed", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "invalid", rayv1.HTTPMode, "echo")
		rj.Spec.RuntimeEnvYAML = "pip: [unclosed"
		create(rj)
		got := waitState(ns, "invalid", rayv1.JobDeploymentStatusValidationFailed)
		Expect(got).To(And(
			HaveField("Status.Reason", rayv1.ValidationFailed),
			HaveField("Status.Message", ContainSubstring("spec.runtimeEnvYAML")),
			HaveField("Status.RayClusterName", BeEmpty()),
		), statusOf(got))
		Eventually(eventsOf(ns, "invalid")).Should(HaveEvent("", "InvalidRayJobSpec", "spec.runtimeEnvYAML"), "warning event")
		// Fixing the spec starts the job.
		updateJob(ns, "invalid", func(rj *rayv1.RayJob) { rj.Spec.RuntimeEnvYAML = "env_vars: {A: b}" })
		waitState(ns, "invalid", rayv1.JobDeploymentStatusComplete)
	})

	It("leaves a RayJob managed by MultiKueue alone", func() {
		ns := newNamespace()
		rj := newRayJob(ns, "mk", rayv1.HTTPMode, "echo")
		rj.Spec.ManagedBy = ptr.To(rayv1.MultiKueueController)
		create(rj)
		// A RayJob reconciled by us gets the finalizer at once; wait for a later one to have it, then
		// check this one never got anything.
		create(newRayJob(ns, "ours", rayv1.HTTPMode, "echo"))
		waitState(ns, "ours", rayv1.JobDeploymentStatusComplete)
		got := getJob(ns, "mk")
		Expect(got.Finalizers).To(BeEmpty(), "managedBy MultiKueue was reconciled")
		Expect(got).To(HaveDeploymentStatus(rayv1.JobDeploymentStatusNew), "managedBy MultiKueue was reconciled: %s", describe(got))
	})
})

// waitCluster waits until the RayJob names its cluster and the cluster exists, and returns it.
func waitCluster(ns, job string) *rayv1.RayCluster {
	GinkgoHelper()
	var rc *rayv1.RayCluster
	Eventually(func(g Gomega) {
		cur := getJob(ns, job)
		g.Expect(cur.Status.RayClusterName).NotTo(BeEmpty(), describe(cur))
		c, ok := getCluster(ns, cur.Status.RayClusterName)
		g.Expect(ok).To(BeTrue(), describe(cur))
		rc = c
	}).Should(Succeed(), "cluster created")
	return rc
}

// headPodFor writes a head pod of the cluster, as the RayCluster controller and kubelet would.
func headPodFor(rc *rayv1.RayCluster, containers []string, status corev1.PodStatus) *corev1.Pod {
	GinkgoHelper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: rc.Name + "-head-abcde", Namespace: rc.Namespace,
			Labels: map[string]string{rayv1.RayClusterLabelKey: rc.Name, rayv1.RayNodeTypeLabelKey: string(rayv1.HeadNode)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: rayv1.GroupVersion.String(), Kind: "RayCluster", Name: rc.Name, UID: rc.UID,
				Controller: ptr.To(true)}}},
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "img"})
	}
	create(pod)
	pod.Status = status
	Expect(k8s.Status().Update(context.Background(), pod)).To(Succeed())
	return pod
}
