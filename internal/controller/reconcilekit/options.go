package reconcilekit

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
)

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
