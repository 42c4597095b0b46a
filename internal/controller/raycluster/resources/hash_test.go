package resources

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func twoGroups() *rayv1.RayCluster {
	c := testCluster()
	g := c.Spec.WorkerGroupSpecs[0].DeepCopy()
	g.GroupName = "big"
	c.Spec.WorkerGroupSpecs = append(c.Spec.WorkerGroupSpecs, *g)
	return c
}

func TestHashesAreStable(t *testing.T) {
	a, b := twoGroups(), twoGroups()
	if ClusterSpecHash(a) == "" || ClusterSpecHash(a) != ClusterSpecHash(b) {
		t.Errorf("ClusterSpecHash differs for equal clusters: %q %q", ClusterSpecHash(a), ClusterSpecHash(b))
	}
	for _, g := range []string{rayv1.HeadGroupName, "small", "big"} {
		if PodTemplateHash(a, g) == "" || PodTemplateHash(a, g) != PodTemplateHash(b, g) {
			t.Errorf("PodTemplateHash(%s) differs for equal clusters", g)
		}
	}
	if PodTemplateHash(a, "small") == PodTemplateHash(a, "big") {
		t.Errorf("different groups share a hash")
	}
	if PodTemplateHash(a, "missing") != "" {
		t.Errorf("unknown group hashed")
	}
}

func TestHashSensitivity(t *testing.T) {
	tests := []struct {
		name          string
		mutate        func(*rayv1.RayCluster)
		specChanges   bool
		changedGroups []string // PodTemplateHash groups expected to change
	}{
		{name: "replicas", mutate: func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](9) }},
		{name: "min and max", mutate: func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[0].MinReplicas = ptr.To[int32](1)
			c.Spec.WorkerGroupSpecs[1].MaxReplicas = ptr.To[int32](100)
		}},
		{name: "workersToDelete", mutate: func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = []string{"rc-small-worker-abcde"}
		}},
		{name: "upgrade strategy", mutate: func(c *rayv1.RayCluster) {
			c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
		}},
		{name: "tolerations injected by a queue", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
		}, changedGroups: []string{rayv1.HeadGroupName}},
		{name: "worker template image", mutate: func(c *rayv1.RayCluster) {
			c.Spec.WorkerGroupSpecs[1].Template.Spec.Containers[0].Image = "rayproject/ray:2.53.0"
		}, specChanges: true, changedGroups: []string{"big"}},
		{name: "head rayStartParams", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.RayStartParams["num-cpus"] = "0"
		}, specChanges: true, changedGroups: []string{rayv1.HeadGroupName}},
		{name: "head GCS port reaches every worker", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.RayStartParams["port"] = "6380"
		}, specChanges: true, changedGroups: []string{rayv1.HeadGroupName, "small", "big"}},
		{name: "ray version reaches every pod", mutate: func(c *rayv1.RayCluster) {
			c.Spec.RayVersion = "2.53.0"
		}, specChanges: true, changedGroups: []string{rayv1.HeadGroupName, "small", "big"}},
		{name: "autoscaler resources only reach the head", mutate: func(c *rayv1.RayCluster) {
			c.Spec.EnableInTreeAutoscaling = ptr.To(true)
		}, specChanges: true, changedGroups: []string{rayv1.HeadGroupName}},
		{name: "head service type does not reach pods", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.ServiceType = corev1.ServiceTypeNodePort
		}, specChanges: true},
		{name: "unrelated annotation", mutate: func(c *rayv1.RayCluster) {
			c.Annotations = map[string]string{"note": "x"}
		}},
		{name: "overwrite annotation reaches every pod", mutate: func(c *rayv1.RayCluster) {
			c.Annotations = map[string]string{rayv1.RayOverwriteContainerCmdAnnotationKey: "true"}
		}, changedGroups: []string{rayv1.HeadGroupName, "small", "big"}},
	}
	groups := []string{rayv1.HeadGroupName, "small", "big"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := twoGroups()
			after := twoGroups()
			tt.mutate(after)
			if got := ClusterSpecHash(before) != ClusterSpecHash(after); got != tt.specChanges {
				t.Errorf("ClusterSpecHash changed = %v, want %v", got, tt.specChanges)
			}
			for _, g := range groups {
				want := false
				for _, cg := range tt.changedGroups {
					want = want || cg == g
				}
				if got := PodTemplateHash(before, g) != PodTemplateHash(after, g); got != want {
					t.Errorf("PodTemplateHash(%s) changed = %v, want %v", g, got, want)
				}
			}
		})
	}
}
