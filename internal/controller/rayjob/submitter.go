package rayjob

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// SubmitterContainerName is the name of the default submitter container, in the K8sJobMode Job
// and in the head pod in SidecarMode (KubeRay's name; SidecarMode status tracking finds it by it).
const SubmitterContainerName = "ray-job-submitter"

// DefaultSubmitterBackoffLimit is the submitter Job's backoffLimit when submitterConfig does not
// set one.
const DefaultSubmitterBackoffLimit int32 = 2

// Environment variables every submitter container gets.
const (
	EnvDashboardAddress = "RAY_DASHBOARD_ADDRESS"
	EnvSubmissionID     = "RAY_JOB_SUBMISSION_ID"
)

// SubmitterJobName is the name of the K8sJobMode submitter Job: the RayJob's own name.
func SubmitterJobName(job *rayv1.RayJob) string { return job.Name }

// BuildSubmitterJob builds the K8sJobMode submitter: a batch/v1 Job named like the RayJob whose pod
// waits for the dashboard, submits the job unless `ray job status` says it exists already (so a
// retried pod never submits twice), then follows its logs. image is the head's Ray image.
// submitterPodTemplate replaces the default pod; a container[0] without a command gets the
// generated one. The job id and dashboard address come from job.Status.
func BuildSubmitterJob(job *rayv1.RayJob, image string) (*batchv1.Job, error) {
	var tmpl corev1.PodTemplateSpec
	if job.Spec.SubmitterPodTemplate != nil {
		tmpl = *job.Spec.SubmitterPodTemplate.DeepCopy()
	} else {
		tmpl = defaultSubmitterPod(image)
	}
	if len(tmpl.Spec.Containers) == 0 {
		return nil, fmt.Errorf("spec.submitterPodTemplate has no container")
	}
	if tmpl.Spec.RestartPolicy == "" {
		tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	tmpl.Labels = mergeLabels(tmpl.Labels, submitterLabels(job))
	ctr := &tmpl.Spec.Containers[0]
	if ctr.Image == "" {
		ctr.Image = image
	}
	if len(ctr.Command) == 0 {
		script, err := k8sJobScript(job)
		if err != nil {
			return nil, err
		}
		ctr.Command = []string{"/bin/bash", "-ce", "--"}
		ctr.Args = []string{script}
	}
	ctr.Env = append(ctr.Env, submitterEnv(job, job.Status.DashboardURL)...)

	backoff := DefaultSubmitterBackoffLimit
	if c := job.Spec.SubmitterConfig; c != nil && c.BackoffLimit != nil {
		backoff = *c.BackoffLimit
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            SubmitterJobName(job),
			Namespace:       job.Namespace,
			Labels:          submitterLabels(job),
			OwnerReferences: []metav1.OwnerReference{ownerReference(job)},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(backoff),
			Template:     tmpl,
		},
	}, nil
}

// BuildSidecarSubmitter builds the SidecarMode submitter container appended to the head pod: it
// waits for the local dashboard and runs a blocking `ray job submit`, whose exit code is the job's
// outcome (non-zero only when the job FAILED).
func BuildSidecarSubmitter(job *rayv1.RayJob, image string, dashboardPort int32) (corev1.Container, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", dashboardPort)
	submit, err := submitCommand(job, "http://"+addr, false)
	if err != nil {
		return corev1.Container{}, err
	}
	ctr := defaultSubmitterContainer(image)
	ctr.Command = []string{"/bin/bash", "-ce", "--"}
	ctr.Args = []string{waitForDashboard("http://"+addr) + "\n" + submit}
	ctr.Env = submitterEnv(job, addr)
	return ctr, nil
}

// k8sJobScript is the K8sJobMode submitter's script.
func k8sJobScript(job *rayv1.RayJob) (string, error) {
	addr := "http://" + job.Status.DashboardURL
	submit, err := submitCommand(job, addr, true)
	if err != nil {
		return "", err
	}
	id := shellQuote(job.Status.JobID)
	return strings.Join([]string{
		waitForDashboard(addr),
		fmt.Sprintf("if ! ray job status --address %s %s >/dev/null 2>&1 ; then %s ; fi", addr, id, submit),
		fmt.Sprintf("ray job logs --address %s --follow %s", addr, id),
	}, "\n"), nil
}

// waitForDashboard loops until the dashboard answers the Jobs API (which needs the GCS too), so a
// submitter started before the head is ready neither fails nor burns its backoffLimit.
func waitForDashboard(addr string) string {
	return fmt.Sprintf(`until ray job list --address %s >/dev/null 2>&1 ; do echo "Waiting for the Ray dashboard at %s" ; sleep 2 ; done`, addr, addr)
}

// submitCommand is `ray job submit` with the RayJob's options. The entrypoint is appended
// unquoted after "--", as KubeRay does: it is a shell command line.
func submitCommand(job *rayv1.RayJob, addr string, noWait bool) (string, error) {
	s := &job.Spec
	args := []string{"ray", "job", "submit", "--address", addr}
	if noWait {
		args = append(args, "--no-wait")
	}
	if s.RuntimeEnvYAML != "" {
		j, err := runtimeEnvJSON(s.RuntimeEnvYAML)
		if err != nil {
			return "", fmt.Errorf("spec.runtimeEnvYAML: %w", err)
		}
		args = append(args, "--runtime-env-json", shellQuote(j))
	}
	if len(s.Metadata) > 0 {
		j, err := jsonString(s.Metadata)
		if err != nil {
			return "", fmt.Errorf("spec.metadata: %w", err)
		}
		args = append(args, "--metadata-json", shellQuote(j))
	}
	args = append(args, "--submission-id", shellQuote(job.Status.JobID))
	if s.EntrypointNumCPUs > 0 {
		args = append(args, "--entrypoint-num-cpus", fmt.Sprintf("%f", s.EntrypointNumCPUs))
	}
	if s.EntrypointNumGPUs > 0 {
		args = append(args, "--entrypoint-num-gpus", fmt.Sprintf("%f", s.EntrypointNumGPUs))
	}
	if s.EntrypointResources != "" {
		args = append(args, "--entrypoint-resources", shellQuote(s.EntrypointResources))
	}
	args = append(args, "--", s.Entrypoint)
	return strings.Join(args, " "), nil
}

func defaultSubmitterPod(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{defaultSubmitterContainer(image)},
	}}
}

func defaultSubmitterContainer(image string) corev1.Container {
	return corev1.Container{
		Name:  SubmitterContainerName,
		Image: image,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("200Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
	}
}

// submitterEnv is the submitter's environment; on a cluster with token authentication it includes
// the token (RAY_AUTH_TOKEN from the cluster's Secret), which `ray job` sends to the dashboard.
func submitterEnv(job *rayv1.RayJob, dashboardAddress string) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "PYTHONUNBUFFERED", Value: "1"},
		{Name: EnvDashboardAddress, Value: dashboardAddress},
		{Name: EnvSubmissionID, Value: job.Status.JobID},
	}
	if job.Spec.RayClusterSpec != nil {
		rc := &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: job.Status.RayClusterName, Namespace: job.Namespace}, Spec: *job.Spec.RayClusterSpec}
		if resources.UsesAuthTokenSecret(rc) {
			env = append(env, resources.AuthTokenEnvVar(rc))
		}
	}
	return env
}

func submitterLabels(job *rayv1.RayJob) map[string]string {
	return map[string]string{
		rayv1.RayOriginatedFromCRNameLabelKey: job.Name,
		rayv1.RayOriginatedFromCRDLabelKey:    string(rayv1.RayJobCRD),
		rayv1.KubernetesCreatedByLabelKey:     rayv1.ComponentName,
	}
}

// shellQuote single-quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func mergeLabels(base, extra map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}
