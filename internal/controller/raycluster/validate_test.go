package raycluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

func TestValidateCluster(t *testing.T) {
	cases := map[string]struct {
		mutate  func(c *rayv1.RayCluster)
		wantErr string // substring; "" = valid
	}{
		"valid": {mutate: func(*rayv1.RayCluster) {}},
		"invalid head label key": {
			mutate:  func(c *rayv1.RayCluster) { c.Spec.HeadGroupSpec.Labels = map[string]string{"a b": "x"} },
			wantErr: "spec.headGroupSpec.labels[a b]",
		},
		"invalid worker label value": {
			mutate:  func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Labels = map[string]string{"k": "not valid!"} },
			wantErr: "spec.workerGroupSpecs[0].labels[k]",
		},
		"GCS FT options and annotation": {
			mutate: func(c *rayv1.RayCluster) {
				c.Annotations = map[string]string{rayv1.RayFTEnabledAnnotationKey: "true"}
				c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{RedisAddress: "r:6379"}
			},
			wantErr: "spec.gcsFaultToleranceOptions",
		},
		"RAY_REDIS_ADDRESS without FT": {
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "RAY_REDIS_ADDRESS", Value: "r:6379"}}
			},
			wantErr: "RAY_REDIS_ADDRESS",
		},
		"redis password in rayStartParams with FT options": {
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{RedisAddress: "r:6379"}
				c.Spec.HeadGroupSpec.RayStartParams = map[string]string{"redis-password": "x"}
			},
			wantErr: "redis-password",
		},
		"rocksdb without gate": {
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{Backend: ptr.To(rayv1.GcsBackendRocksDB)}
			},
			wantErr: "GCSFaultToleranceEmbeddedStorage",
		},
		"autoscaler v2 env without autoscaling": {
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "RAY_enable_autoscaler_v2", Value: "true"}}
			},
			wantErr: "requires enableInTreeAutoscaling",
		},
		"autoscaler v2 with restartPolicy Always": {
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.EnableInTreeAutoscaling = ptr.To(true)
				c.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{Version: ptr.To(rayv1.AutoscalerVersionV2)}
				c.Spec.WorkerGroupSpecs[0].Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
			},
			wantErr: "spec.workerGroupSpecs[0].template.spec.restartPolicy",
		},
		"idle timeout needs v2": {
			mutate:  func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].IdleTimeoutSeconds = ptr.To[int32](10) },
			wantErr: "idleTimeoutSeconds",
		},
		"upgrade strategy on a RayJob's cluster": {
			mutate: func(c *rayv1.RayCluster) {
				c.Labels = map[string]string{rayv1.RayOriginatedFromCRDLabelKey: string(rayv1.RayJobCRD)}
				c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
			},
			wantErr: "spec.upgradeStrategy",
		},
		"rolling update allowed": {
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRollingUpdate)}
			},
		},
		"bad deletion timeout": {
			mutate: func(c *rayv1.RayCluster) {
				c.Annotations = map[string]string{rayv1.GCSFaultToleranceDeletionTimeoutAnnotationKey: "soon"}
			},
			wantErr: rayv1.GCSFaultToleranceDeletionTimeoutAnnotationKey,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := builders.RayCluster("ns", "c").WorkerGroup("g", 1, 0, 2).Obj()
			tc.mutate(c)
			err := validateCluster(c, DefaultConfig())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"2.9.3", "2.56.0", true}, {"2.56.0", "2.56.0", false}, {"3.0", "2.56.0", false}, {"", "2.56.0", true}} {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
