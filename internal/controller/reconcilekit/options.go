package reconcilekit

import (
	"errors"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/featuregate"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
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

// Deps are what reconcilers are given through options besides their client and Config. A
// Reconciler embeds Deps; its package's With* options set them.
type Deps struct {
	// Clock is the wall clock unless replaced (tests).
	Clock clock.PassiveClock
	// Recorder is the events.k8s.io recorder; nil drops events.
	Recorder events.EventRecorder
	// Registerer receives the controller's metrics; nil exports none.
	Registerer prometheus.Registerer
	// Resolver reaches the Ray dashboard of a RayCluster, through the head Service's cluster DNS
	// name unless replaced. Only the controllers that talk to dashboards use it.
	Resolver dashboardresolver.Resolver
	// NameSuffix returns the random part of generated names: 5 characters that keep a name a DNS
	// label (as KubeRay's). Only the controllers that generate names use it.
	NameSuffix func() string
}

func (d *Deps) deps() *Deps { return d }

// hasDeps is satisfied by a pointer to any struct that embeds Deps.
type hasDeps interface{ deps() *Deps }

// Option customises a reconciler R (a pointer to a struct embedding Deps).
type Option[R hasDeps] func(R)

// WithClock replaces the wall clock (tests).
func WithClock[R hasDeps](c clock.PassiveClock) Option[R] { return func(r R) { r.deps().Clock = c } }

// WithRecorder sets the events.k8s.io recorder. Without one, events are dropped.
func WithRecorder[R hasDeps](rec events.EventRecorder) Option[R] {
	return func(r R) { r.deps().Recorder = rec }
}

// WithMetricsRegisterer registers the controller's metrics on reg (controller-runtime's
// metrics.Registry in the manager). Without one, no metrics are exported.
func WithMetricsRegisterer[R hasDeps](reg prometheus.Registerer) Option[R] {
	return func(r R) { r.deps().Registerer = reg }
}

// WithResolver sets how the dashboard of a RayCluster is reached (default: cluster DNS).
func WithResolver[R hasDeps](res dashboardresolver.Resolver) Option[R] {
	return func(r R) { r.deps().Resolver = res }
}

// Configure applies opts to r in order, then gives the dependencies no option set their default:
// the wall clock, a resolver through cluster DNS with the settings' builder options, and random
// name suffixes.
func Configure[R hasDeps](r R, s Settings, opts []Option[R]) {
	for _, o := range opts {
		o(r)
	}
	d := r.deps()
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Resolver == nil {
		d.Resolver = &dashboardresolver.DNS{Options: s.Resources}
	}
	if d.NameSuffix == nil {
		d.NameSuffix = func() string { return rand.String(5) }
	}
}
