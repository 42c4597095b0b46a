package operator

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/rayk8s/rayk8s/internal/operator/features"
)

func parse(args ...string) (Options, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	complete := BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	return complete()
}

func TestFlagsDefaults(t *testing.T) {
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if o.MetricsAddr != ":8080" || o.ProbeAddr != ":8082" || !o.EnableLeaderElection || o.ReconcileConcurrency != 1 {
		t.Errorf("defaults differ from KubeRay's: %+v", o)
	}
	if o.WatchNamespaces != nil {
		t.Errorf("WatchNamespaces = %v, want all namespaces (nil)", o.WatchNamespaces)
	}
	if !o.FeatureGates.Enabled(features.RayClusterStatusConditions) {
		t.Error("RayClusterStatusConditions should default on")
	}
}

func TestFlagsParsed(t *testing.T) {
	o, err := parse("--watch-namespace= a, b ,", "--feature-gates=RayCronJob=true", "--reconcile-concurrency=4", "--log-level=3")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.WatchNamespaces, "|") != "a|b" {
		t.Errorf("WatchNamespaces = %q", o.WatchNamespaces)
	}
	if !o.FeatureGates.Enabled(features.RayCronJob) || o.ReconcileConcurrency != 4 {
		t.Errorf("flags not applied: %+v", o)
	}
}

func TestFlagsInvalid(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--reconcile-concurrency=0"}, []string{"--reconcile-concurrency"}},
		{[]string{"--qps=0", "--burst=-1"}, []string{"--qps", "--burst"}},
		{[]string{"--log-stdout-encoder=xml"}, []string{"--log-stdout-encoder", "xml"}},
		{[]string{"--log-level=9"}, []string{"--log-level"}},
		{[]string{"--feature-gates=Bogus=true"}, []string{"--feature-gates", "Bogus"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parse(tt.args...)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
