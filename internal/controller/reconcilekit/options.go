package reconcilekit

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
)

// Deps are what every reconciler is given besides its client and Config: New takes them by
// value and the Reconciler embeds them. Options of a controller's own package set the rest.
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

// WithDefaults returns d with a default for every dependency left unset: the wall clock, a
// resolver through cluster DNS with the settings' builder options, and random name suffixes.
// A nil Recorder or Registerer stays nil: events are dropped and no metrics are exported.
func (d Deps) WithDefaults(s Settings) Deps {
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Resolver == nil {
		d.Resolver = &dashboardresolver.DNS{Options: s.Resources}
	}
	if d.NameSuffix == nil {
		d.NameSuffix = func() string { return rand.String(5) }
	}
	return d
}
