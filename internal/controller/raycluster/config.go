package raycluster

import (
	"io"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// ControllerName names the controller in logs, metrics and as the events' reporting controller.
const ControllerName = "raycluster-controller"

// FieldManager is the server-side-apply field manager of every object this controller applies.
const FieldManager = "rayk8s-raycluster"

// Operator environment variables read by ConfigFromEnv (besides the builder switches that
// resources.OptionsFromEnv reads).
const (
	EnvEnableRandomPodDelete   = "ENABLE_RANDOM_POD_DELETE"
	EnvEnableGCSFTRedisCleanup = "ENABLE_GCS_FT_REDIS_CLEANUP"
)

// Defaults of the timing knobs in Config.
const (
	// DefaultExpectationTimeout is how long a pod create is awaited in the informer cache before
	// the controller stops waiting for it (KubeRay uses the same 30 seconds).
	DefaultExpectationTimeout = 30 * time.Second
	// DefaultGCSFTDeletionTimeout is how long the Redis clean-up may take before the finalizer is
	// removed anyway, unless the ray.io/gcs-ft-deletion-timeout annotation says otherwise.
	DefaultGCSFTDeletionTimeout = 300 * time.Second
	// DefaultStatusSettleTime is how long after creating or deleting pods the controller keeps a
	// starting cluster's progress (pods pending, counts) out of its status, so that pods which
	// come up at once cost one status write instead of one per step.
	DefaultStatusSettleTime = 5 * time.Second
)

// Config is everything the controller needs from the operator process. It is built by the
// operator package and passed to New; this package never reads flags.
type Config struct {
	// Settings are the builder options, feature gates and concurrency every controller takes.
	reconcilekit.Settings
	// EnableRandomPodDelete lets the controller scale groups down on its own even when the
	// autoscaler is enabled (ENABLE_RANDOM_POD_DELETE).
	EnableRandomPodDelete bool
	// EnableGCSFTRedisCleanup adds the Redis clean-up finalizer to clusters with Redis GCS fault
	// tolerance (ENABLE_GCS_FT_REDIS_CLEANUP, default true).
	EnableGCSFTRedisCleanup bool
	// ExpectationTimeout bounds the wait for a created pod to show up in the cache.
	ExpectationTimeout time.Duration
	// StatusSettleTime bounds how long a starting cluster's status may lag behind its pods (see
	// DefaultStatusSettleTime). Failures, readiness and suspension are written at once.
	StatusSettleTime time.Duration
}

// DefaultConfig returns the configuration of an operator started without any environment.
func DefaultConfig() Config {
	return Config{
		Settings:                reconcilekit.DefaultSettings(),
		EnableGCSFTRedisCleanup: true,
		ExpectationTimeout:      DefaultExpectationTimeout,
		StatusSettleTime:        DefaultStatusSettleTime,
	}
}

// withDefaults returns c with every zero (or negative) count and duration set to its value in
// DefaultConfig. Switches and Resources are taken as they are.
func (c Config) withDefaults() Config { return reconcilekit.WithDefaults(c, DefaultConfig()) }

// ConfigFromEnv reads KubeRay's operator environment variables through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	return reconcilekit.ReadEnv(&c, &c.Settings, getenv, reconcilekit.Env{Bools: map[string]*bool{
		EnvEnableRandomPodDelete:   &c.EnableRandomPodDelete,
		EnvEnableGCSFTRedisCleanup: &c.EnableGCSFTRedisCleanup,
	}})
}

// Option customises a Reconciler.
type Option func(*Reconciler)

// WithTokenSource replaces the source of the random bytes the generated auth token is made of
// (crypto/rand by default); tests use it to make the token predictable.
func WithTokenSource(rand io.Reader) Option { return func(r *Reconciler) { r.random = rand } }

// WithAPIReader sets the uncached reader of the objects users bring and name in the spec (a
// Secret, a PersistentVolumeClaim, a ServiceAccount): the manager caches only the operator's own
// objects. Without one they are read through the controller's client.
func WithAPIReader(rd client.Reader) Option { return func(r *Reconciler) { r.reader = rd } }

// withReconcileObserver calls f after every Reconcile (tests use it to know a reconcile ran).
func withReconcileObserver(f func(req ctrl.Request)) Option {
	return func(r *Reconciler) { r.observe = f }
}
