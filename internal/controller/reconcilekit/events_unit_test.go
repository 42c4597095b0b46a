package reconcilekit_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

func TestEmitWithoutRecorderDropsEvents(t *testing.T) {
	var q reconcilekit.Events
	q.Add(corev1.EventTypeNormal, "Created", "Create", "Created %d pods", 3)
	q.Emit(nil, &corev1.ConfigMap{}) // must not panic
	if len(q) != 1 || q[0].Note != "Created 3 pods" {
		t.Fatalf("queue = %+v, want one event noting 3 pods", q)
	}
}

func TestMergedFoldsTheListedNormalEvents(t *testing.T) {
	var q reconcilekit.Events
	q.Add(corev1.EventTypeNormal, "CreatedSecret", "Create", "Created c-auth")
	q.Add(corev1.EventTypeNormal, "CreatedService", "Create", "Created head service c-head-svc")
	q.Add(corev1.EventTypeWarning, "CreatedHeadPod", "Create", "Odd warning that must stay alone")
	q.Add(corev1.EventTypeNormal, "CreatedHeadPod", "Create", "Created head pod c-head-x")
	q.Add(corev1.EventTypeNormal, "CreatedWorkerPod", "Create", "Created worker pods c-w-2, c-w-3 in group g")

	got := q.Merged("CreatedHeadPod", "CreatedWorkerPod", "CreatedService")
	want := reconcilekit.Events{
		{Type: "Normal", Reason: "CreatedSecret", Action: "Create", Note: "Created c-auth"},
		{Type: "Normal", Reason: "CreatedHeadPod", Action: "Create",
			Note: "Created head pod c-head-x; created worker pods c-w-2, c-w-3 in group g; created head service c-head-svc"},
		{Type: "Warning", Reason: "CreatedHeadPod", Action: "Create", Note: "Odd warning that must stay alone"},
	}
	if len(got) != len(want) {
		t.Fatalf("Merged = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(q) != 5 {
		t.Errorf("Merged changed its receiver: %+v", q)
	}
}

func TestMergedKeepsALoneEventAsItIs(t *testing.T) {
	var q reconcilekit.Events
	q.Add(corev1.EventTypeNormal, "CreatedWorkerPod", "Create", "Created worker pods a, b in group g")
	q.Add(corev1.EventTypeNormal, "RayCluster", "Create", "RayCluster names keep their capitals")
	got := q.Merged("CreatedHeadPod", "CreatedWorkerPod")
	if len(got) != 2 || got[0] != q[0] || got[1] != q[1] {
		t.Fatalf("Merged = %+v, want %+v", got, q)
	}
}
