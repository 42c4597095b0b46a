package reconcilekit_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

func TestFinalizersChangedPredicate(t *testing.T) {
	cm := func(gen int64, labels map[string]string, finalizers ...string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Generation: gen, Labels: labels, Finalizers: finalizers}}
	}
	cases := map[string]struct {
		old, cur *corev1.ConfigMap
		want     bool
	}{
		"finalizer added":        {cm(1, nil), cm(1, nil, "a"), true},
		"finalizer removed":      {cm(1, nil, "a", "b"), cm(1, nil, "b"), true},
		"finalizers unchanged":   {cm(1, nil, "a"), cm(2, map[string]string{"x": "y"}, "a"), false},
		"finalizers reordered":   {cm(1, nil, "a", "b"), cm(1, nil, "b", "a"), true},
		"neither has finalizers": {cm(1, nil), cm(1, nil), false},
	}
	p := reconcilekit.FinalizersChangedPredicate{}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.cur}); got != tc.want {
				t.Errorf("Update = %v, want %v", got, tc.want)
			}
		})
	}
	if p.Update(event.UpdateEvent{ObjectNew: cm(1, nil, "a")}) {
		t.Error("an update without the old object passed")
	}
}
