package features

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/component-base/featuregate"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		check   map[string]bool
		wantErr string
	}{
		{name: "defaults", spec: "", check: map[string]bool{"RayClusterStatusConditions": true, "RayCronJob": false}},
		{name: "override", spec: "RayCronJob=true,RayJobDeletionPolicy=false", check: map[string]bool{"RayCronJob": true, "RayJobDeletionPolicy": false}},
		{name: "unknown gate", spec: "NoSuchGate=true", wantErr: "NoSuchGate"},
		{name: "bad value", spec: "RayCronJob=maybe", wantErr: "RayCronJob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Parse(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one naming %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.spec, err)
			}
			for name, want := range tt.check {
				for f := range defaults() {
					if string(f) == name && g.Enabled(f) != want {
						t.Errorf("%s enabled = %v, want %v", name, g.Enabled(f), want)
					}
				}
			}
		})
	}
}

func TestGatesAreIndependent(t *testing.T) {
	a, b := New(), New()
	if err := a.Set("RayCronJob=true"); err != nil {
		t.Fatal(err)
	}
	if b.Enabled(RayCronJob) {
		t.Fatal("setting a gate on one instance changed another")
	}
}

func TestCheckImplemented(t *testing.T) {
	if err := CheckImplemented(New()); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, f := range NotImplemented() {
		if defaults()[f].Default {
			t.Errorf("%s defaults on although it is not implemented", f)
		}
		g, err := Parse(string(f) + "=true")
		if err != nil {
			t.Fatal(err)
		}
		err = CheckImplemented(g)
		if err == nil || !strings.Contains(err.Error(), string(f)) || !strings.Contains(err.Error(), "not implemented") {
			t.Errorf("enabling %s: error = %v, want one naming the gate as not implemented", f, err)
		}
		g, _ = Parse(string(f) + "=false")
		if err := CheckImplemented(g); err != nil {
			t.Errorf("%s=false refused: %v", f, err)
		}
	}
	for _, f := range []featuregate.Feature{RayClusterNetworkPolicy, RayClusterHistoryServer, RayClusterMTLS, KubernetesWAS} {
		if slices.Contains(NotImplemented(), f) {
			t.Errorf("%s is listed as not implemented", f)
		}
		g, _ := Parse(string(f) + "=true")
		if err := CheckImplemented(g); err != nil {
			t.Errorf("%s=true refused: %v", f, err)
		}
	}
	g, _ := Parse("RayClusterMTLS=true,KubernetesWAS=true,RayClusterHistoryServer=true,RayJobDeletionPolicy=false")
	if err := CheckImplemented(g); err != nil {
		t.Errorf("every KubeRay gate is implemented, got %v", err)
	}
}

// TestRayCronJobImplemented: the RayCronJob gate turns its controller on, so enabling it is accepted.
func TestRayCronJobImplemented(t *testing.T) {
	for _, f := range NotImplemented() {
		if f == RayCronJob {
			t.Fatal("RayCronJob is listed as not implemented")
		}
	}
	g, err := Parse("RayCronJob=true")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckImplemented(g); err != nil {
		t.Fatalf("RayCronJob=true refused: %v", err)
	}
	if !Enabled(g, RayCronJob) || Enabled(New(), RayCronJob) {
		t.Error("RayCronJob must be on when set and off by default")
	}
}
