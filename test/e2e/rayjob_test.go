package e2e

import (
	"context"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// The RayJob scenarios are independent, so each group creates all its RayJobs at once in
// BeforeAll and its specs then follow one RayJob each: the clusters start side by side instead of
// one after the other. A group runs at most three small clusters (100m CPU per pod) and the
// K8sJobMode submitter pod (500m), which fit a node of two cores.
var _ = ginkgo.Describe("RayJob", func() {
	// headOnly drops the sample's worker group: the job runs on the head, one pod less.
	headOnly := func(rj *rayv1.RayJob) { rj.Spec.RayClusterSpec.WorkerGroupSpecs = nil }
	// keepCluster keeps the cluster after the job finished, to look at its head.
	keepCluster := func(rj *rayv1.RayJob) {
		rj.Spec.ShutdownAfterJobFinishes = false
		rj.Spec.TTLSecondsAfterFinished = 0
	}

	ginkgo.Describe("that succeeds", ginkgo.Ordered, func() {
		var ns string
		var k8sMode, httpMode, ttl *rayv1.RayJob

		ginkgo.BeforeAll(func(ctx context.Context) {
			ns = newNamespace(ctx)
			k8sMode = createRayJob(ctx, ns, "k8s-mode", nil)
			httpMode = createRayJob(ctx, ns, "http-mode", func(rj *rayv1.RayJob) { rj.Spec.SubmissionMode = rayv1.HTTPMode })
			ttl = createRayJob(ctx, ns, "ttl", func(rj *rayv1.RayJob) {
				rj.Spec.SubmissionMode = rayv1.HTTPMode
				rj.Spec.TTLSecondsAfterFinished = 5
			})
		})

		ginkgo.It("runs the sample in K8sJobMode: the submitter Job submits it and shows the driver output", func(ctx context.Context) {
			gomega.Expect(k8sMode.Spec.SubmissionMode).To(gomega.Equal(rayv1.K8sJobMode), "the sample's submission mode, defaulted by the API server")
			rj := finishedRayJob(ctx, ns, k8sMode.Name)
			gomega.Expect(rj.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusComplete), "message %q", rj.Status.Message)
			gomega.Expect(rj.Status.JobStatus).To(gomega.Equal(rayv1.JobStatusSucceeded))

			job := &batchv1.Job{}
			gomega.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: rj.Name}, job)).To(gomega.Succeed(), "submitter Job")
			gomega.Expect(jobCondition(job, batchv1.JobComplete)).To(gomega.BeTrue(), "submitter Job Complete: %+v", job.Status.Conditions)
			pods := submitterPods(ctx, gomega.Default, job)
			gomega.Expect(pods).NotTo(gomega.BeEmpty(), "submitter pods")
			var logs strings.Builder
			for i := range pods {
				l, err := podLog(ctx, &pods[i], pods[i].Spec.Containers[0].Name)
				gomega.Expect(err).NotTo(gomega.HaveOccurred(), "log of submitter pod %s", pods[i].Name)
				logs.WriteString(l)
			}
			gomega.Expect(logs.String()).To(gomega.ContainSubstring("hello from rayk8s"), "the driver output, followed by `ray job logs --follow` in the submitter")
		})

		ginkgo.It("runs the sample in HTTPMode without a submitter Job", func(ctx context.Context) {
			rj := finishedRayJob(ctx, ns, httpMode.Name)
			gomega.Expect(rj.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusComplete), "message %q", rj.Status.Message)
			gomega.Expect(rj.Status.JobStatus).To(gomega.Equal(rayv1.JobStatusSucceeded))

			var jobs batchv1.JobList
			gomega.Expect(cl.List(ctx, &jobs, client.InNamespace(ns),
				client.MatchingLabels{rayv1.RayOriginatedFromCRNameLabelKey: rj.Name})).To(gomega.Succeed())
			gomega.Expect(jobs.Items).To(gomega.BeEmpty(), "batch Jobs of an HTTPMode RayJob")
			err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: rj.Name}, &batchv1.Job{})
			gomega.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "submitter Job %s: %v", rj.Name, err)

			// The operator keeps the end of the driver log in events when a job ends.
			gomega.Eventually(func() ([]string, error) { return rayJobEventNotes(ctx, rj, "DriverLogTail") }).WithContext(ctx).
				Should(gomega.ContainElement(gomega.ContainSubstring("hello from rayk8s")), "DriverLogTail events")
		})

		ginkgo.It("deletes the RayCluster and its pods ttlSecondsAfterFinished after the job finished", func(ctx context.Context) {
			rj := finishedRayJob(ctx, ns, ttl.Name)
			gomega.Expect(rj.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusComplete), "message %q", rj.Status.Message)
			cluster := rj.Status.RayClusterName
			gomega.Expect(cluster).NotTo(gomega.BeEmpty())
			gomega.Eventually(func(g gomega.Gomega) {
				err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: cluster}, &rayv1.RayCluster{})
				g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "RayCluster %s deleted: %v", cluster, err)
				var pods corev1.PodList
				g.Expect(cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{rayv1.RayClusterLabelKey: cluster})).To(gomega.Succeed())
				g.Expect(pods.Items).To(gomega.BeEmpty(), "pods of RayCluster %s", cluster)
			}).WithContext(ctx).Should(gomega.Succeed())
			rj = getRayJob(ctx, gomega.Default, ns, ttl.Name)
			gomega.Expect(rj.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusComplete), "the RayJob itself stays")
		})
	})

	ginkgo.Describe("that fails", ginkgo.Ordered, func() {
		const (
			marker       = "rayk8s-e2e-failure-marker"
			noSuchBinary = "rayk8s-e2e-no-such-binary"
		)
		var ns string
		var failing, sleeping, brokenHead *rayv1.RayJob

		ginkgo.BeforeAll(func(ctx context.Context) {
			ns = newNamespace(ctx)
			failing = createRayJob(ctx, ns, "failing-entrypoint", func(rj *rayv1.RayJob) {
				headOnly(rj)
				keepCluster(rj)
				rj.Spec.Entrypoint = "bash -c 'echo " + marker + "; exit 3'"
			})
			sleeping = createRayJob(ctx, ns, "deadline", func(rj *rayv1.RayJob) {
				headOnly(rj)
				keepCluster(rj)
				rj.Spec.SubmissionMode = rayv1.HTTPMode
				rj.Spec.Entrypoint = "sleep 600"
			})
			brokenHead = createRayJob(ctx, ns, "broken-head", func(rj *rayv1.RayJob) {
				headOnly(rj)
				keepCluster(rj)
				// The head runs exactly its own command (the overwrite annotation goes from the RayJob
				// to its RayCluster and pods), which names a binary that does not exist. Without the
				// annotation a user command is only prefixed to `...; ray start` and Ray would start.
				rj.Annotations = map[string]string{rayv1.RayOverwriteContainerCmdAnnotationKey: "true"}
				rj.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Command = []string{noSuchBinary}
				rj.Spec.PreRunningDeadlineSeconds = ptr.To[int32](240)
			})
		})

		ginkgo.It("fails with the driver log tail in status.message when the entrypoint fails", func(ctx context.Context) {
			rj := finishedRayJob(ctx, ns, failing.Name)
			gomega.Expect(rj.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusFailed))
			gomega.Expect(rj.Status.JobStatus).To(gomega.Equal(rayv1.JobStatusFailed))
			gomega.Expect(rj.Status.Reason).To(gomega.Equal(rayv1.AppFailed))
			_, tail, found := strings.Cut(rj.Status.Message, "of the driver log:\n")
			gomega.Expect(found).To(gomega.BeTrue(), "status.message keeps the driver log tail: %q", rj.Status.Message)
			gomega.Expect(tail).To(gomega.ContainSubstring(marker))
		})

		ginkgo.It("stops the Ray job and fails with DeadlineExceeded once activeDeadlineSeconds passed", func(ctx context.Context) {
			// The deadline is set once Ray runs the job, so the RayJob surely gets that far however
			// long the cluster took to start. It counts from status.startTime: it may be overdue at
			// once, or the operator wakes up for it.
			gomega.Eventually(func(g gomega.Gomega) {
				rj := getRayJob(ctx, g, ns, sleeping.Name)
				g.Expect(rj.Status.JobStatus).To(gomega.Equal(rayv1.JobStatusRunning), "jobDeploymentStatus %q, message %q", rj.Status.JobDeploymentStatus, rj.Status.Message)
			}).WithContext(ctx).Should(gomega.Succeed())
			updateObject(ctx, client.ObjectKeyFromObject(sleeping), &rayv1.RayJob{}, func(rj *rayv1.RayJob) {
				rj.Spec.ActiveDeadlineSeconds = ptr.To[int32](15)
			})

			rj := finishedRayJob(ctx, ns, sleeping.Name)
			gomega.Expect(rj.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusFailed))
			gomega.Expect(rj.Status.Reason).To(gomega.Equal(rayv1.DeadlineExceeded), "message %q", rj.Status.Message)

			cluster := rj.Status.RayClusterName
			gomega.Eventually(func(g gomega.Gomega) {
				job, err := rayJobOnHead(ctx, ns, cluster, rj.Status.JobID)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(job.Status).To(gomega.Equal(dashboard.JobStatusStopped), "the Ray job on the head")
			}).WithContext(ctx).Should(gomega.Succeed())
			heads := rayPods(ctx, ns, cluster, "head")
			gomega.Expect(heads).To(gomega.HaveLen(1))
			// The entrypoint's process is gone too. (The command lines are read from /proc: the Ray
			// image has no ps.)
			gomega.Eventually(func(g gomega.Gomega) {
				out, err := execIn(ctx, &heads[0], heads[0].Spec.Containers[0].Name, "bash", "-c",
					`for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done`)
				g.Expect(err).NotTo(gomega.HaveOccurred(), "listing processes: %s", out)
				g.Expect(out).To(gomega.ContainSubstring("ray start"), "processes in the head pod")
				g.Expect(out).NotTo(gomega.ContainSubstring(sleeping.Spec.Entrypoint), "processes in the head pod")
			}).WithContext(ctx).Should(gomega.Succeed())
		})

		ginkgo.It("fails, naming the head pod's problem, when the head pod cannot start", func(ctx context.Context) {
			rj := finishedRayJob(ctx, ns, brokenHead.Name)
			gomega.Expect(rj.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusFailed))
			gomega.Expect(rj.Status.Reason).To(gomega.Equal(rayv1.HeadPodCrashLoopBackOff), "message %q", rj.Status.Message)
			heads := rayPods(ctx, ns, rj.Status.RayClusterName, "head")
			gomega.Expect(heads).To(gomega.HaveLen(1))
			gomega.Expect(rj.Status.Message).To(gomega.And(
				gomega.ContainSubstring(heads[0].Name), gomega.ContainSubstring(noSuchBinary)), "status.message names the head pod and why its container cannot run")
		})
	})
})
