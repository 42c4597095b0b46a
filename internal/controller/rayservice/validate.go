package rayservice

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation/field"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// validate checks what the CRD's CEL rules cannot: serveConfigV2 must be a YAML mapping, the Ray
// container must exist, and gated upgrade strategies need their gate. A failure is recorded
// (Ready=False/ValidationFailed) and nothing else runs but garbage collection.
func (r *Reconciler) validate(_ context.Context, s *scope) (bool, error) {
	if errs := validateSpec(s.rs, r.cfg); len(errs) > 0 {
		s.invalid = errs.ToAggregate()
		s.events.Add(corev1.EventTypeWarning, EventInvalidRayServiceSpec, eventActionValidate, "%v", s.invalid)
		return true, nil
	}
	return false, nil
}

func validateSpec(rs *rayv1.RayService, cfg Config) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if _, err := serveConfigJSON(rs.Spec.ServeConfigV2); err != nil {
		errs = append(errs, field.Invalid(spec.Child("serveConfigV2"), "(YAML)", err.Error()))
	}
	errs = append(errs, resources.ValidateRayContainers(&rs.Spec.RayClusterSpec, spec.Child("rayClusterConfig"))...)
	if incrementalUpgrade(rs) && !cfg.Enabled(features.RayServiceIncrementalUpgrade) {
		errs = append(errs, field.Forbidden(spec.Child("upgradeStrategy", "type"),
			fmt.Sprintf("%s requires the %s feature gate", rayv1.NewClusterWithIncrementalUpgrade, features.RayServiceIncrementalUpgrade)))
	}
	return errs
}

// checkInitializingTimeout enforces the ray.io/initializing-timeout annotation: a RayService whose
// Ready condition stays Initializing longer fails for good (KubeRay): its cluster names are
// cleared, so its clusters are garbage-collected, and nothing else runs until it is recreated.
func (r *Reconciler) checkInitializingTimeout(_ context.Context, s *scope) (bool, error) {
	ready := meta.FindStatusCondition(s.rs.Status.Conditions, string(rayv1.RayServiceReady))
	if ready != nil && ready.Reason == string(rayv1.InitializingTimeout) {
		s.timedOut = true
		s.activeName, s.pendingName = "", ""
		return true, nil
	}
	timeout, ok := initializingTimeout(s.rs)
	if !ok || ready == nil || ready.Status == "True" || ready.Reason != string(rayv1.RayServiceInitializing) {
		return false, nil
	}
	deadline := ready.LastTransitionTime.Add(timeout)
	if s.now.Before(deadline) {
		s.requeueAtTime(deadline)
		return false, nil
	}
	s.timedOut = true
	s.activeName, s.pendingName = "", ""
	s.events.Add(corev1.EventTypeWarning, EventRayServiceInitializingTimeout, eventActionValidate,
		"The RayService was not ready within %s (ray.io/initializing-timeout); its RayClusters are deleted. Recreate the RayService to try again", timeout)
	return true, nil
}
