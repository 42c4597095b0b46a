// Package operator assembles the rayk8s manager: its command-line options and --config file,
// logging, the controller-runtime manager with health, metrics and leader election, and the
// controllers.
package operator

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-base/featuregate"

	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/schedulers"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/volcano"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/config"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// LeaderElectionID is the Lease KubeRay's operator uses. Sharing it means a rayk8s and a KubeRay
// operator pointed at the same namespace never reconcile the same objects at once.
const LeaderElectionID = "ray-operator-leader"

// Options are the manager's settings, filled from flags or from a --config file.
type Options struct {
	MetricsAddr             string
	ProbeAddr               string
	EnableLeaderElection    bool
	LeaderElectionNamespace string
	ReconcileConcurrency    int
	WatchNamespaces         []string
	FeatureGates            featuregate.FeatureGate
	EnableMetrics           bool
	QPS                     float64
	Burst                   int
	// LogEncoder is the stdout encoder (--log-stdout-encoder).
	LogEncoder string
	// LogFilePath, when set, makes every log line also go to this file, rotated at 500 MB.
	LogFilePath string
	// LogFileEncoder is the encoder of the log file.
	LogFileEncoder          string
	LogLevel                string
	GracefulShutdownTimeout time.Duration
	// UseKubernetesProxy makes the operator reach Ray dashboards through the API server's service
	// proxy instead of the head Services' cluster DNS names.
	UseKubernetesProxy bool
	// BatchScheduler and EnableBatchScheduler name a gang scheduler (the legacy switch means
	// volcano); "" and "default" mean the Kubernetes scheduler.
	BatchScheduler       string
	EnableBatchScheduler bool
	// ForcedClusterUpgrade is KubeRay's deprecated no-op flag; the manager logs that it is ignored.
	ForcedClusterUpgrade bool
	// DeleteRayJobAfterJobFinishes deletes finished RayJobs (the config file's field; the
	// DELETE_RAYJOB_CR_AFTER_JOB_FINISHES environment variable turns it on as well).
	DeleteRayJobAfterJobFinishes bool
	// PodDefaults are the config file's sidecars and defaults for every Ray pod.
	PodDefaults resources.PodDefaults
	// OperatorVersion is stamped on head pods and in Ray's usage-stats tags.
	OperatorVersion string
	// ConfigFile is the --config path, when the settings came from it.
	ConfigFile string
	// IgnoredFlags are the flags given on the command line that --config overrode, for the log.
	IgnoredFlags []string
}

// flagValues holds raw flag strings that need parsing after flag.Parse.
type flagValues struct {
	watchNamespace string
	featureGates   string
}

// keptWithConfig are the flags honoured even with --config, which only replaces KubeRay's
// settings (KubeRay likewise keeps --feature-gates and its zap logging flags).
func keptWithConfig() []string {
	return []string{"config", "feature-gates", "log-level", "graceful-shutdown-timeout"}
}

// BindFlags registers the manager's flags, named as KubeRay's so existing Helm values and
// Deployment args keep working. Call the returned function after parsing.
func BindFlags(fs *flag.FlagSet) func() (Options, error) {
	var o Options
	var raw flagValues
	fs.StringVar(&o.ConfigFile, "config", "", "Path to a config.ray.io/v1alpha1 Configuration file. When set, the other KubeRay flags are ignored (as in KubeRay); --feature-gates, --log-level and --graceful-shutdown-timeout still apply.")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", config.DefaultMetricsAddr, "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", config.DefaultProbeAddr, "Address the /healthz and /readyz endpoints bind to.")
	fs.BoolVar(&o.EnableLeaderElection, "enable-leader-election", config.DefaultEnableLeaderElection, "Elect a leader so only one manager replica reconciles at a time.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (default: the pod's namespace).")
	fs.IntVar(&o.ReconcileConcurrency, "reconcile-concurrency", config.DefaultReconcileConcurrency, "Maximum concurrent reconciles per controller.")
	fs.StringVar(&raw.watchNamespace, "watch-namespace", "", "Comma-separated namespaces to watch (default: all namespaces).")
	fs.StringVar(&raw.featureGates, "feature-gates", "", "Comma-separated Name=true|false pairs with KubeRay's gate names, e.g. RayJobDeletionPolicy=false.")
	fs.BoolVar(&o.EnableMetrics, "enable-metrics", false, "Register the kuberay_* metrics for Ray resources.")
	fs.Float64Var(&o.QPS, "qps", config.DefaultQPS, "Client-side queries per second to the Kubernetes API.")
	fs.IntVar(&o.Burst, "burst", config.DefaultBurst, "Client-side burst of queries to the Kubernetes API.")
	fs.StringVar(&o.LogEncoder, "log-stdout-encoder", config.DefaultLogEncoder, "Log encoding on stdout: json or console.")
	fs.StringVar(&o.LogFilePath, "log-file-path", "", "Also write the log to this file (rotated at 500 MB, 10 backups kept for 30 days).")
	fs.StringVar(&o.LogFileEncoder, "log-file-encoder", config.DefaultLogEncoder, "Log encoding in --log-file-path: json or console.")
	fs.StringVar(&o.LogLevel, "log-level", "info", "Log verbosity: info, debug, or a number 0-5 (higher is more verbose).")
	fs.BoolVar(&o.UseKubernetesProxy, "use-kubernetes-proxy", false, "Reach Ray dashboards through the Kubernetes API server's service proxy instead of cluster DNS (for operators running outside the cluster network).")
	fs.StringVar(&o.BatchScheduler, "batch-scheduler", "", "Gang scheduler for Ray pods: volcano, yunikorn, kai-scheduler or scheduler-plugins, or default (the Kubernetes scheduler). The manager refuses to start when the scheduler's PodGroup CRD is not installed.")
	fs.BoolVar(&o.EnableBatchScheduler, "enable-batch-scheduler", false, "Deprecated spelling of --batch-scheduler=volcano.")
	fs.BoolVar(&o.ForcedClusterUpgrade, "forced-cluster-upgrade", false, "Deprecated and ignored, as in KubeRay.")
	fs.DurationVar(&o.GracefulShutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "How long to wait for running reconciles on shutdown.")
	return func() (Options, error) {
		if o.ConfigFile != "" {
			c, err := config.Load(o.ConfigFile)
			if err != nil {
				return Options{}, err
			}
			o = fromConfig(o, c)
			fs.Visit(func(f *flag.Flag) {
				if !slices.Contains(keptWithConfig(), f.Name) {
					o.IgnoredFlags = append(o.IgnoredFlags, "--"+f.Name)
				}
			})
		} else {
			o.WatchNamespaces = splitList(raw.watchNamespace)
		}
		gates, err := features.Parse(raw.featureGates)
		if err != nil {
			return Options{}, err
		}
		o.FeatureGates = gates
		o.OperatorVersion = Version()
		return o, o.Validate()
	}
}

// fromConfig replaces every KubeRay setting of o with the file's; rayk8s-only settings stay.
func fromConfig(o Options, c config.Configuration) Options {
	return Options{
		MetricsAddr:                  c.MetricsAddr,
		ProbeAddr:                    c.ProbeAddr,
		EnableLeaderElection:         *c.EnableLeaderElection,
		LeaderElectionNamespace:      c.LeaderElectionNamespace,
		ReconcileConcurrency:         c.ReconcileConcurrency,
		WatchNamespaces:              splitList(c.WatchNamespace),
		EnableMetrics:                c.EnableMetrics,
		QPS:                          *c.QPS,
		Burst:                        *c.Burst,
		LogEncoder:                   c.LogStdoutEncoder,
		LogFilePath:                  c.LogFile,
		LogFileEncoder:               c.LogFileEncoder,
		LogLevel:                     o.LogLevel,
		GracefulShutdownTimeout:      o.GracefulShutdownTimeout,
		UseKubernetesProxy:           c.UseKubernetesProxy,
		BatchScheduler:               c.BatchScheduler,
		EnableBatchScheduler:         c.EnableBatchScheduler,
		DeleteRayJobAfterJobFinishes: c.DeleteRayJobAfterJobFinishes,
		PodDefaults: resources.PodDefaults{
			HeadSidecarContainers:   c.HeadSidecarContainers,
			WorkerSidecarContainers: c.WorkerSidecarContainers,
			ContainerEnvs:           c.DefaultContainerEnvs,
			Labels:                  c.DefaultPodLabels,
			Annotations:             c.DefaultPodAnnotations,
		},
		ConfigFile: o.ConfigFile,
	}
}

// name is how an error refers to a setting: the config file's field when the settings came from
// --config, else the flag.
func (o Options) name(flagName, field string) string {
	if o.ConfigFile != "" {
		return fmt.Sprintf("%s field %s", o.ConfigFile, field)
	}
	return "--" + flagName
}

// Validate reports every invalid option, each naming its flag or config field.
func (o Options) Validate() error {
	var errs []error
	if o.ReconcileConcurrency < 1 {
		errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", o.name("reconcile-concurrency", "reconcileConcurrency"), o.ReconcileConcurrency))
	}
	if o.QPS <= 0 {
		errs = append(errs, fmt.Errorf("%s must be positive, got %v", o.name("qps", "qps"), o.QPS))
	}
	if o.Burst < 0 {
		errs = append(errs, fmt.Errorf("%s must not be negative, got %d", o.name("burst", "burst"), o.Burst))
	}
	if o.LogEncoder != "json" && o.LogEncoder != "console" {
		errs = append(errs, fmt.Errorf("%s must be json or console, got %q", o.name("log-stdout-encoder", "logStdoutEncoder"), o.LogEncoder))
	}
	if o.LogFileEncoder != "json" && o.LogFileEncoder != "console" {
		errs = append(errs, fmt.Errorf("%s must be json or console, got %q", o.name("log-file-encoder", "logFileEncoder"), o.LogFileEncoder))
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if o.GracefulShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--graceful-shutdown-timeout must not be negative, got %s", o.GracefulShutdownTimeout))
	}
	errs = append(errs, o.validateBatchScheduler())
	errs = append(errs, o.validatePodDefaults())
	return errors.Join(errs...)
}

// validateBatchScheduler follows KubeRay's rules: the two settings are exclusive and unknown
// names are refused.
func (o Options) validateBatchScheduler() error {
	sched := o.name("batch-scheduler", "batchScheduler")
	legacy := o.name("enable-batch-scheduler", "enableBatchScheduler")
	if o.EnableBatchScheduler && o.BatchScheduler != "" {
		return fmt.Errorf("%s and %s must not be used together", sched, legacy)
	}
	if _, err := o.Scheduler(); err != nil {
		return fmt.Errorf("%s: %w", sched, err)
	}
	// Both would set the pods' scheduler and group them: one of them would be silently overruled.
	if o.BatchSchedulerName() != "" && features.Enabled(o.FeatureGates, features.KubernetesWAS) {
		return fmt.Errorf("%s=%s and --feature-gates=KubernetesWAS=true must not be used together: both choose the pods' scheduler and gang",
			sched, o.BatchSchedulerName())
	}
	return nil
}

// BatchSchedulerName is the batch scheduler the options choose, "" for none.
func (o Options) BatchSchedulerName() string {
	if o.EnableBatchScheduler {
		return volcano.Name
	}
	if o.BatchScheduler == schedulers.Default {
		return ""
	}
	return o.BatchScheduler
}

// Scheduler returns the batch scheduler integration the options choose, nil for none.
func (o Options) Scheduler() (batchscheduler.Scheduler, error) {
	return schedulers.ByName(o.BatchSchedulerName(), schedulers.Settings{
		MultiHostIndexing: features.Enabled(o.FeatureGates, features.RayMultiHostIndexing),
	})
}

// validatePodDefaults catches what would otherwise make every Ray pod creation fail.
func (o Options) validatePodDefaults() error {
	var errs []error
	d := o.PodDefaults
	for _, group := range []struct {
		field string
		ctrs  []corev1.Container
	}{
		{"headSidecarContainers", d.HeadSidecarContainers},
		{"workerSidecarContainers", d.WorkerSidecarContainers},
	} {
		field := group.field
		seen := map[string]bool{}
		for i, c := range group.ctrs {
			switch {
			case c.Name == "":
				errs = append(errs, fmt.Errorf("%s[%d].name must be set", o.name("config", field), i))
			case seen[c.Name]:
				errs = append(errs, fmt.Errorf("%s[%d].name %q is used twice", o.name("config", field), i, c.Name))
			}
			seen[c.Name] = true
			if c.Image == "" {
				errs = append(errs, fmt.Errorf("%s[%d].image must be set", o.name("config", field), i))
			}
		}
	}
	for i, e := range d.ContainerEnvs {
		if e.Name == "" {
			errs = append(errs, fmt.Errorf("%s[%d].name must be set", o.name("config", "defaultContainerEnvs"), i))
		}
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
