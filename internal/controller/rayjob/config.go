package rayjob

import (
	"errors"
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
const ControllerName = "rayjob-controller"

// FieldManager is the server-side-apply field manager of the objects this controller applies.
const FieldManager = "rayk8s-rayjob"

// Operator environment variables read by ConfigFromEnv (KubeRay's names).
const (
	EnvDeleteRayJobAfterJobFinishes = "DELETE_RAYJOB_CR_AFTER_JOB_FINISHES"
	EnvTransitionGracePeriodSeconds = "RAYJOB_DEPLOYMENT_STATUS_TRANSITION_GRACE_PERIOD_SECONDS"
	EnvStatusCheckTimeoutSeconds    = "RAYJOB_STATUS_CHECK_TIMEOUT_SECONDS"
)

// Defaults of the timing knobs in Config.
const (
	// DefaultTransitionGracePeriod bounds how long a RayJob may stay Running after its Ray job
	// ended (KubeRay: 300 seconds).
	DefaultTransitionGracePeriod = 300 * time.Second
	// DefaultStatusCheckTimeout bounds how long the dashboard may be unreachable while Running
	// (KubeRay: 300 seconds).
	DefaultStatusCheckTimeout = 300 * time.Second
	// DefaultSubmitterFinishedGracePeriod is how long after the submitter ended the Ray job may
	// still be non-terminal (KubeRay: 30 seconds).
	DefaultSubmitterFinishedGracePeriod = 30 * time.Second
	// DefaultHeadPodRestartThreshold is how many restarts of the head's Ray container (or of one
	// of its init containers) count as crash-looping.
	DefaultHeadPodRestartThreshold = 3
	// DefaultHeadPodPendingTimeout is how long the head pod may stay unschedulable, or unable to
	// pull its image, before the RayJob fails.
	DefaultHeadPodPendingTimeout = 5 * time.Minute
	// DefaultRunningRecheckInterval is how often a Running job is checked even though its log
	// stream is open: a head that dies without closing the connection (node loss, network
	// partition) would otherwise leave the stream, and the RayJob, hanging.
	DefaultRunningRecheckInterval = time.Minute
	// DefaultDeletionRequeueSlack is added to the computed time of the next deletion rule, as
	// KubeRay does, so the reconcile does not wake up a hair too early.
	DefaultDeletionRequeueSlack = 2 * time.Second
)

// Config is everything the controller needs from the operator process.
type Config struct {
	// Resources are the RayCluster builder options (cluster domain, operator version).
	Resources resources.Options
	// FeatureGates are the operator's gates; nil means every gate at its default.
	FeatureGates featuregate.FeatureGate
	// MaxConcurrentReconciles is the number of RayJobs reconciled at once (at least 1).
	MaxConcurrentReconciles int
	// DeleteRayJobAfterJobFinishes makes shutdownAfterJobFinishes delete the RayJob itself
	// instead of only its RayCluster (DELETE_RAYJOB_CR_AFTER_JOB_FINISHES).
	DeleteRayJobAfterJobFinishes bool
	// TransitionGracePeriod, StatusCheckTimeout and SubmitterFinishedGracePeriod are KubeRay's
	// "never stuck in Running" bounds.
	TransitionGracePeriod        time.Duration
	StatusCheckTimeout           time.Duration
	SubmitterFinishedGracePeriod time.Duration
	// HeadPodRestartThreshold and HeadPodPendingTimeout decide when a head pod that cannot start
	// fails the RayJob instead of leaving it Initializing.
	HeadPodRestartThreshold int32
	HeadPodPendingTimeout   time.Duration
	// RunningRecheckInterval bounds the time between two status checks of a Running job.
	RunningRecheckInterval time.Duration
}

// DefaultConfig returns the configuration of an operator started without any environment.
func DefaultConfig() Config {
	return Config{
		Resources:                    resources.DefaultOptions(),
		MaxConcurrentReconciles:      1,
		TransitionGracePeriod:        DefaultTransitionGracePeriod,
		StatusCheckTimeout:           DefaultStatusCheckTimeout,
		SubmitterFinishedGracePeriod: DefaultSubmitterFinishedGracePeriod,
		HeadPodRestartThreshold:      DefaultHeadPodRestartThreshold,
		HeadPodPendingTimeout:        DefaultHeadPodPendingTimeout,
		RunningRecheckInterval:       DefaultRunningRecheckInterval,
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
		{&c.TransitionGracePeriod, &def.TransitionGracePeriod},
		{&c.StatusCheckTimeout, &def.StatusCheckTimeout},
		{&c.SubmitterFinishedGracePeriod, &def.SubmitterFinishedGracePeriod},
		{&c.HeadPodPendingTimeout, &def.HeadPodPendingTimeout},
		{&c.RunningRecheckInterval, &def.RunningRecheckInterval},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if c.HeadPodRestartThreshold <= 0 {
		c.HeadPodRestartThreshold = def.HeadPodRestartThreshold
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
	if err := errors.Join(
		operatorenv.Bools(getenv, map[string]*bool{EnvDeleteRayJobAfterJobFinishes: &c.DeleteRayJobAfterJobFinishes}),
		operatorenv.Seconds(getenv, map[string]*time.Duration{
			EnvTransitionGracePeriodSeconds: &c.TransitionGracePeriod,
			EnvStatusCheckTimeoutSeconds:    &c.StatusCheckTimeout,
		}),
	); err != nil {
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

// WithNameSuffix replaces the source of the random 5-character suffixes of generated job ids and
// RayCluster names (tests make them predictable).
func WithNameSuffix(f func() string) Option { return func(r *Reconciler) { r.suffix = f } }

// WithMetricsRegisterer registers the kuberay_job_* metrics on reg. Without one, no metrics are
// exported.
func WithMetricsRegisterer(reg prometheus.Registerer) Option {
	return func(r *Reconciler) { r.registerer = reg }
}

// randomSuffix returns 5 random characters that keep names DNS labels (as KubeRay's).
func randomSuffix() string { return rand.String(5) }
