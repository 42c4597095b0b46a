package kaischeduler_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/kaischeduler"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

func TestAddMetadata(t *testing.T) {
	c := builders.RayCluster("ns", "demo").With(func(c *rayv1.RayCluster) {
		c.Labels = map[string]string{kaischeduler.QueueLabelKey: "team-a"}
	}).Obj()
	pod := &corev1.Pod{}
	if err := kaischeduler.New().AddMetadata(c, pod, rayv1.HeadGroupName); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.SchedulerName != "kai-scheduler" || pod.Labels[kaischeduler.QueueLabelKey] != "team-a" || len(pod.Labels) != 1 || pod.Annotations != nil {
		t.Errorf("pod = %+v, want schedulerName kai-scheduler and only the queue label", pod.ObjectMeta)
	}
	// Without a queue the scheduler is still named (KAI then keeps the pod pending).
	pod = &corev1.Pod{}
	if err := kaischeduler.New().AddMetadata(builders.RayCluster("ns", "demo").Obj(), pod, "w"); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.SchedulerName != "kai-scheduler" || pod.Labels != nil {
		t.Errorf("pod without a queue = %+v", pod)
	}
	if pg, err := kaischeduler.New().PodGroup(batchscheduler.ForRayCluster(c)); pg != nil || err != nil {
		t.Errorf("PodGroup = %v, %v; KAI makes its own", pg, err)
	}
}

func TestCheckRayJob(t *testing.T) {
	err := kaischeduler.New().CheckRayJob(builders.RayJob("ns", "j").Obj())
	if err == nil || !strings.Contains(err.Error(), "spec.submissionMode") {
		t.Errorf("K8sJobMode gave %v, want an error naming spec.submissionMode", err)
	}
	for _, m := range []rayv1.JobSubmissionMode{rayv1.HTTPMode, rayv1.SidecarMode, rayv1.InteractiveMode} {
		if err := kaischeduler.New().CheckRayJob(builders.RayJob("ns", "j").Mode(m).Obj()); err != nil {
			t.Errorf("%s refused: %v", m, err)
		}
	}
}
