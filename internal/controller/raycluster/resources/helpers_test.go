package resources

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

const testUID = "11111111-2222-3333-4444-555555555555"

// testCluster is a small valid RayCluster: a head with the usual ports and one worker group "small".
func testCluster() *rayv1.RayCluster {
	return &rayv1.RayCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: testUID},
		Spec: rayv1.RayClusterSpec{
			RayVersion: "2.52.0",
			HeadGroupSpec: rayv1.HeadGroupSpec{
				RayStartParams: map[string]string{},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "ray-head",
					Image: "rayproject/ray:2.52.0",
					Resources: corev1.ResourceRequirements{
						Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")},
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
					},
				}}}},
			},
			WorkerGroupSpecs: []rayv1.WorkerGroupSpec{{
				GroupName:      "small",
				Replicas:       ptr.To[int32](2),
				MinReplicas:    ptr.To[int32](0),
				MaxReplicas:    ptr.To[int32](5),
				NumOfHosts:     1,
				RayStartParams: map[string]string{},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "ray-worker",
					Image: "rayproject/ray:2.52.0",
					Resources: corev1.ResourceRequirements{
						Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")},
					},
				}}}},
			}},
		},
	}
}

func testOptions() Options {
	o := DefaultOptions()
	o.OperatorVersion = "v1.2.3"
	return o
}

func envValue(t *testing.T, ctr *corev1.Container, name string) (corev1.EnvVar, bool) {
	t.Helper()
	var found corev1.EnvVar
	n := 0
	for _, e := range ctr.Env {
		if e.Name == name {
			found = e
			n++
		}
	}
	if n > 1 {
		t.Errorf("env %s appears %d times in container %s", name, n, ctr.Name)
	}
	return found, n > 0
}

func mustEnv(t *testing.T, ctr *corev1.Container, name, want string) {
	t.Helper()
	e, ok := envValue(t, ctr, name)
	if !ok {
		t.Errorf("container %s: env %s missing", ctr.Name, name)
		return
	}
	if e.Value != want {
		t.Errorf("container %s: env %s = %q, want %q", ctr.Name, name, e.Value, want)
	}
}

func noEnv(t *testing.T, ctr *corev1.Container, name string) {
	t.Helper()
	if e, ok := envValue(t, ctr, name); ok {
		t.Errorf("container %s: env %s = %+v, want absent", ctr.Name, name, e)
	}
}
