package kuberneteswas

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func cluster(labels map[string]string, replicas int32, autoscaling bool) *rayv1.RayCluster {
	return &rayv1.RayCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", Labels: labels},
		Spec: rayv1.RayClusterSpec{
			EnableInTreeAutoscaling: ptr.To(autoscaling),
			WorkerGroupSpecs: []rayv1.WorkerGroupSpec{
				{GroupName: "a", Replicas: ptr.To(replicas), MinReplicas: ptr.To(int32(0)), MaxReplicas: ptr.To(int32(10)), NumOfHosts: 2},
				{GroupName: "b", Replicas: ptr.To(int32(1)), MinReplicas: ptr.To(int32(0)), MaxReplicas: ptr.To(int32(10)), Suspend: ptr.To(true)},
			},
		},
	}
}

func TestApplies(t *testing.T) {
	gang := map[string]string{rayv1.RayGangSchedulingEnabledLabelKey: "True"}
	for _, tc := range []struct {
		name string
		c    *rayv1.RayCluster
		want bool
	}{
		{"label true", cluster(gang, 1, false), true},
		{"no label", cluster(nil, 1, false), false},
		{"label false", cluster(map[string]string{rayv1.RayGangSchedulingEnabledLabelKey: "false"}, 1, false), false},
		{"autoscaler", cluster(gang, 1, true), false},
	} {
		if got := Applies(tc.c); got != tc.want {
			t.Errorf("%s: Applies = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBuilders(t *testing.T) {
	c := cluster(nil, 2, false)
	owner := metav1.OwnerReference{Name: "rc", UID: "u"}
	// The head, two replicas of two hosts; the suspended group does not count.
	if got := MinCount(c); got != 5 {
		t.Errorf("MinCount = %d, want 5", got)
	}
	w := BuildWorkload(c, owner)
	if w.Name != "rc" || w.Spec.ControllerRef.Kind != "RayCluster" || w.Spec.PodGroupTemplates[0].Name != "cluster" || w.OwnerReferences[0].UID != "u" {
		t.Errorf("workload = %+v", w)
	}
	pg := BuildPodGroup(c, owner)
	if pg.Name != "rc-cluster" || pg.Spec.WorkloadRef.WorkloadName != "rc" || pg.Spec.SchedulingPolicy.Gang.MinCount != 5 {
		t.Errorf("pod group = %+v", pg)
	}
	if WorkloadStale(c, w) || PodGroupStale(c, pg) {
		t.Error("fresh objects are stale")
	}
	bigger := cluster(nil, 3, false)
	if !WorkloadStale(bigger, w) || !PodGroupStale(bigger, pg) {
		t.Error("objects of a smaller cluster are not stale")
	}
	var pod corev1.Pod
	AddMetadata(c, &pod)
	if pod.Spec.SchedulerName != corev1.DefaultSchedulerName || *pod.Spec.SchedulingGroup.PodGroupName != "rc-cluster" {
		t.Errorf("pod spec = %+v", pod.Spec)
	}
}
