package shape

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func group(params, res map[string]string, limits, requests corev1.ResourceList) *rayv1.WorkerGroupSpec {
	return &rayv1.WorkerGroupSpec{
		GroupName:      "g",
		RayStartParams: params,
		Resources:      res,
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:      "ray-worker",
			Resources: corev1.ResourceRequirements{Limits: limits, Requests: requests},
		}}}},
	}
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

func TestOf(t *testing.T) {
	cases := []struct {
		name    string
		g       *rayv1.WorkerGroupSpec
		want    map[string]float64
		wantErr string
	}{
		{
			name: "container limits: CPU rounded up, memory in bytes, first GPU limit",
			g: group(nil, nil, corev1.ResourceList{
				corev1.ResourceCPU: q("1500m"), corev1.ResourceMemory: q("2Gi"), "nvidia.com/gpu": q("2"),
			}, nil),
			want: map[string]float64{"CPU": 2, "memory": 2 << 30, "GPU": 2},
		},
		{
			name: "CPU falls back to the request; memory comes only from limits",
			g:    group(nil, nil, nil, corev1.ResourceList{corev1.ResourceCPU: q("3"), corev1.ResourceMemory: q("1Gi")}),
			want: map[string]float64{"CPU": 3},
		},
		{
			name: "rayStartParams win over the container",
			g: group(map[string]string{"num-cpus": "4", "num-gpus": "1", "memory": "1000", "resources": `'{"custom": 2}'`},
				nil, corev1.ResourceList{corev1.ResourceCPU: q("8"), corev1.ResourceMemory: q("2Gi")}, nil),
			want: map[string]float64{"CPU": 4, "GPU": 1, "memory": 1000, "custom": 2},
		},
		{
			name: "the group's resources win over rayStartParams",
			g: group(map[string]string{"num-cpus": "4"}, map[string]string{"CPU": "500m", "memory": "1Gi", "nvidia.com/gpu": "1", "special": "3"},
				corev1.ResourceList{corev1.ResourceCPU: q("8")}, nil),
			want: map[string]float64{"CPU": 0.5, "memory": 1 << 30, "GPU": 1, "special": 3},
		},
		{
			name: "TPU limit becomes a TPU resource",
			g:    group(map[string]string{"num-cpus": "1"}, nil, corev1.ResourceList{"google.com/tpu": q("4")}, nil),
			want: map[string]float64{"CPU": 1, "TPU": 4},
		},
		{
			name:    "unknown CPU count is an error naming the fields to set",
			g:       group(nil, nil, nil, nil),
			wantErr: "workerGroupSpecs[0]: the number of CPUs is unknown",
		},
		{
			name:    "bad num-cpus",
			g:       group(map[string]string{"num-cpus": "many"}, nil, nil, nil),
			wantErr: `workerGroupSpecs[0].rayStartParams.num-cpus "many"`,
		},
		{
			name:    "bad resources JSON",
			g:       group(map[string]string{"num-cpus": "1", "resources": "{x"}, nil, nil, nil),
			wantErr: "workerGroupSpecs[0].rayStartParams.resources",
		},
		{
			name:    "bad group resource quantity",
			g:       group(nil, map[string]string{"CPU": "lots"}, nil, nil),
			wantErr: `workerGroupSpecs[0].resources.CPU "lots"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Of(tc.g, "workerGroupSpecs[0]")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("shape (-want +got):\n%s", diff)
			}
		})
	}
}
