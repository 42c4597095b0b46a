package rayjob

import (
	"time"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
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
	// Settings are the builder options, feature gates and concurrency every controller takes.
	reconcilekit.Settings
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
		Settings:                     reconcilekit.DefaultSettings(),
		TransitionGracePeriod:        DefaultTransitionGracePeriod,
		StatusCheckTimeout:           DefaultStatusCheckTimeout,
		SubmitterFinishedGracePeriod: DefaultSubmitterFinishedGracePeriod,
		HeadPodRestartThreshold:      DefaultHeadPodRestartThreshold,
		HeadPodPendingTimeout:        DefaultHeadPodPendingTimeout,
		RunningRecheckInterval:       DefaultRunningRecheckInterval,
	}
}

// withDefaults returns c with every zero (or negative) count and duration set to its value in
// DefaultConfig. Switches and Resources are taken as they are.
func (c Config) withDefaults() Config { return reconcilekit.WithDefaults(c, DefaultConfig()) }

// ConfigFromEnv reads KubeRay's operator environment variables through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	return reconcilekit.ReadEnv(&c, &c.Settings, getenv, reconcilekit.Env{
		Bools: map[string]*bool{EnvDeleteRayJobAfterJobFinishes: &c.DeleteRayJobAfterJobFinishes},
		Seconds: map[string]*time.Duration{
			EnvTransitionGracePeriodSeconds: &c.TransitionGracePeriod,
			EnvStatusCheckTimeoutSeconds:    &c.StatusCheckTimeout,
		},
	})
}

// Option customises a Reconciler.
type Option func(*Reconciler)
