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
