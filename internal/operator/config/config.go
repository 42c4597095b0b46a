// Package config reads the operator's structured configuration file, KubeRay's
// config.ray.io/v1alpha1 Configuration, so that a file written for KubeRay's --config works here.
// It is not a CRD: the operator reads it from disk at startup only.
package config

import (
	"bytes"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify the file, as in KubeRay.
const (
	APIVersion = "config.ray.io/v1alpha1"
	Kind       = "Configuration"
)

// Defaults KubeRay applies to a field the file leaves out; the flags default to the same values.
const (
	DefaultMetricsAddr          = ":8080"
	DefaultProbeAddr            = ":8082"
	DefaultEnableLeaderElection = true
	DefaultReconcileConcurrency = 4
	DefaultQPS                  = float64(100)
	DefaultBurst                = 200
	DefaultLogEncoder           = "json"
)

// Configuration has KubeRay's fields with KubeRay's JSON names and meanings. See
// https://docs.ray.io/en/latest/cluster/kubernetes/k8s-ecosystem/helm-chart-values.html for the
// chart that writes it.
type Configuration struct {
	metav1.TypeMeta `json:",inline"`

	// MetricsAddr is the Prometheus metrics bind address ("0" disables the endpoint).
	MetricsAddr string `json:"metricsAddr,omitempty"`
	// ProbeAddr is the bind address of /healthz and /readyz.
	ProbeAddr string `json:"probeAddr,omitempty"`
	// EnableLeaderElection elects one active replica (default true).
	EnableLeaderElection *bool `json:"enableLeaderElection,omitempty"`
	// LeaderElectionNamespace holds the Lease (default: the pod's namespace).
	LeaderElectionNamespace string `json:"leaderElectionNamespace,omitempty"`
	// ReconcileConcurrency bounds concurrent reconciles per controller (0 means the default, 4).
	ReconcileConcurrency int `json:"reconcileConcurrency,omitempty"`
	// WatchNamespace is a comma-separated list of namespaces; empty watches all.
	WatchNamespace string `json:"watchNamespace,omitempty"`
	// LogFile, when set, receives a copy of every log line.
	LogFile string `json:"logFile,omitempty"`
	// LogFileEncoder is json (default) or console.
	LogFileEncoder string `json:"logFileEncoder,omitempty"`
	// LogStdoutEncoder is json (default) or console.
	LogStdoutEncoder string `json:"logStdoutEncoder,omitempty"`
	// BatchScheduler names a gang scheduler integration (volcano, yunikorn, kai-scheduler,
	// scheduler-plugins) or "default".
	BatchScheduler string `json:"batchScheduler,omitempty"`
	// EnableBatchScheduler is the deprecated spelling of BatchScheduler "volcano".
	EnableBatchScheduler bool `json:"enableBatchScheduler,omitempty"`
	// HeadSidecarContainers are appended to every head pod.
	HeadSidecarContainers []corev1.Container `json:"headSidecarContainers,omitempty"`
	// WorkerSidecarContainers are appended to every worker pod.
	WorkerSidecarContainers []corev1.Container `json:"workerSidecarContainers,omitempty"`
	// DefaultContainerEnvs are added to every Ray container that does not set them.
	DefaultContainerEnvs []corev1.EnvVar `json:"defaultContainerEnvs,omitempty"`
	// DefaultPodAnnotations are added to every Ray pod that does not set them.
	DefaultPodAnnotations map[string]string `json:"defaultPodAnnotations,omitempty"`
	// DefaultPodLabels are added to every Ray pod that does not set them.
	DefaultPodLabels map[string]string `json:"defaultPodLabels,omitempty"`
	// UseKubernetesProxy reaches Ray dashboards through the API server's proxy subresources.
	UseKubernetesProxy bool `json:"useKubernetesProxy,omitempty"`
	// DeleteRayJobAfterJobFinishes deletes a finished RayJob itself when it shuts its cluster down.
	DeleteRayJobAfterJobFinishes bool `json:"deleteRayJobAfterJobFinishes,omitempty"`
	// EnableMetrics registers the kuberay_* metrics.
	EnableMetrics bool `json:"enableMetrics,omitempty"`
	// QPS is the client-side rate limit towards the API server (default 100).
	QPS *float64 `json:"qps,omitempty"`
	// Burst is the client-side burst towards the API server (default 200).
	Burst *int `json:"burst,omitempty"`
}

// Load reads and decodes the file at path.
func Load(path string) (Configuration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Configuration{}, fmt.Errorf("reading --config file: %w", err)
	}
	c, err := Decode(data)
	if err != nil {
		return Configuration{}, fmt.Errorf("--config file %s: %w", path, err)
	}
	return c, nil
}

// Decode parses YAML or JSON strictly: an unknown or duplicated field is an error naming it, since
// a misspelt setting silently falling back to its default is worse than a failed start. Fields
// left out get KubeRay's defaults.
func Decode(data []byte) (Configuration, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Configuration{}, fmt.Errorf("the file is empty; want apiVersion: %s and kind: %s", APIVersion, Kind)
	}
	var c Configuration
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return Configuration{}, fmt.Errorf("decoding %s %s: %w", APIVersion, Kind, err)
	}
	if c.APIVersion != APIVersion || c.Kind != Kind {
		return Configuration{}, fmt.Errorf("apiVersion %q, kind %q: want apiVersion %s and kind %s", c.APIVersion, c.Kind, APIVersion, Kind)
	}
	c.setDefaults()
	return c, nil
}

func (c *Configuration) setDefaults() {
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.ProbeAddr == "" {
		c.ProbeAddr = DefaultProbeAddr
	}
	if c.EnableLeaderElection == nil {
		v := DefaultEnableLeaderElection
		c.EnableLeaderElection = &v
	}
	if c.ReconcileConcurrency == 0 {
		c.ReconcileConcurrency = DefaultReconcileConcurrency
	}
	if c.QPS == nil {
		v := DefaultQPS
		c.QPS = &v
	}
	if c.Burst == nil {
		v := DefaultBurst
		c.Burst = &v
	}
	if c.LogFileEncoder == "" {
		c.LogFileEncoder = DefaultLogEncoder
	}
	if c.LogStdoutEncoder == "" {
		c.LogStdoutEncoder = DefaultLogEncoder
	}
}
