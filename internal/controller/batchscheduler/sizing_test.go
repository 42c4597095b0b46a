package batchscheduler_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

func q(s string) resource.Quantity { return resource.MustParse(s) }

func TestPodResourcesPrefersRequestsAndFallsBackToLimits(t *testing.T) {
	spec := &corev1.PodSpec{Containers: []corev1.Container{
		{Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("500m")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi"), "nvidia.com/gpu": q("1")},
		}},
		{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("512Mi")}}},
	}, InitContainers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("8")}}}}}
	want := corev1.ResourceList{corev1.ResourceCPU: q("1500m"), corev1.ResourceMemory: q("1536Mi"), "nvidia.com/gpu": q("1")}
	if got := batchscheduler.PodResources(spec); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("PodResources = %v, want %v", got, want)
	}
}

func TestGangOf(t *testing.T) {
	multiHost := func(c *rayv1.RayCluster) {
		c.Spec.WorkerGroupSpecs[1].NumOfHosts = 2
	}
	tests := []struct {
		name          string
		cluster       *rayv1.RayCluster
		wantMembers   int32
		wantCPU, wMem string
	}{
		{"head only", builders.RayCluster("ns", "c").Obj(), 1, "1", "2Gi"},
		{"desired workers without autoscaling",
			builders.RayCluster("ns", "c").WorkerGroup("a", 3, 1, 5).WorkerGroup("b", 2, 0, 2).With(multiHost).Obj(),
			1 + 3 + 2*2, "8", "2Gi"},
		{"replicas clamped to maxReplicas",
			builders.RayCluster("ns", "c").WorkerGroup("a", 9, 1, 2).Obj(), 3, "3", "2Gi"},
		{"minReplicas with the autoscaler",
			builders.RayCluster("ns", "c").WorkerGroup("a", 3, 1, 5).WorkerGroup("b", 2, 1, 2).With(multiHost).
				With(func(c *rayv1.RayCluster) { c.Spec.EnableInTreeAutoscaling = ptr.To(true) }).Obj(),
			1 + 1 + 1*2, "4", "2Gi"},
		{"suspended groups left out",
			builders.RayCluster("ns", "c").WorkerGroup("a", 3, 1, 5).
				With(func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Suspend = ptr.To(true) }).Obj(),
			1, "1", "2Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := batchscheduler.GangOf(&tt.cluster.Spec)
			if g.Members != tt.wantMembers {
				t.Errorf("members = %d, want %d", g.Members, tt.wantMembers)
			}
			want := corev1.ResourceList{corev1.ResourceCPU: q(tt.wantCPU), corev1.ResourceMemory: q(tt.wMem)}
			if !equality.Semantic.DeepEqual(g.Resources, want) {
				t.Errorf("resources = %v, want %v", g.Resources, want)
			}
		})
	}
}

func TestCreatedByRayJob(t *testing.T) {
	c := builders.RayCluster("ns", "c").Obj()
	if batchscheduler.CreatedByRayJob(c) {
		t.Error("a plain RayCluster counts as created by a RayJob")
	}
	c.Labels = map[string]string{rayv1.RayOriginatedFromCRDLabelKey: "RayJob"}
	if !batchscheduler.CreatedByRayJob(c) {
		t.Error("a RayJob's RayCluster does not count as created by it")
	}
}
