package yunikorn_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/yunikorn"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

func cluster(labels map[string]string) *rayv1.RayCluster {
	return builders.RayCluster("ns", "demo").WorkerGroup("small", 2, 1, 4).With(func(c *rayv1.RayCluster) {
		c.Labels = labels
		c.Spec.WorkerGroupSpecs[0].Template.Spec.NodeSelector = map[string]string{"pool": "cpu"}
	}).Obj()
}

func TestAddMetadataWithoutGangScheduling(t *testing.T) {
	c := cluster(map[string]string{yunikorn.AppIDLabelKey: "app-1", yunikorn.QueueLabelKey: "root.ml"})
	pod := &corev1.Pod{}
	if err := yunikorn.New().AddMetadata(c, pod, "small"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"applicationId": "app-1", "queue": "root.ml"}, pod.Labels); diff != "" {
		t.Errorf("labels (-want,+got):\n%s", diff)
	}
	if pod.Annotations != nil || pod.Spec.SchedulerName != "yunikorn" {
		t.Errorf("annotations %v, schedulerName %q; want none and yunikorn", pod.Annotations, pod.Spec.SchedulerName)
	}
	if pg, err := yunikorn.New().PodGroup(batchscheduler.ForRayCluster(c)); pg != nil || err != nil {
		t.Errorf("PodGroup = %v, %v; YuniKorn needs none", pg, err)
	}
}

func TestAddMetadataWithGangScheduling(t *testing.T) {
	c := cluster(map[string]string{yunikorn.AppIDLabelKey: "app-1", rayv1.RayGangSchedulingEnabledLabelKey: "true"})
	pod := &corev1.Pod{}
	if err := yunikorn.New().AddMetadata(c, pod, "small"); err != nil {
		t.Fatal(err)
	}
	wantGroups := `[{"name":"headgroup","minResource":{"cpu":"1","memory":"2Gi"},"minMember":1},` +
		`{"name":"small","minResource":{"cpu":"1"},"nodeSelector":{"pool":"cpu"},"minMember":1}]`
	want := map[string]string{yunikorn.TaskGroupsAnnotationKey: wantGroups, yunikorn.TaskGroupNameKey: "small"}
	if diff := cmp.Diff(want, pod.Annotations); diff != "" {
		t.Errorf("annotations (-want,+got):\n%s", diff)
	}
	if _, ok := pod.Labels["queue"]; ok {
		t.Error("queue label set although the cluster has none")
	}

	// Task groups already on the parent (a RayJob's, copied to its cluster) are passed on as they are.
	c.Annotations = map[string]string{yunikorn.TaskGroupsAnnotationKey: `[{"name":"given"}]`}
	pod = &corev1.Pod{}
	if err := yunikorn.New().AddMetadata(c, pod, rayv1.HeadGroupName); err != nil {
		t.Fatal(err)
	}
	if got := pod.Annotations[yunikorn.TaskGroupsAnnotationKey]; got != `[{"name":"given"}]` {
		t.Errorf("task groups = %s, want the parent's", got)
	}
}

func TestRayJobTaskGroupsIncludeTheSubmitter(t *testing.T) {
	job := builders.RayJob("ns", "train").Workers(2).With(func(j *rayv1.RayJob) {
		j.Labels = map[string]string{rayv1.RayGangSchedulingEnabledLabelKey: ""}
	}).Obj()
	rc := &rayv1.RayCluster{}
	if err := yunikorn.New().AddMetadata(job, rc, ""); err != nil {
		t.Fatal(err)
	}
	want := `[{"name":"headgroup","minResource":{},"minMember":1},{"name":"w","minResource":{},"minMember":2},` +
		`{"name":"submittergroup","minResource":{"cpu":"500m","memory":"200Mi"},"minMember":1}]`
	if diff := cmp.Diff(want, rc.Annotations[yunikorn.TaskGroupsAnnotationKey]); diff != "" {
		t.Errorf("task groups (-want,+got):\n%s", diff)
	}
	if _, ok := rc.Annotations[yunikorn.TaskGroupNameKey]; ok {
		t.Error("a RayCluster got a task-group name")
	}
}
