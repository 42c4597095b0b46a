package raycronjob

import (
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// ControllerName names the controller in logs and as the events' reporting controller.
const ControllerName = "raycronjob-controller"

// Config is everything the controller needs from the operator process.
type Config struct {
	// Settings are the feature gates and concurrency every controller takes.
	reconcilekit.Settings
	// Location is the time zone of schedules whose RayCronJob sets no spec.timeZone; nil means
	// the operator's local time zone, as in KubeRay.
	Location *time.Location
}

// DefaultConfig returns the configuration of an operator started without any environment.
func DefaultConfig() Config {
	return Config{Settings: reconcilekit.DefaultSettings()}
}

// ConfigFromEnv reads the operator environment variables the controller shares with the others.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	return reconcilekit.ReadEnv(&c, &c.Settings, getenv, reconcilekit.Env{})
}

func (c Config) withDefaults() Config {
	c = reconcilekit.WithDefaults(c, DefaultConfig())
	if c.Location == nil {
		c.Location = time.Local
	}
	return c
}

// Option customises a Reconciler.
type Option func(*Reconciler)

// WithAPIReader sets the uncached reader used to confirm RayJobs the status lists as active but
// the cache does not show yet (the manager's APIReader). Without one, the client is used.
func WithAPIReader(rd client.Reader) Option { return func(r *Reconciler) { r.live = rd } }
