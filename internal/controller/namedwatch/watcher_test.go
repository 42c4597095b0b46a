package namedwatch

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// Against envtest: waiters of a Secret are told once it is created, the watch ends then, a watch
// nobody waits for stops, and an object that existed before the watch started is reported too.
func TestWatcherAgainstAPIServer(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns, err := testenv.CreateNamespace(ctx, env.Client, "namedwatch-")
	if err != nil {
		t.Fatal(err)
	}
	mc, err := metadata.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	w := New(mc, corev1.SchemeGroupVersion.WithResource("secrets"), logr.Discard())
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	a, b, c, d := key("cluster-a"), key("cluster-b"), key("cluster-c"), key("cluster-d")
	x, y, early := key("secret-x"), key("secret-y"), key("secret-early")

	// Awaited before Start: the watch starts with the Watcher.
	w.Await(a, x)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Start(ctx) }()
	w.Await(b, x)
	w.Await(c, y)
	w.Forget(c)
	if got := w.Watching(); !slices.Equal(got, []types.NamespacedName{x}) {
		t.Fatalf("watching %v after forgetting the only waiter of %s, want only %s", got, y, x)
	}

	createSecret := func(k types.NamespacedName) {
		t.Helper()
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name}}
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Another Secret in the namespace wakes nobody; x wakes both its waiters.
	createSecret(y)
	createSecret(x)
	got := receive(t, w.events, 2)
	slices.SortFunc(got, func(p, q types.NamespacedName) int { return strings.Compare(p.String(), q.String()) })
	if !slices.Equal(got, []types.NamespacedName{a, b}) {
		t.Fatalf("enqueued %v when %s appeared, want %v", got, x, []types.NamespacedName{a, b})
	}
	if len(w.Watching()) != 0 {
		t.Fatalf("still watching %v after the awaited Secret appeared", w.Watching())
	}

	// A Secret created between the waiter's read and the watch is found by the watch's list.
	createSecret(early)
	w.Await(d, early)
	if got := receive(t, w.events, 1); !slices.Equal(got, []types.NamespacedName{d}) {
		t.Fatalf("enqueued %v for a Secret that already existed, want %v", got, d)
	}

	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Start returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
}

// receive takes n events, failing after 30 s, and reports no more arrive than expected.
func receive(t *testing.T, ch <-chan event.GenericEvent, n int) []types.NamespacedName {
	t.Helper()
	var out []types.NamespacedName
	for len(out) < n {
		select {
		case e := <-ch:
			out = append(out, types.NamespacedName{Namespace: e.Object.GetNamespace(), Name: e.Object.GetName()})
		case <-time.After(30 * time.Second):
			t.Fatalf("got %v, waiting for %d events", out, n)
		}
	}
	select {
	case e := <-ch:
		t.Fatalf("an unexpected event for %s", e.Object.GetName())
	default:
	}
	return out
}
