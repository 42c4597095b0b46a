package raycluster

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func resourceQty(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

func TestExpectations(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "c"}
	p := func(name, uid string, terminating bool) corev1.Pod {
		pd := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(uid)}}
		if terminating {
			pd.DeletionTimestamp = &metav1.Time{Time: testNow}
		}
		return pd
	}
	t.Run("create waits for the cache, then expires", func(t *testing.T) {
		e := newExpectations(30 * time.Second)
		e.expectCreate(key, "g", "w1", testNow)
		if ok, wake := e.satisfied(key, "g", nil, testNow.Add(time.Second)); ok || !wake.Equal(testNow.Add(30*time.Second)) {
			t.Fatalf("satisfied=%v wake=%v, want false and the expiry", ok, wake)
		}
		if ok, _ := e.satisfied(key, "g", nil, testNow.Add(30*time.Second)); !ok {
			t.Fatal("an expired create still blocks the group")
		}
	})
	t.Run("create satisfied by the cache", func(t *testing.T) {
		e := newExpectations(30 * time.Second)
		e.expectCreate(key, "g", "w1", testNow)
		if ok, _ := e.satisfied(key, "g", []corev1.Pod{p("w1", "u1", false)}, testNow); !ok {
			t.Fatal("the created pod is cached but the group is blocked")
		}
		if ok, _ := e.satisfied(key, "other", nil, testNow); !ok {
			t.Fatal("another group is blocked")
		}
	})
	t.Run("delete satisfied when gone or terminating", func(t *testing.T) {
		e := newExpectations(30 * time.Second)
		pd := p("w1", "u1", false)
		e.expectDelete(key, "g", &pd)
		if ok, _ := e.satisfied(key, "g", []corev1.Pod{pd}, testNow); ok {
			t.Fatal("the deleted pod is still live in the cache but the group is not blocked")
		}
		if ok, _ := e.satisfied(key, "g", []corev1.Pod{p("w1", "u1", true)}, testNow); !ok {
			t.Fatal("a terminating pod blocks the group")
		}
		// A recreated pod with the same name but another UID does not count as the old one.
		e.expectDelete(key, "g", &pd)
		if ok, _ := e.satisfied(key, "g", []corev1.Pod{p("w1", "u2", false)}, testNow); !ok {
			t.Fatal("a new pod with the old name blocks the group")
		}
	})
	t.Run("deleting a created pod ends the wait for its create", func(t *testing.T) {
		// Recreate and suspend delete every cached pod before any group is checked: a pod
		// created in the previous reconcile leaves the cache without satisfied ever seeing it.
		e := newExpectations(30 * time.Second)
		e.expectCreate(key, "g", "w1", testNow)
		pd := p("w1", "u1", false)
		e.expectDelete(key, "g", &pd)
		if ok, wake := e.satisfied(key, "g", nil, testNow.Add(time.Second)); !ok || !wake.IsZero() {
			t.Fatalf("satisfied=%v wake=%v after the created pod was deleted and left the cache, want true (no wait for the create timeout)", ok, wake)
		}
	})
	t.Run("forget", func(t *testing.T) {
		e := newExpectations(30 * time.Second)
		e.expectCreate(key, "g", "w1", testNow)
		e.forget(key)
		if ok, _ := e.satisfied(key, "g", nil, testNow); !ok {
			t.Fatal("forgotten expectations still block")
		}
	})
}
