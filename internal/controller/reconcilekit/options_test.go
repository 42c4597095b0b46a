package reconcilekit_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// reconciler stands in for a controller's Reconciler.
type reconciler struct {
	reconcilekit.Deps
	name string
}

func withName(n string) reconcilekit.Option[*reconciler] { return func(r *reconciler) { r.name = n } }

func TestConfigureAppliesOptionsAndDefaults(t *testing.T) {
	r := &reconciler{}
	reconcilekit.Configure(r, reconcilekit.DefaultSettings(), nil)
	if _, ok := r.Clock.(clock.RealClock); !ok || r.Recorder != nil || r.Registerer != nil {
		t.Fatalf("defaults = %+v, want the wall clock and no recorder or registerer", r.Deps)
	}
	settings := reconcilekit.DefaultSettings()
	settings.Resources.ClusterDomain = "example.org"
	r = &reconciler{}
	reconcilekit.Configure(r, settings, nil)
	if dns, ok := r.Resolver.(*dashboardresolver.DNS); !ok || !equality.Semantic.DeepEqual(dns.Options, settings.Resources) {
		t.Errorf("default resolver = %#v, want cluster DNS with the settings' builder options", r.Resolver)
	}
	if s := r.NameSuffix(); len(s) != 5 || len(validation.IsDNS1123Label(s)) != 0 {
		t.Errorf("default name suffix %q is not 5 characters of a DNS label", s)
	}

	fake := clocktesting.NewFakePassiveClock(time.Unix(100, 0))
	rec := events.NewFakeRecorder(1)
	reg := prometheus.NewRegistry()
	resolver := dashboardresolver.Func(nil)
	r = &reconciler{}
	reconcilekit.Configure(r, reconcilekit.DefaultSettings(), []reconcilekit.Option[*reconciler]{
		reconcilekit.WithClock[*reconciler](fake),
		reconcilekit.WithRecorder[*reconciler](rec),
		reconcilekit.WithMetricsRegisterer[*reconciler](reg),
		reconcilekit.WithResolver[*reconciler](resolver),
		withName("first"), withName("last"),
	})
	if r.Clock != fake || r.Recorder != rec || r.Registerer != reg || r.name != "last" {
		t.Fatalf("configured = %+v, want the given clock, recorder and registerer, and the last name", r)
	}
	if _, ok := r.Resolver.(dashboardresolver.Func); !ok {
		t.Fatalf("resolver = %T, want the one given", r.Resolver)
	}
}
