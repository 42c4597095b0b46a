package features

import (
	"strings"
	"testing"
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

// TestRayCronJobImplemented: the RayCronJob gate turns its controller on, so enabling it is accepted.
func TestRayCronJobImplemented(t *testing.T) {
	g, err := Parse("RayCronJob=true")
	if err != nil {
		t.Fatal(err)
	}
	if !Enabled(g, RayCronJob) || Enabled(New(), RayCronJob) {
		t.Error("RayCronJob must be on when set and off by default")
	}
}
