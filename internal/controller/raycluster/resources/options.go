package resources

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/rayk8s/rayk8s/internal/operator/operatorenv"
)

// Options are operator-level switches (KubeRay's operator environment variables) that shape the
// children of a RayCluster. The zero value is not the default; use DefaultOptions.
type Options struct {
	// ClusterDomain is the cluster DNS domain used in the head Service FQDN (CLUSTER_DOMAIN).
	ClusterDomain string
	// EnableInitContainerInjection adds the wait-gcs-ready init container to workers
	// (ENABLE_INIT_CONTAINER_INJECTION).
	EnableInitContainerInjection bool
	// EnableProbesInjection adds liveness/readiness probes to Ray containers that have none
	// (ENABLE_PROBES_INJECTION).
	EnableProbesInjection bool
	// EnableLoginShell runs the Ray container command with "bash -lc" (ENABLE_LOGIN_SHELL).
	EnableLoginShell bool
	// HeadClusterIPService gives the default head Service a cluster IP instead of making it
	// headless (ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE).
	HeadClusterIPService bool
	// DeterministicHeadPodName names the head pod "<cluster>-head" instead of using generateName
	// (ENABLE_DETERMINISTIC_HEAD_POD_NAME).
	DeterministicHeadPodName bool
	// OperatorVersion is stamped in the ray.io/kuberay-version annotation of head pods.
	OperatorVersion string
	// CreatorCRD is "RayCluster", "RayJob" or "RayService". When empty it is derived from the
	// cluster's ray.io/originated-from-crd label.
	CreatorCRD string
	// PodDefaults come from the operator's --config file.
	PodDefaults PodDefaults
}

// PodDefaults are what KubeRay's operator Configuration adds to every Ray pod it builds. Values the
// pod template already sets win; sidecars are appended.
type PodDefaults struct {
	// HeadSidecarContainers are appended to the containers of every head pod.
	HeadSidecarContainers []corev1.Container
	// WorkerSidecarContainers are appended to the containers of every worker pod.
	WorkerSidecarContainers []corev1.Container
	// ContainerEnvs are added to every Ray container that does not set the same name.
	ContainerEnvs []corev1.EnvVar
	// Labels are added to every Ray pod that does not carry the key.
	Labels map[string]string
	// Annotations are added to every Ray pod that does not carry the key.
	Annotations map[string]string
}

// Operator environment variables read by OptionsFromEnv.
const (
	EnvClusterDomain                = "CLUSTER_DOMAIN"
	EnvEnableInitContainerInjection = "ENABLE_INIT_CONTAINER_INJECTION"
	EnvEnableProbesInjection        = "ENABLE_PROBES_INJECTION"
	EnvEnableLoginShell             = "ENABLE_LOGIN_SHELL"
	EnvHeadClusterIPService         = "ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE"
	EnvDeterministicHeadPodName     = "ENABLE_DETERMINISTIC_HEAD_POD_NAME"
)

// DefaultClusterDomain is the DNS domain assumed when CLUSTER_DOMAIN is unset.
const DefaultClusterDomain = "cluster.local"

// DefaultOptions returns the options of an operator started without any of the environment
// variables set.
func DefaultOptions() Options {
	return Options{
		ClusterDomain:                DefaultClusterDomain,
		EnableInitContainerInjection: true,
		EnableProbesInjection:        true,
	}
}

// OptionsFromEnv reads the operator environment variables through getenv (os.Getenv in
// production). Unset or empty variables keep their default. A boolean variable that does not
// parse is an error naming the variable.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	o := DefaultOptions()
	if v := getenv(EnvClusterDomain); v != "" {
		o.ClusterDomain = v
	}
	if err := operatorenv.Bools(getenv, map[string]*bool{
		EnvEnableInitContainerInjection: &o.EnableInitContainerInjection,
		EnvEnableProbesInjection:        &o.EnableProbesInjection,
		EnvEnableLoginShell:             &o.EnableLoginShell,
		EnvHeadClusterIPService:         &o.HeadClusterIPService,
		EnvDeterministicHeadPodName:     &o.DeterministicHeadPodName,
	}); err != nil {
		return Options{}, err
	}
	return o, nil
}
