package raycluster

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// validateCluster checks the rules of KubeRay's controller-side validation that the CRD's CEL
// rules cannot express (or that depend on operator feature gates). A failure is reported as the
// rayv1.RayClusterSpecValid condition and a Warning event; no child is touched while it fails.
func validateCluster(c *rayv1.RayCluster, cfg Config) error {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	head := spec.Child("headGroupSpec")

	errs = append(errs, resources.ValidateRayContainers(&c.Spec, spec)...)
	errs = append(errs, validateNodeLabels(c.Spec.HeadGroupSpec.Labels, head.Child("labels"))...)
	errs = append(errs, validateAlphaFields(c, cfg)...)
	for i := range c.Spec.WorkerGroupSpecs {
		g := &c.Spec.WorkerGroupSpecs[i]
		p := spec.Child("workerGroupSpecs").Index(i)
		errs = append(errs, validateNodeLabels(g.Labels, p.Child("labels"))...)
		if groupSuspended(g) && !cfg.Enabled(features.RayJobDeletionPolicy) {
			errs = append(errs, field.Forbidden(p.Child("suspend"), "requires the RayJobDeletionPolicy feature gate"))
		}
		if g.IdleTimeoutSeconds != nil && !autoscalerV2(c) {
			errs = append(errs, field.Forbidden(p.Child("idleTimeoutSeconds"), "requires autoscaler v2 (autoscalerOptions.version: v2)"))
		}
		if deref(g.Priority, 0) != 0 {
			if !autoscalerV2(c) {
				errs = append(errs, field.Forbidden(p.Child("priority"), "requires autoscaler v2 (autoscalerOptions.version: v2)"))
			} else if versionLess(c.Spec.RayVersion, "2.56.0") {
				errs = append(errs, field.Forbidden(p.Child("priority"), "requires rayVersion 2.56.0 or later"))
			}
		}
		if autoscalerV2(c) && !restartNeverOrUnset(&g.Template.Spec) {
			errs = append(errs, field.Invalid(p.Child("template", "spec", "restartPolicy"), g.Template.Spec.RestartPolicy, "autoscaler v2 requires Never (or unset)"))
		}
	}
	if len(c.Spec.HeadGroupSpec.Template.Spec.Containers) == 0 {
		return errs.ToAggregate() // reported by ValidateRayContainers
	}
	ray := &c.Spec.HeadGroupSpec.Template.Spec.Containers[0]
	envPath := head.Child("template", "spec", "containers").Index(0).Child("env")

	// GCS fault tolerance.
	ft := c.Spec.GcsFaultToleranceOptions
	legacyFT := c.Annotations[rayv1.RayFTEnabledAnnotationKey]
	switch {
	case ft != nil && legacyFT != "":
		errs = append(errs, field.Forbidden(spec.Child("gcsFaultToleranceOptions"),
			fmt.Sprintf("cannot be combined with the %s annotation", rayv1.RayFTEnabledAnnotationKey)))
	case ft != nil:
		if ft.Backend != nil && *ft.Backend == rayv1.GcsBackendRocksDB {
			if !cfg.Enabled(features.GCSFaultToleranceEmbeddedStorage) {
				errs = append(errs, field.Forbidden(spec.Child("gcsFaultToleranceOptions", "backend"), "rocksdb requires the GCSFaultToleranceEmbeddedStorage feature gate"))
			}
		} else {
			if ft.RedisAddress == "" {
				errs = append(errs, field.Required(spec.Child("gcsFaultToleranceOptions", "redisAddress"), "the redis backend needs an address"))
			}
			if _, ok := c.Spec.HeadGroupSpec.RayStartParams["redis-password"]; ok {
				errs = append(errs, field.Forbidden(head.Child("rayStartParams", "redis-password"), "use gcsFaultToleranceOptions.redisPassword"))
			}
			for _, name := range []string{"REDIS_PASSWORD", "RAY_REDIS_ADDRESS"} {
				if hasEnv(ray, name) {
					errs = append(errs, field.Forbidden(envPath, name+" is set by the operator from gcsFaultToleranceOptions"))
				}
			}
			if _, ok := c.Annotations[rayv1.RayExternalStorageNSAnnotationKey]; ok {
				errs = append(errs, field.Forbidden(field.NewPath("metadata", "annotations").Key(rayv1.RayExternalStorageNSAnnotationKey),
					"use gcsFaultToleranceOptions.externalStorageNamespace"))
			}
		}
	case legacyFT != "true" && hasEnv(ray, "RAY_REDIS_ADDRESS"):
		errs = append(errs, field.Forbidden(envPath, "RAY_REDIS_ADDRESS is only meaningful with GCS fault tolerance enabled"))
	}

	// Autoscaler.
	envV2, hasEnvV2 := envValue(ray, "RAY_enable_autoscaler_v2")
	if hasEnvV2 && (envV2 == "true" || envV2 == "1") && !autoscalingEnabled(c) {
		errs = append(errs, field.Forbidden(envPath, "RAY_enable_autoscaler_v2 requires enableInTreeAutoscaling"))
	}
	if o := c.Spec.AutoscalerOptions; o != nil {
		if hasEnvV2 && o.Version != nil {
			errs = append(errs, field.Forbidden(spec.Child("autoscalerOptions", "version"), "cannot be combined with the RAY_enable_autoscaler_v2 env var"))
		}
		for _, e := range o.Env {
			if e.Name == "KUBERAY_GEN_AUTOSCALER_START_CMD" {
				errs = append(errs, field.Forbidden(spec.Child("autoscalerOptions", "env"), "KUBERAY_GEN_AUTOSCALER_START_CMD is set by the operator"))
			}
		}
	}
	if autoscalerV2(c) && !restartNeverOrUnset(&c.Spec.HeadGroupSpec.Template.Spec) {
		errs = append(errs, field.Invalid(head.Child("template", "spec", "restartPolicy"), c.Spec.HeadGroupSpec.Template.Spec.RestartPolicy, "autoscaler v2 requires Never (or unset)"))
	}

	// Upgrade strategy.
	if t := upgradeType(c); t != rayv1.RayClusterUpgradeNone {
		if crd := c.Labels[rayv1.RayOriginatedFromCRDLabelKey]; crd != "" && crd != string(rayv1.RayClusterCRD) {
			errs = append(errs, field.Forbidden(spec.Child("upgradeStrategy"), "only RayClusters created directly by users can set it; "+crd+" manages this cluster's upgrades"))
		}
		if !slices.Contains([]rayv1.RayClusterUpgradeType{rayv1.RayClusterRecreate, rayv1.RayClusterRollingUpdate}, t) {
			errs = append(errs, field.NotSupported(spec.Child("upgradeStrategy", "type"), t, []string{"None", "Recreate", "RollingUpdate"}))
		}
	}
	if v, ok := c.Annotations[rayv1.GCSFaultToleranceDeletionTimeoutAnnotationKey]; ok {
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations").Key(rayv1.GCSFaultToleranceDeletionTimeoutAnnotationKey), v, "must be a positive number of seconds"))
		}
	}
	return errs.ToAggregate()
}

func validateNodeLabels(labels map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p.Key(k), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(labels[k]) {
			errs = append(errs, field.Invalid(p.Key(k), labels[k], msg))
		}
	}
	return errs
}

func autoscalerV2(c *rayv1.RayCluster) bool {
	if !autoscalingEnabled(c) {
		return false
	}
	if o := c.Spec.AutoscalerOptions; o != nil && o.Version != nil {
		return *o.Version == rayv1.AutoscalerVersionV2
	}
	if ctrs := c.Spec.HeadGroupSpec.Template.Spec.Containers; len(ctrs) > 0 {
		v, _ := envValue(&ctrs[0], "RAY_enable_autoscaler_v2")
		return v == "true" || v == "1"
	}
	return false
}

func restartNeverOrUnset(p *corev1.PodSpec) bool {
	return p.RestartPolicy == "" || p.RestartPolicy == corev1.RestartPolicyNever
}

func hasEnv(c *corev1.Container, name string) bool {
	_, ok := envValue(c, name)
	return ok
}

func envValue(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// versionLess compares dotted numeric versions ("2.9.3" < "2.56.0"); an empty or unparsable
// version counts as older.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		var err error
		if i < len(pa) {
			if x, err = strconv.Atoi(pa[i]); err != nil {
				return true
			}
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
