package reconcilekit

import (
	"errors"
	"reflect"
	"time"

	"k8s.io/component-base/featuregate"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
	"github.com/rayk8s/rayk8s/internal/operator/operatorenv"
)

// Settings are the part of every controller's Config that the operator sets the same way for all
// of them. A Config embeds Settings, so its fields read as the Config's own.
type Settings struct {
	// Resources shape the RayClusters and their children (operator environment switches, cluster
	// domain, operator version).
	Resources resources.Options
	// FeatureGates are the operator's gates; nil means every gate at its default.
	FeatureGates featuregate.FeatureGate
	// MaxConcurrentReconciles is the number of objects reconciled at once (at least 1).
	MaxConcurrentReconciles int
	// BatchScheduler is the gang scheduler integration (--batch-scheduler); nil means none.
	BatchScheduler batchscheduler.Scheduler
}

// DefaultSettings are the settings of an operator started without any environment.
func DefaultSettings() Settings {
	return Settings{Resources: resources.DefaultOptions(), MaxConcurrentReconciles: 1}
}

// ReadEnv sets Resources from KubeRay's operator environment variables, read through getenv.
func (s *Settings) ReadEnv(getenv func(string) string) error {
	ro, err := resources.OptionsFromEnv(getenv)
	if err != nil {
		return err
	}
	s.Resources = ro
	return nil
}

// Env names a controller's own operator environment variables (KubeRay's names) and where each
// one's value goes.
type Env struct {
	Bools   map[string]*bool
	Seconds map[string]*time.Duration
}

// ReadEnv reads the settings s and the variables of env through getenv, s and env pointing into
// *c, and returns *c; on any error it returns the zero C and every error, each naming its variable.
func ReadEnv[C any](c *C, s *Settings, getenv func(string) string, env Env) (C, error) {
	if err := errors.Join(
		s.ReadEnv(getenv),
		operatorenv.Bools(getenv, env.Bools),
		operatorenv.Seconds(getenv, env.Seconds),
	); err != nil {
		var zero C
		return zero, err
	}
	return *c, nil
}

// Enabled reports whether the gate f is on.
func (s Settings) Enabled(f featuregate.Feature) bool { return features.Enabled(s.FeatureGates, f) }

// ControllerOptions are the controller-runtime options the settings imply.
func (s Settings) ControllerOptions() controller.Options {
	return controller.Options{MaxConcurrentReconciles: s.MaxConcurrentReconciles}
}

// WithDefaults returns c, a Config struct, with every integer field (counts, durations) that is
// zero or negative replaced by def's, in embedded structs (Settings) too: zero timing and count
// knobs mean "the default", so a knob added to a Config gets its default without more code.
// Switches, strings and named struct fields (builder options, gates) are taken as they are.
func WithDefaults[C any](c, def C) C {
	v := reflect.ValueOf(&c).Elem()
	if v.Kind() == reflect.Struct {
		fillDefaults(v, reflect.ValueOf(def))
	}
	return c
}

func fillDefaults(v, def reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case !f.CanSet():
		case v.Type().Field(i).Anonymous && f.Kind() == reflect.Struct:
			fillDefaults(f, def.Field(i))
		case f.CanInt() && f.Int() <= 0:
			f.SetInt(def.Field(i).Int())
		}
	}
}
