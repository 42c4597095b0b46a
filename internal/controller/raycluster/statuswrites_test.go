package raycluster

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestStatusWritesStaleOnlyForTheReplacedVersion(t *testing.T) {
	a := types.NamespacedName{Namespace: "ns", Name: "a"}
	b := types.NamespacedName{Namespace: "ns", Name: "b"}
	w := newStatusWrites(time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	if w.stale(a, "10", now) {
		t.Fatal("stale with no write recorded")
	}
	w.wrote(a, "10", now)
	if !w.stale(a, "10", now.Add(time.Second)) || !w.stale(a, "10", now.Add(2*time.Second)) {
		t.Error("the version a write replaced is not stale while the cache still shows it")
	}
	if w.stale(b, "10", now) {
		t.Error("another cluster's version is stale")
	}
	// The cache moved on: the record goes, and the old version is not held against later reads.
	if w.stale(a, "11", now.Add(time.Second)) {
		t.Error("the written version is stale")
	}
	if w.stale(a, "10", now.Add(time.Second)) {
		t.Error("still stale after the cache showed a newer version")
	}

	// A write whose watch event never comes stops holding reconciles back after the timeout.
	w.wrote(a, "20", now)
	if w.stale(a, "20", now.Add(time.Minute)) {
		t.Error("stale after the timeout")
	}
	w.wrote(b, "30", now)
	w.forget(b)
	if w.stale(b, "30", now) {
		t.Error("stale after forget")
	}
}
