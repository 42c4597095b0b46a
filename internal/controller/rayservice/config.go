package rayservice

import (
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
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
	// Settings are the builder options, feature gates and concurrency every controller takes.
	reconcilekit.Settings
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
		Settings:             reconcilekit.DefaultSettings(),
		EnableZeroDowntime:   true,
		ServeRecheckInterval: DefaultServeRecheckInterval,
		ServeMinBackoff:      DefaultServeMinBackoff,
		ServeMaxBackoff:      DefaultServeMaxBackoff,
	}
}

// withDefaults returns c with every zero (or negative) count and duration set to its value in
// DefaultConfig. Switches and Resources are taken as they are.
func (c Config) withDefaults() Config { return reconcilekit.WithDefaults(c, DefaultConfig()) }

// ConfigFromEnv reads KubeRay's operator environment variables through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	return reconcilekit.ReadEnv(&c, &c.Settings, getenv, reconcilekit.Env{Bools: map[string]*bool{EnvEnableZeroDowntime: &c.EnableZeroDowntime}})
}

// Option customises a Reconciler.
type Option func(*Reconciler)

// WithAPIReader sets the uncached reader of the Services the manager's cache leaves out (those
// without app.kubernetes.io/created-by=kuberay-operator). Without one they are read through the
// controller's client.
func WithAPIReader(rd client.Reader) Option { return func(r *Reconciler) { r.reader = rd } }
