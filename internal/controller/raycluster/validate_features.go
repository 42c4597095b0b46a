package raycluster

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// validateAlphaFields checks the fields of KubeRay's alpha features: each needs its feature gate
// (as in KubeRay, the spec is reported invalid otherwise), and the ones this build cannot carry
// out are reported even with the gate on instead of being accepted and ignored. They are
// refused here rather than by CEL because the API server cannot see the operator's gates, and
// KubeRay's samples that use them must still apply.
func validateAlphaFields(c *rayv1.RayCluster, cfg Config) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")

	if np := c.Spec.NetworkPolicy; np != nil {
		p := spec.Child("networkPolicy")
		if !cfg.Enabled(features.RayClusterNetworkPolicy) {
			errs = append(errs, field.Forbidden(p, "requires the RayClusterNetworkPolicy feature gate"))
		} else {
			groups := sets.New[string]()
			for i := range c.Spec.WorkerGroupSpecs {
				g := c.Spec.WorkerGroupSpecs[i].GroupName
				groups.Insert(g)
				// The group name is part of the policy's name.
				for _, msg := range validation.IsDNS1123Label(g) {
					errs = append(errs, field.Invalid(spec.Child("workerGroupSpecs").Index(i).Child("groupName"), g,
						"must be a DNS-1123 label when networkPolicy is set (it is part of the NetworkPolicy name): "+msg))
				}
			}
			for i := range np.WorkerGroups {
				if g := np.WorkerGroups[i].GroupName; !groups.Has(g) {
					errs = append(errs, field.NotFound(p.Child("workerGroups").Index(i).Child("groupName"), g))
				}
			}
		}
	}

	if c.Spec.TLSOptions != nil {
		p := spec.Child("tlsOptions")
		switch {
		case !cfg.Enabled(features.RayClusterMTLS):
			errs = append(errs, field.Forbidden(p, "requires the RayClusterMTLS feature gate"))
		case resources.TLSEnabled(c):
			errs = append(errs, validateTLSConflicts(c)...)
		}
	}

	if h := c.Spec.HistoryServerOptions; h != nil {
		p := spec.Child("historyServerOptions")
		switch {
		case !cfg.Enabled(features.RayClusterHistoryServer):
			errs = append(errs, field.Forbidden(p, "requires the RayClusterHistoryServer feature gate"))
		case h.CollectorOptions == nil:
			errs = append(errs, field.Required(p.Child("collectorOptions"), "the history server integration needs a collector"))
		default:
			// KubeRay's collector sidecar reads the Ray session directory and the events Ray's
			// dashboard aggregator pushes to it, and finds the node through the raylet process;
			// the rayk8s runtime has none of them, so the sidecar would fail in every pod.
			// Better no pods and this message.
			errs = append(errs, field.Forbidden(p.Child("collectorOptions"),
				"the history collector sidecar is not supported by rayk8s: its Ray runtime does not produce the Ray events and session logs the collector reads; remove historyServerOptions"))
		}
	}
	return errs
}

// validateTLSConflicts refuses what would override the TLS settings the operator manages: the
// TLS variables on a Ray container or in autoscalerOptions.env, and a mount named ray-tls or at
// /etc/ray/tls (KubeRay refuses the same).
func validateTLSConflicts(c *rayv1.RayCluster) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	const why = "is managed by the operator when spec.tlsOptions.enabled is true"
	checkEnv := func(p *field.Path, env []corev1.EnvVar) {
		for i, e := range env {
			if slices.Contains(resources.TLSEnvNames(), e.Name) {
				errs = append(errs, field.Forbidden(p.Index(i).Child("name"), e.Name+" "+why))
			}
		}
	}
	checkMounts := func(p *field.Path, mounts []corev1.VolumeMount) {
		for i, m := range mounts {
			if m.Name == resources.TLSVolumeName || m.MountPath == resources.TLSMountPath {
				errs = append(errs, field.Forbidden(p.Index(i), "a volume mount named "+resources.TLSVolumeName+" or at "+resources.TLSMountPath+" "+why))
			}
		}
	}
	checkRay := func(p *field.Path, t *corev1.PodTemplateSpec) {
		if len(t.Spec.Containers) == 0 {
			return
		}
		ctr := p.Child("template", "spec", "containers").Index(0)
		checkEnv(ctr.Child("env"), t.Spec.Containers[0].Env)
		checkMounts(ctr.Child("volumeMounts"), t.Spec.Containers[0].VolumeMounts)
	}
	checkRay(spec.Child("headGroupSpec"), &c.Spec.HeadGroupSpec.Template)
	for i := range c.Spec.WorkerGroupSpecs {
		checkRay(spec.Child("workerGroupSpecs").Index(i), &c.Spec.WorkerGroupSpecs[i].Template)
	}
	if o := c.Spec.AutoscalerOptions; o != nil {
		checkEnv(spec.Child("autoscalerOptions", "env"), o.Env)
		checkMounts(spec.Child("autoscalerOptions", "volumeMounts"), o.VolumeMounts)
	}
	return errs
}
