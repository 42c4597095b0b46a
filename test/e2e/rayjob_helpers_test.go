package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// loadRayJobSample reads config/samples/ray-job.sample.yaml.
func loadRayJobSample() *rayv1.RayJob {
	rj := &rayv1.RayJob{}
	readSample("", "ray-job.sample.yaml", rj)
	return rj
}

// createRayJob creates the RayJob sample as ns/name, changed by change (may be nil), and returns
// the object as created.
func createRayJob(ctx context.Context, ns, name string, change func(*rayv1.RayJob)) *rayv1.RayJob {
	rj := loadRayJobSample()
	rj.Namespace, rj.Name = ns, name
	if change != nil {
		change(rj)
	}
	gomega.Expect(cl.Create(ctx, rj)).To(gomega.Succeed(), "creating RayJob %s", name)
	return rj
}

// getRayJob reads a RayJob.
func getRayJob(ctx context.Context, g gomega.Gomega, ns, name string) *rayv1.RayJob {
	rj := &rayv1.RayJob{}
	g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rj)).To(gomega.Succeed())
	return rj
}

// finishedRayJob waits until the RayJob's jobDeploymentStatus is Complete or Failed and returns
// it.
func finishedRayJob(ctx context.Context, ns, name string) *rayv1.RayJob {
	var rj *rayv1.RayJob
	gomega.Eventually(func(g gomega.Gomega) {
		rj = getRayJob(ctx, g, ns, name)
		g.Expect(rayv1.IsJobDeploymentTerminal(rj.Status.JobDeploymentStatus)).To(gomega.BeTrue(),
			"RayJob %s: jobDeploymentStatus %q, jobStatus %q, reason %q, message %q",
			name, rj.Status.JobDeploymentStatus, rj.Status.JobStatus, rj.Status.Reason, rj.Status.Message)
	}).WithContext(ctx).Should(gomega.Succeed())
	return rj
}

// rayJobEventNotes returns the notes of the events.k8s.io events about a RayJob with reason.
func rayJobEventNotes(ctx context.Context, rj *rayv1.RayJob, reason string) ([]string, error) {
	evs, err := k8s.EventsV1().Events(rj.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, e := range evs.Items {
		if e.Regarding.Kind == "RayJob" && e.Regarding.Name == rj.Name && e.Regarding.UID == rj.UID && e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	sort.Strings(notes)
	return notes, nil
}

// submitterPods lists the pods of a RayJob's K8sJobMode submitter Job.
func submitterPods(ctx context.Context, g gomega.Gomega, job *batchv1.Job) []corev1.Pod {
	var pods corev1.PodList
	g.Expect(cl.List(ctx, &pods, client.InNamespace(job.Namespace),
		client.MatchingLabels{batchv1.ControllerUidLabel: string(job.UID)})).To(gomega.Succeed())
	return pods.Items
}

// podLog returns a container's log.
func podLog(ctx context.Context, pod *corev1.Pod, container string) (string, error) {
	b, err := k8s.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	return string(b), err
}

// jobCondition reports whether a batch Job has condition t with status True.
func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// rayJobOnHead asks the head's dashboard of a RayCluster, through the API server's service proxy,
// about one Ray job.
func rayJobOnHead(ctx context.Context, ns, cluster, submissionID string) (*dashboard.JobDetails, error) {
	b, err := k8s.CoreV1().Services(ns).ProxyGet("http", cluster+"-head-svc", "dashboard", "/api/jobs/"+submissionID, nil).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("GET /api/jobs/%s: %w: %s", submissionID, err, b)
	}
	var d dashboard.JobDetails
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decoding /api/jobs/%s: %w: %s", submissionID, err, b)
	}
	return &d, nil
}
