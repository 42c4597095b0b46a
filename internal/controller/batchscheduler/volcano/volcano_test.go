package volcano_test

import (
	"k8s.io/apimachinery/pkg/api/resource"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/volcano"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

// golden turns the expected object, written as YAML, into what the builder returns.
func golden(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// asJSON round-trips an object through YAML, so integer types compare as the API server's do.
func asJSON(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	raw, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	return golden(t, string(raw))
}

func cluster() *rayv1.RayCluster {
	return builders.RayCluster("ns", "demo").WorkerGroup("small", 2, 1, 4).With(func(c *rayv1.RayCluster) {
		c.Labels = map[string]string{volcano.QueueLabelKey: "q1", rayv1.RayPriorityClassNameLabelKey: "high"}
		c.Annotations = map[string]string{"team": "ml"}
	}).Obj()
}

func TestPodGroupOfRayCluster(t *testing.T) {
	pg, err := volcano.New(true).PodGroup(batchscheduler.ForRayCluster(cluster()))
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, `
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata:
  name: ray-demo-pg
  namespace: ns
  annotations: {team: ml}
spec:
  minMember: 3
  minResources: {cpu: "3", memory: 2Gi}
  queue: q1
  priorityClassName: high
  subGroupPolicy:
  - name: headgroup
    subGroupSize: 1
    minSubGroups: 1
    labelSelector: {matchLabels: {ray.io/group: headgroup}}
    matchLabelKeys: [ray.io/group]
  - name: small
    subGroupSize: 1
    minSubGroups: 2
    labelSelector: {matchLabels: {ray.io/group: small}}
    matchLabelKeys: [ray.io/worker-group-replica-index]
`)
	if diff := cmp.Diff(want, asJSON(t, pg)); diff != "" {
		t.Errorf("PodGroup (-want,+got):\n%s", diff)
	}
}

func TestPodGroupWithoutMultiHostIndexingHasNoSubGroups(t *testing.T) {
	pg, err := volcano.New(false).PodGroup(batchscheduler.ForRayCluster(cluster()))
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(pg.Object, "spec", "subGroupPolicy"); found {
		t.Error("subGroupPolicy set with the RayMultiHostIndexing gate off")
	}
}

func TestPodGroupNetworkTopology(t *testing.T) {
	c := cluster()
	c.Labels[volcano.NetworkTopologyModeLabelKey] = "hard"
	c.Labels[volcano.NetworkTopologyHighestTierLabelKey] = "2"
	pg, err := volcano.New(true).PodGroup(batchscheduler.ForRayCluster(c))
	if err != nil {
		t.Fatal(err)
	}
	got := asJSON(t, pg)["spec"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"mode": "hard", "highestTierAllowed": float64(2)}, got["networkTopology"]); diff != "" {
		t.Errorf("networkTopology (-want,+got):\n%s", diff)
	}
	if _, ok := got["subGroupPolicy"]; ok {
		t.Error("subGroupPolicy set although a topology applies to the whole group")
	}
	c.Labels[volcano.NetworkTopologyHighestTierLabelKey] = "top"
	if _, err := volcano.New(true).PodGroup(batchscheduler.ForRayCluster(c)); err == nil || !strings.Contains(err.Error(), volcano.NetworkTopologyHighestTierLabelKey) {
		t.Errorf("a non-integer tier gave %v, want an error naming the label", err)
	}
}

func TestRayJobOwnsTheGroupOfItsCluster(t *testing.T) {
	job := builders.RayJob("ns", "train").Workers(2).With(func(j *rayv1.RayJob) {
		j.Labels = map[string]string{volcano.QueueLabelKey: "q1"}
		j.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: q("1")}
		j.Spec.RayClusterSpec.WorkerGroupSpecs[0].Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: q("2")}
	}).Obj()
	submitter := corev1.ResourceList{corev1.ResourceCPU: q("500m"), corev1.ResourceMemory: q("200Mi")}
	pg, err := volcano.New(false).PodGroup(batchscheduler.Workload{Owner: job, Cluster: job.Spec.RayClusterSpec, Submitter: submitter})
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, `
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {name: ray-train-pg, namespace: ns}
spec:
  minMember: 3
  minResources: {cpu: 5500m, memory: 200Mi}
  queue: q1
`)
	if diff := cmp.Diff(want, asJSON(t, pg)); diff != "" {
		t.Errorf("PodGroup (-want,+got):\n%s", diff)
	}

	// The cluster the RayJob creates makes no group of its own, and its pods name the RayJob's.
	rc := cluster()
	rc.Labels[rayv1.RayOriginatedFromCRDLabelKey] = "RayJob"
	rc.Labels[rayv1.RayOriginatedFromCRNameLabelKey] = "train"
	if pg, err := volcano.New(true).PodGroup(batchscheduler.ForRayCluster(rc)); err != nil || pg != nil {
		t.Errorf("PodGroup of a RayJob's cluster = %v, %v; want none", pg, err)
	}
	pod := &corev1.Pod{}
	if err := volcano.New(true).AddMetadata(rc, pod, "small"); err != nil {
		t.Fatal(err)
	}
	if got := pod.Annotations[volcano.GroupNameAnnotationKey]; got != "ray-train-pg" {
		t.Errorf("pod of a RayJob's cluster names group %q, want ray-train-pg", got)
	}
}

func TestAddMetadata(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Labels = map[string]string{"app": "x"}
	if err := volcano.New(true).AddMetadata(cluster(), pod, rayv1.HeadGroupName); err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{"app": "x", volcano.QueueLabelKey: "q1", rayv1.RayPriorityClassNameLabelKey: "high"}
	wantAnn := map[string]string{volcano.GroupNameAnnotationKey: "ray-demo-pg", volcano.TaskSpecAnnotationKey: "headgroup"}
	if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
		t.Errorf("labels (-want,+got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAnn, pod.Annotations); diff != "" {
		t.Errorf("annotations (-want,+got):\n%s", diff)
	}
	if pod.Spec.SchedulerName != "volcano" {
		t.Errorf("schedulerName = %q, want volcano", pod.Spec.SchedulerName)
	}

	// A submitter template of a RayJob names the RayJob's group and the submitter task.
	job := builders.RayJob("ns", "train").Obj()
	tmpl := &corev1.PodTemplateSpec{}
	if err := volcano.New(true).AddMetadata(job, tmpl, rayv1.SubmitterGroupName); err != nil {
		t.Fatal(err)
	}
	if tmpl.Annotations[volcano.GroupNameAnnotationKey] != "ray-train-pg" || tmpl.Annotations[volcano.TaskSpecAnnotationKey] != "submittergroup" || tmpl.Spec.SchedulerName != "volcano" {
		t.Errorf("submitter template = %+v", tmpl)
	}
}

func TestCheckRayJob(t *testing.T) {
	if err := volcano.New(true).CheckRayJob(builders.RayJob("ns", "j").Obj()); err != nil {
		t.Errorf("a RayJob with a cluster spec refused: %v", err)
	}
	err := volcano.New(true).CheckRayJob(builders.RayJob("ns", "j").ClusterSelector("c").Obj())
	if err == nil || !strings.Contains(err.Error(), "spec.clusterSelector") {
		t.Errorf("a RayJob with a clusterSelector gave %v, want an error naming the field", err)
	}
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func TestReleasedRayJobGroupKeepsNothing(t *testing.T) {
	job := builders.RayJob("ns", "train").Workers(2).With(func(j *rayv1.RayJob) {
		j.Labels = map[string]string{volcano.QueueLabelKey: "q1"}
	}).Obj()
	pg, err := volcano.New(true).PodGroup(batchscheduler.Workload{Owner: job, Cluster: job.Spec.RayClusterSpec, Released: true})
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, `
apiVersion: scheduling.volcano.sh/v1beta1
kind: PodGroup
metadata: {name: ray-train-pg, namespace: ns}
spec:
  minMember: 0
  minResources: null # left out of the apply, which removes it
  queue: q1
`)
	if diff := cmp.Diff(want, asJSON(t, pg)); diff != "" {
		t.Errorf("PodGroup (-want,+got):\n%s", diff)
	}
}
