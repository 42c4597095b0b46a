package reconcilekit_test

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

func TestSettings(t *testing.T) {
	def := reconcilekit.DefaultSettings()
	if def.MaxConcurrentReconciles != 1 || !equality.Semantic.DeepEqual(def.Resources, resources.DefaultOptions()) {
		t.Fatalf("DefaultSettings = %+v", def)
	}
	if got := (reconcilekit.Settings{MaxConcurrentReconciles: 4}); got.ControllerOptions().MaxConcurrentReconciles != 4 {
		t.Errorf("ControllerOptions().MaxConcurrentReconciles = %d, want 4", got.ControllerOptions().MaxConcurrentReconciles)
	}

	gates := features.New()
	if err := gates.SetFromMap(map[string]bool{string(features.RayClusterStatusConditions): false}); err != nil {
		t.Fatal(err)
	}
	if (reconcilekit.Settings{FeatureGates: gates}).Enabled(features.RayClusterStatusConditions) {
		t.Error("a gate turned off reads as on")
	}
	if (reconcilekit.Settings{}).Enabled(features.RayClusterStatusConditions) != features.Enabled(nil, features.RayClusterStatusConditions) {
		t.Error("nil gates do not read as the defaults")
	}
}

func TestSettingsReadEnv(t *testing.T) {
	s := reconcilekit.DefaultSettings()
	want, err := resources.OptionsFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReadEnv(func(string) string { return "" }); err != nil || !equality.Semantic.DeepEqual(s.Resources, want) {
		t.Fatalf("ReadEnv of an empty environment: %v, %+v", err, s.Resources)
	}
	bad := func(name string) string {
		if name == resources.EnvEnableLoginShell {
			return "maybe"
		}
		return ""
	}
	err = s.ReadEnv(bad)
	if err == nil || !strings.Contains(err.Error(), resources.EnvEnableLoginShell) {
		t.Fatalf("ReadEnv error = %v, want one naming %s", err, resources.EnvEnableLoginShell)
	}
}

// config stands in for a controller's Config.
type config struct {
	reconcilekit.Settings
	Switch  bool
	Name    string
	Timeout time.Duration
	Count   int32
	hidden  int
}

func TestWithDefaults(t *testing.T) {
	def := config{Settings: reconcilekit.DefaultSettings(), Switch: true, Name: "def", Timeout: time.Minute, Count: 3, hidden: 9}
	got := reconcilekit.WithDefaults(config{Timeout: -time.Second}, def)
	want := config{Settings: reconcilekit.Settings{MaxConcurrentReconciles: 1}, Timeout: time.Minute, Count: 3}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WithDefaults of a zero config = %+v, want %+v (counts and durations defaulted, switches, names and builder options kept)", got, want)
	}
	set := config{Settings: reconcilekit.Settings{MaxConcurrentReconciles: 4}, Timeout: time.Second, Count: 7}
	if got := reconcilekit.WithDefaults(set, def); !reflect.DeepEqual(got, set) {
		t.Errorf("WithDefaults changed set fields: %+v, want %+v", got, set)
	}
}

func TestReadEnv(t *testing.T) {
	env := map[string]string{"SWITCH": "true", "TIMEOUT_SECONDS": "5", resources.EnvClusterDomain: "example.org"}
	c := config{Settings: reconcilekit.DefaultSettings()}
	got, err := reconcilekit.ReadEnv(&c, &c.Settings, func(k string) string { return env[k] }, reconcilekit.Env{
		Bools:   map[string]*bool{"SWITCH": &c.Switch},
		Seconds: map[string]*time.Duration{"TIMEOUT_SECONDS": &c.Timeout},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Switch || got.Timeout != 5*time.Second || got.Resources.ClusterDomain != "example.org" {
		t.Fatalf("ReadEnv = %+v, want the switch on, a 5s timeout and the cluster domain read", got)
	}

	env = map[string]string{"SWITCH": "maybe", resources.EnvEnableLoginShell: "perhaps"}
	c = config{Settings: reconcilekit.DefaultSettings()}
	got, err = reconcilekit.ReadEnv(&c, &c.Settings, func(k string) string { return env[k] }, reconcilekit.Env{
		Bools: map[string]*bool{"SWITCH": &c.Switch},
	})
	if err == nil || !strings.Contains(err.Error(), "SWITCH") || !strings.Contains(err.Error(), resources.EnvEnableLoginShell) {
		t.Fatalf("ReadEnv error = %v, want one naming SWITCH and %s", err, resources.EnvEnableLoginShell)
	}
	if !reflect.DeepEqual(got, config{}) {
		t.Fatalf("ReadEnv returned %+v with an error, want the zero config", got)
	}
}
