package v1

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

func TestAddToSchemeRegistersKinds(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []runtime.Object{
		&RayCluster{}, &RayClusterList{}, &RayJob{}, &RayJobList{}, &RayService{}, &RayServiceList{},
	} {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil {
			t.Errorf("%T: %v", obj, err)
			continue
		}
		if len(gvks) != 1 || gvks[0].GroupVersion() != GroupVersion {
			t.Errorf("%T registered as %v, want group version %v", obj, gvks, GroupVersion)
		}
	}
}

func TestIsJobTerminal(t *testing.T) {
	cases := map[JobStatus]bool{
		JobStatusNew:       false,
		JobStatusPending:   false,
		JobStatusRunning:   false,
		JobStatusStopped:   true,
		JobStatusSucceeded: true,
		JobStatusFailed:    true,
	}
	for status, want := range cases {
		if got := IsJobTerminal(status); got != want {
			t.Errorf("IsJobTerminal(%q) = %v, want %v", status, got, want)
		}
	}
}

func TestIsJobDeploymentTerminal(t *testing.T) {
	cases := map[JobDeploymentStatus]bool{
		JobDeploymentStatusNew:              false,
		JobDeploymentStatusInitializing:     false,
		JobDeploymentStatusWaiting:          false,
		JobDeploymentStatusRunning:          false,
		JobDeploymentStatusSuspending:       false,
		JobDeploymentStatusSuspended:        false,
		JobDeploymentStatusRetrying:         false,
		JobDeploymentStatusValidationFailed: false,
		JobDeploymentStatusComplete:         true,
		JobDeploymentStatusFailed:           true,
	}
	for status, want := range cases {
		if got := IsJobDeploymentTerminal(status); got != want {
			t.Errorf("IsJobDeploymentTerminal(%q) = %v, want %v", status, got, want)
		}
	}
}
