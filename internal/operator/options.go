// Package operator assembles the rayk8s manager: its command-line options, logging, the
// controller-runtime manager with health, metrics and leader election, and the controllers.
package operator

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"k8s.io/component-base/featuregate"

	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// LeaderElectionID is the Lease KubeRay's operator uses. Sharing it means a rayk8s and a KubeRay
// operator pointed at the same namespace never reconcile the same objects at once.
const LeaderElectionID = "ray-operator-leader"

// Options are the manager's settings, filled from flags.
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
	LogEncoder              string
	LogLevel                string
	GracefulShutdownTimeout time.Duration
	// UseKubernetesProxy makes the operator reach Ray dashboards through the API server's service
	// proxy instead of the head Services' cluster DNS names.
	UseKubernetesProxy bool
}

// flagValues holds raw flag strings that need parsing after flag.Parse.
type flagValues struct {
	watchNamespace string
	featureGates   string
}

// BindFlags registers the manager's flags, named as KubeRay's so existing Helm values and
// Deployment args keep working. Call Complete after parsing.
func BindFlags(fs *flag.FlagSet) func() (Options, error) {
	var o Options
	var raw flagValues
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8082", "Address the /healthz and /readyz endpoints bind to.")
	fs.BoolVar(&o.EnableLeaderElection, "enable-leader-election", true, "Elect a leader so only one manager replica reconciles at a time.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (default: the pod's namespace).")
	fs.IntVar(&o.ReconcileConcurrency, "reconcile-concurrency", 1, "Maximum concurrent reconciles per controller.")
	fs.StringVar(&raw.watchNamespace, "watch-namespace", "", "Comma-separated namespaces to watch (default: all namespaces).")
	fs.StringVar(&raw.featureGates, "feature-gates", "", "Comma-separated Name=true|false pairs, e.g. RayCronJob=true.")
	fs.BoolVar(&o.EnableMetrics, "enable-metrics", false, "Register the kuberay_* metrics for Ray resources.")
	fs.Float64Var(&o.QPS, "qps", 100, "Client-side queries per second to the Kubernetes API.")
	fs.IntVar(&o.Burst, "burst", 200, "Client-side burst of queries to the Kubernetes API.")
	fs.StringVar(&o.LogEncoder, "log-stdout-encoder", "json", "Log encoding on stdout: json or console.")
	fs.StringVar(&o.LogLevel, "log-level", "info", "Log verbosity: info, debug, or a number 0-5 (higher is more verbose).")
	fs.BoolVar(&o.UseKubernetesProxy, "use-kubernetes-proxy", false, "Reach Ray dashboards through the Kubernetes API server's service proxy instead of cluster DNS (for operators running outside the cluster network).")
	fs.DurationVar(&o.GracefulShutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "How long to wait for running reconciles on shutdown.")
	return func() (Options, error) {
		gates, err := features.Parse(raw.featureGates)
		if err != nil {
			return Options{}, err
		}
		o.FeatureGates = gates
		o.WatchNamespaces = splitList(raw.watchNamespace)
		return o, o.Validate()
	}
}

// Validate reports every invalid option, each naming its flag.
func (o Options) Validate() error {
	var errs []error
	if o.ReconcileConcurrency < 1 {
		errs = append(errs, fmt.Errorf("--reconcile-concurrency must be at least 1, got %d", o.ReconcileConcurrency))
	}
	if o.QPS <= 0 {
		errs = append(errs, fmt.Errorf("--qps must be positive, got %v", o.QPS))
	}
	if o.Burst < 0 {
		errs = append(errs, fmt.Errorf("--burst must not be negative, got %d", o.Burst))
	}
	if o.LogEncoder != "json" && o.LogEncoder != "console" {
		errs = append(errs, fmt.Errorf("--log-stdout-encoder must be json or console, got %q", o.LogEncoder))
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if o.GracefulShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--graceful-shutdown-timeout must not be negative, got %s", o.GracefulShutdownTimeout))
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
