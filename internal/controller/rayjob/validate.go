package rayjob

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// validationFailure is a spec or status the CRD's CEL rules could not reject. eventReason is
// KubeRay's event reason (InvalidRayJobSpec or InvalidRayJobStatus).
type validationFailure struct {
	eventReason string
	err         error
}

// validate checks what CEL cannot: values that must parse (runtimeEnvYAML, entrypointResources),
// rules that depend on operator feature gates, fields the chosen mode needs, and the status.
func validate(job *rayv1.RayJob, cfg Config) *validationFailure {
	if errs := validateSpec(job, cfg); len(errs) > 0 {
		return &validationFailure{eventReason: "InvalidRayJobSpec", err: errs.ToAggregate()}
	}
	if job.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusWaiting && job.Spec.SubmissionMode != rayv1.InteractiveMode {
		return &validationFailure{eventReason: "InvalidRayJobStatus", err: field.Invalid(field.NewPath("status", "jobDeploymentStatus"),
			job.Status.JobDeploymentStatus, fmt.Sprintf("Waiting is only valid in InteractiveMode, but spec.submissionMode is %s", mode(job)))}
	}
	return nil
}

func validateSpec(job *rayv1.RayJob, cfg Config) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	s := &job.Spec
	if s.RuntimeEnvYAML != "" {
		if _, err := runtimeEnv(s.RuntimeEnvYAML); err != nil {
			errs = append(errs, field.Invalid(spec.Child("runtimeEnvYAML"), s.RuntimeEnvYAML, err.Error()))
		}
	}
	if s.EntrypointResources != "" {
		if _, err := entrypointResources(s.EntrypointResources); err != nil {
			errs = append(errs, field.Invalid(spec.Child("entrypointResources"), s.EntrypointResources, err.Error()))
		}
	}
	if s.DeletionStrategy != nil && !cfg.Enabled(features.RayJobDeletionPolicy) {
		errs = append(errs, field.Forbidden(spec.Child("deletionStrategy"), "requires the RayJobDeletionPolicy feature gate"))
	}
	if s.SubmissionMode == rayv1.SidecarMode && s.SubmitterConfig != nil && !cfg.Enabled(features.SidecarSubmitterRestart) {
		errs = append(errs, field.Forbidden(spec.Child("submitterConfig"), "cannot be used in SidecarMode unless the SidecarSubmitterRestart feature gate is enabled"))
	}
	if s.SubmissionMode != rayv1.InteractiveMode && s.Entrypoint == "" && !customSubmitter(s) {
		errs = append(errs, field.Required(spec.Child("entrypoint"), fmt.Sprintf("the entrypoint is required in %s", mode(job))))
	}
	if rc := s.RayClusterSpec; rc != nil && clusterSelectorName(job) == "" {
		errs = append(errs, resources.ValidateRayContainers(rc, spec.Child("rayClusterSpec"))...)
	}
	if t := s.SubmitterPodTemplate; t != nil && usesSubmitterJob(job) && len(t.Spec.Containers) == 0 {
		errs = append(errs, field.Required(spec.Child("submitterPodTemplate", "spec", "containers"), "the submitter container must be containers[0]"))
	}
	return errs
}

// customSubmitter reports whether a K8sJobMode submitter pod template brings its own command, in
// which case the entrypoint is not needed.
func customSubmitter(s *rayv1.RayJobSpec) bool {
	if s.SubmissionMode != rayv1.K8sJobMode && s.SubmissionMode != "" {
		return false
	}
	t := s.SubmitterPodTemplate
	return t != nil && len(t.Spec.Containers) > 0 && len(t.Spec.Containers[0].Command) > 0
}

// runtimeEnv converts runtimeEnvYAML to the runtime_env object of the Jobs API.
func runtimeEnv(y string) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		return nil, fmt.Errorf("not a YAML mapping: %w", err)
	}
	return m, nil
}

// runtimeEnvJSON is runtimeEnvYAML as JSON (for `ray job submit --runtime-env-json`).
func runtimeEnvJSON(y string) (string, error) {
	m, err := runtimeEnv(y)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encoding runtime_env: %w", err)
	}
	return string(b), nil
}

// entrypointResources parses the JSON object of custom driver resources.
func entrypointResources(s string) (map[string]float64, error) {
	var m map[string]float64
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("not a JSON object of resource name to number: %w", err)
	}
	return m, nil
}

func mode(job *rayv1.RayJob) rayv1.JobSubmissionMode {
	if job.Spec.SubmissionMode == "" {
		return rayv1.K8sJobMode
	}
	return job.Spec.SubmissionMode
}

// headImage is the image of the head's Ray container, which the submitter runs.
func headImage(spec *rayv1.RayClusterSpec) string {
	if spec == nil || len(spec.HeadGroupSpec.Template.Spec.Containers) == 0 {
		return ""
	}
	return spec.HeadGroupSpec.Template.Spec.Containers[0].Image
}
