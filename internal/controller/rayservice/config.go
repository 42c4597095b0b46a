package rayservice

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/featuregate"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
	"github.com/rayk8s/rayk8s/internal/operator/features"
	"github.com/rayk8s/rayk8s/internal/operator/operatorenv"
)

// ControllerName names the controller in logs and as the events' reporting controller.
const ControllerName = "rayservice-controller"

// FieldManager is the server-side-apply field manager of the Services this controller applies.
const FieldManager = "rayk8s-rayservice"

// EnvEnableZeroDowntime is KubeRay's operator switch: "false" makes RayServices without an explicit
// upgradeStrategy.type behave like type None.
const EnvEnableZeroDowntime = "ENABLE_ZERO_DOWNTIME"

// Defaults of the timing knobs in Config.
const (
	// DefaultRayClusterDeletionDelay is how long a superseded cluster is kept when the RayService
	// does not set rayClusterDeletionDelaySeconds (KubeRay: 60 seconds).
	DefaultRayClusterDeletionDelay = 60 * time.Second
	// DefaultServeRecheckInterval bounds the time between two looks at the Serve applications and
	// proxies of a RayService that is steady. Neither has a watch: Serve status lives in the Ray
	// dashboard and proxy health in the pods, so they are read again at this interval.
	DefaultServeRecheckInterval = 10 * time.Second
	// DefaultServeMinBackoff and DefaultServeMaxBackoff bound the re-check of a cluster whose
	// applications are not RUNNING yet: it starts at the minimum and doubles with the time already
	// spent waiting, up to the maximum.
	DefaultServeMinBackoff = 500 * time.Millisecond
	DefaultServeMaxBackoff = 5 * time.Second
	// DefaultProbeTimeout bounds one GET /-/healthz of a pod's Serve proxy (KubeRay: 2 seconds).
	DefaultProbeTimeout = 2 * time.Second
)

// Config is everything the controller needs from the operator process.
type Config struct {
	// Resources are the RayCluster builder options (cluster domain, head Service shape, operator
	// version stamped on the RayClusters).
	Resources resources.Options
	// FeatureGates are the operator's gates; nil means every gate at its default.
	FeatureGates featuregate.FeatureGate
	// MaxConcurrentReconciles is the number of RayServices reconciled at once (at least 1).
	MaxConcurrentReconciles int
	// EnableZeroDowntime is ENABLE_ZERO_DOWNTIME (default true).
	EnableZeroDowntime bool
	// ServeRecheckInterval, ServeMinBackoff and ServeMaxBackoff: see the Default* constants.
	ServeRecheckInterval time.Duration
	ServeMinBackoff      time.Duration
	ServeMaxBackoff      time.Duration
}

// DefaultConfig returns the configuration of an operator started without any environment.
func DefaultConfig() Config {
	return Config{
		Resources:               resources.DefaultOptions(),
		MaxConcurrentReconciles: 1,
		EnableZeroDowntime:      true,
		ServeRecheckInterval:    DefaultServeRecheckInterval,
		ServeMinBackoff:         DefaultServeMinBackoff,
		ServeMaxBackoff:         DefaultServeMaxBackoff,
	}
}

// withDefaults returns c with every zero (or negative) field that has a default in DefaultConfig
// set to that default. Boolean switches and Resources are taken as they are.
func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.MaxConcurrentReconciles < 1 {
		c.MaxConcurrentReconciles = def.MaxConcurrentReconciles
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&c.ServeRecheckInterval, &def.ServeRecheckInterval},
		{&c.ServeMinBackoff, &def.ServeMinBackoff},
		{&c.ServeMaxBackoff, &def.ServeMaxBackoff},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return c
}

// ConfigFromEnv reads KubeRay's operator environment variables through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	ro, err := resources.OptionsFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	c.Resources = ro
	if err := operatorenv.Bools(getenv, map[string]*bool{EnvEnableZeroDowntime: &c.EnableZeroDowntime}); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c Config) enabled(f featuregate.Feature) bool { return features.Enabled(c.FeatureGates, f) }

// Option customises a Reconciler.
type Option func(*Reconciler)

// WithClock replaces the wall clock (tests).
func WithClock(c clock.PassiveClock) Option { return func(r *Reconciler) { r.clock = c } }

// WithRecorder sets the events.k8s.io recorder. Without one, events are dropped.
func WithRecorder(rec events.EventRecorder) Option { return func(r *Reconciler) { r.recorder = rec } }

// WithResolver sets how the dashboard of a RayCluster is reached (default: cluster DNS).
func WithResolver(res dashboardresolver.Resolver) Option {
	return func(r *Reconciler) { r.resolver = res }
}

// WithNameSuffix replaces the source of the random 5-character suffixes of RayCluster names.
func WithNameSuffix(f func() string) Option { return func(r *Reconciler) { r.suffix = f } }

// WithMetricsRegisterer registers the kuberay_service_* metrics on reg. Without one, no metrics
// are exported.
func WithMetricsRegisterer(reg prometheus.Registerer) Option {
	return func(r *Reconciler) { r.registerer = reg }
}

// randomSuffix returns 5 random characters that keep names DNS labels (as KubeRay's).
func randomSuffix() string { return rand.String(5) }
