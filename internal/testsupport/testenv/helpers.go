package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Eventually polls cond every interval until it returns true or timeout passes, then fails the test
// with what it waited for and cond's last description of the state.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		time.Sleep(interval)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

// NewNamespace creates a namespace named prefix plus a generated suffix.
func NewNamespace(t testing.TB, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// Events lists the events.k8s.io events about the object of kind and name in ns.
func Events(t testing.TB, c client.Client, ns, kind, name string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// HasEvent is an Eventually condition: an event about the object with reason whose note contains
// contains exists (the description lists the reasons seen).
func HasEvent(t testing.TB, c client.Client, ns, kind, name, reason, contains string) func() (bool, string) {
	return func() (bool, string) {
		var reasons []string
		for _, e := range Events(t, c, ns, kind, name) {
			if e.Reason == reason && strings.Contains(e.Note, contains) {
				return true, ""
			}
			reasons = append(reasons, e.Reason)
		}
		return false, strings.Join(reasons, ",")
	}
}

// CreateNamespace creates a namespace named prefix plus a generated suffix and returns its name.
func CreateNamespace(ctx context.Context, c client.Client, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	if err := c.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("creating namespace %s*: %w", prefix, err)
	}
	return ns.Name, nil
}

// ListEvents lists the events.k8s.io events about the object of kind and name in ns.
func ListEvents(ctx context.Context, c client.Client, ns, kind, name string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing events in %s: %w", ns, err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out, nil
}
