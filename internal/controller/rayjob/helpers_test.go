package rayjob

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

// Test wrappers for the unit tests: makeJob(...).mode(...).state(...).obj() builds a RayJob with status.

var t0 = time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

type jobWrapper struct{ rayv1.RayJob }

// makeJob is the shared builder's RayJob in namespace "ns" with a UID, as if read from the API.
func makeJob(name string) *jobWrapper {
	w := &jobWrapper{RayJob: *builders.RayJob("ns", name).Obj()}
	w.UID = types.UID("uid-" + name)
	return w
}

func (w *jobWrapper) mode(m rayv1.JobSubmissionMode) *jobWrapper { w.Spec.SubmissionMode = m; return w }
func (w *jobWrapper) state(s rayv1.JobDeploymentStatus) *jobWrapper {
	w.Status.JobDeploymentStatus = s
	return w
}
func (w *jobWrapper) started(t time.Time) *jobWrapper { w.Status.StartTime = ptrTime(t); return w }
func (w *jobWrapper) attempt(cluster, id string) *jobWrapper {
	w.Status.RayClusterName, w.Status.JobID = cluster, id
	if cluster != "" {
		w.Status.DashboardURL = cluster + "-head-svc.ns.svc.cluster.local:8265"
	}
	return w
}
func (w *jobWrapper) jobStatus(s rayv1.JobStatus) *jobWrapper { w.Status.JobStatus = s; return w }
func (w *jobWrapper) ended(t time.Time) *jobWrapper           { w.Status.EndTime = ptrTime(t); return w }
func (w *jobWrapper) selector(c string) *jobWrapper {
	w.Spec.RayClusterSpec = nil
	w.Spec.ClusterSelector = map[string]string{rayv1.RayJobClusterSelectorKey: c}
	return w
}
func (w *jobWrapper) with(f func(*rayv1.RayJob)) *jobWrapper { f(&w.RayJob); return w }
func (w *jobWrapper) obj() *rayv1.RayJob                     { return w.DeepCopy() }

// clusterFor is the RayCluster of the job's current attempt, controlled by it.
func clusterFor(job *rayv1.RayJob, state rayv1.ClusterState) *rayv1.RayCluster {
	rc, err := BuildRayCluster(job)
	if err != nil {
		panic(err)
	}
	rc.UID = "rc-uid"
	rc.Status.State = state
	return rc
}

func headPod(mut func(*corev1.Pod)) headPodFacts {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "c-head-abc", CreationTimestamp: metav1.NewTime(t0)},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "ray-head"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "ray-head", Ready: true}}}}
	if mut != nil {
		mut(p)
	}
	return headPodFacts{pod: p}
}

func int32p(v int32) *int32 { return ptr.To(v) }
