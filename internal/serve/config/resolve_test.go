package config

import (
	"testing"

	"github.com/rayk8s/rayk8s/internal/dashboard"
)

func TestResolveAutoscaling(t *testing.T) {
	auto := Resolve(dashboard.DeploymentSchema{Name: "d", NumReplicas: &dashboard.NumReplicas{Auto: true}}, nil, nil)
	if auto.Autoscaling == nil || auto.Autoscaling.MinReplicas != 1 || auto.Autoscaling.MaxReplicas != 100 ||
		auto.Autoscaling.TargetOngoingRequests != 2 || auto.NumReplicas != 1 || auto.MaxOngoingRequests != 5 {
		t.Fatalf(`num_replicas "auto" = %+v (autoscaling %+v)`, auto, auto.Autoscaling)
	}
	if got := auto.Schema.AutoscalingConfig["max_replicas"]; got != 100 {
		t.Fatalf("reported max_replicas = %v, want 100", got)
	}

	capacity := 50.0
	d := Resolve(dashboard.DeploymentSchema{Name: "d", AutoscalingConfig: map[string]any{"min_replicas": 2, "max_replicas": 8, "initial_replicas": 6}}, nil, &capacity)
	if d.Autoscaling == nil || d.NumReplicas != 3 || d.AutoscalingError != "" {
		t.Fatalf("initial_replicas 6 at 50%% capacity: %d replicas, error %q", d.NumReplicas, d.AutoscalingError)
	}

	// A config declared in code that the REST API never validated.
	bad := Resolve(dashboard.DeploymentSchema{Name: "d", AutoscalingConfig: map[string]any{"min_replicas": 3, "max_replicas": 1}}, nil, nil)
	if bad.Autoscaling != nil || bad.AutoscalingError == "" || bad.NumReplicas != 3 {
		t.Fatalf("invalid code config: autoscaling %+v, error %q, %d replicas", bad.Autoscaling, bad.AutoscalingError, bad.NumReplicas)
	}

	fixed := Resolve(dashboard.DeploymentSchema{Name: "d", NumReplicas: &dashboard.NumReplicas{Count: 3}}, nil, nil)
	if fixed.Autoscaling != nil || fixed.NumReplicas != 3 {
		t.Fatalf("fixed count: %+v", fixed)
	}
}
