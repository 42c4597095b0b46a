package reconcilekit_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

func TestDepsWithDefaults(t *testing.T) {
	r := reconcilekit.Deps{}.WithDefaults(reconcilekit.DefaultSettings())
	if _, ok := r.Clock.(clock.RealClock); !ok || r.Recorder != nil || r.Registerer != nil {
		t.Fatalf("defaults = %+v, want the wall clock and no recorder or registerer", r)
	}
	settings := reconcilekit.DefaultSettings()
	settings.Resources.ClusterDomain = "example.org"
	r = reconcilekit.Deps{}.WithDefaults(settings)
	if dns, ok := r.Resolver.(*dashboardresolver.DNS); !ok || !reflect.DeepEqual(dns.Options, settings.Resources) {
		t.Errorf("default resolver = %#v, want cluster DNS with the settings' builder options", r.Resolver)
	}
	if s := r.NameSuffix(); len(s) != 5 || len(validation.IsDNS1123Label(s)) != 0 {
		t.Errorf("default name suffix %q is not 5 characters of a DNS label", s)
	}

	fake := clocktesting.NewFakePassiveClock(time.Unix(100, 0))
	rec := events.NewFakeRecorder(1)
	reg := prometheus.NewRegistry()
	resolver := dashboardresolver.Func(nil)
	given := reconcilekit.Deps{Clock: fake, Recorder: rec, Registerer: reg, Resolver: resolver, NameSuffix: func() string { return "fixed" }}
	r = given.WithDefaults(reconcilekit.DefaultSettings())
	if r.Clock != fake || r.Recorder != rec || r.Registerer != reg || r.NameSuffix() != "fixed" {
		t.Fatalf("configured = %+v, want the given clock, recorder, registerer and name suffix", r)
	}
	if _, ok := r.Resolver.(dashboardresolver.Func); !ok {
		t.Fatalf("resolver = %T, want the one given", r.Resolver)
	}
}
