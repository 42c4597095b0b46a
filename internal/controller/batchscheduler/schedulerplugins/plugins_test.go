package schedulerplugins_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/schedulerplugins"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

func cluster(gang bool) *rayv1.RayCluster {
	return builders.RayCluster("ns", "demo").WorkerGroup("small", 2, 1, 4).With(func(c *rayv1.RayCluster) {
		if gang {
			c.Labels = map[string]string{rayv1.RayGangSchedulingEnabledLabelKey: "true"}
		}
	}).Obj()
}

func TestPodGroup(t *testing.T) {
	s := schedulerplugins.New()
	if pg, err := s.PodGroup(batchscheduler.ForRayCluster(cluster(false))); pg != nil || err != nil {
		t.Errorf("PodGroup without the gang label = %v, %v; want none", pg, err)
	}
	pg, err := s.PodGroup(batchscheduler.ForRayCluster(cluster(true)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.Marshal(pg.Object)
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: scheduling.x-k8s.io/v1alpha1
kind: PodGroup
metadata:
  name: demo
  namespace: ns
spec:
  minMember: 3
  minResources:
    cpu: "3"
    memory: 2Gi
`
	if diff := cmp.Diff(want, string(raw)); diff != "" {
		t.Errorf("PodGroup (-want,+got):\n%s", diff)
	}
	job := builders.RayJob("ns", "j").Obj()
	if pg, err := s.PodGroup(batchscheduler.Workload{Owner: job, Cluster: job.Spec.RayClusterSpec}); pg != nil || err != nil {
		t.Errorf("PodGroup of a RayJob = %v, %v; its RayCluster gets the group", pg, err)
	}
}

func TestAddMetadata(t *testing.T) {
	s := schedulerplugins.New()
	pod := &corev1.Pod{}
	if err := s.AddMetadata(cluster(true), pod, "small"); err != nil {
		t.Fatal(err)
	}
	if pod.Labels[schedulerplugins.PodGroupLabelKey] != "demo" || pod.Spec.SchedulerName != "scheduler-plugins-scheduler" {
		t.Errorf("pod = %+v, want the pod-group label and the second scheduler's name", pod)
	}
	pod = &corev1.Pod{}
	if err := s.AddMetadata(cluster(false), pod, "small"); err != nil {
		t.Fatal(err)
	}
	if pod.Labels != nil || pod.Spec.SchedulerName != "scheduler-plugins-scheduler" {
		t.Errorf("pod without gang scheduling = %+v, want only the schedulerName", pod)
	}
	tmpl := &corev1.PodTemplateSpec{}
	if err := s.AddMetadata(builders.RayJob("ns", "j").Obj(), tmpl, rayv1.SubmitterGroupName); err != nil {
		t.Fatal(err)
	}
	if tmpl.Spec.SchedulerName != "" || tmpl.Labels != nil {
		t.Errorf("a RayJob's submitter template was changed: %+v", tmpl)
	}
}
