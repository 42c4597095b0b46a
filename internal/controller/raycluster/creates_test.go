package raycluster

import (
	"context"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// fakeCreateGate is a fault injected into a fake client's creates: while held, every create waits
// until `want` creates are in flight at once (so creates issued one after another never get
// through), and the first worker pod create fails as a quota would refuse it.
type fakeCreateGate struct {
	mu         sync.Mutex
	want       int
	arrived    int
	release    chan struct{}
	failWorker bool
}

func (g *fakeCreateGate) create(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
	g.mu.Lock()
	fail := false
	if p, ok := obj.(*corev1.Pod); ok && g.failWorker && p.Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.WorkerNode) {
		fail, g.failWorker = true, false
	}
	var release chan struct{}
	if g.want > 0 {
		g.arrived++
		release = g.release
		if g.arrived == g.want {
			close(g.release)
		}
	}
	g.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, obj.GetName(), errFakeQuota)
	}
	return c.Create(ctx, obj, opts...)
}

var errFakeQuota = fakeQuotaError{}

type fakeQuotaError struct{}

func (fakeQuotaError) Error() string { return "exceeded quota: fake-quota" }

// TestCreatesOfOneReconcileAreIssuedTogether: a new cluster's head Service, head pod and worker
// pods are in flight at the same time; one failed worker does not hide the others, its error and
// Warning name it, the Normal events name every object created, and the pods created are expected,
// so a reconcile that runs before the cache shows them creates nothing twice.
func TestCreatesOfOneReconcileAreIssuedTogether(t *testing.T) {
	c := builders.RayCluster("ns", "c").WorkerGroup("small", 2, 0, 10).Obj()
	c.UID = "cluster-uid"
	gate := &fakeCreateGate{want: 4, release: make(chan struct{}), failWorker: true}
	k := fake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(c).
		WithStatusSubresource(&rayv1.RayCluster{}).
		WithInterceptorFuncs(interceptor.Funcs{Create: gate.create}).Build()
	r, err := New(k, DefaultConfig(), reconcilekit.Deps{Clock: clocktesting.NewFakePassiveClock(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	key := client.ObjectKeyFromObject(c)
	pass := func(services []corev1.Service, cached ...corev1.Pod) (*scope, error) {
		t.Helper()
		s := testScope(c, cached...)
		s.key, s.services = key, services
		return s, reconcilekit.RunPhases(ctx, s, r.phases(), r.finalPhases())
	}
	pods := func() []corev1.Pod {
		t.Helper()
		var l corev1.PodList
		if err := k.List(context.Background(), &l); err != nil {
			t.Fatal(err)
		}
		return l.Items
	}

	// 1. The four creates meet at the gate (one after another, the first would wait there until
	// the context ends); the first worker's is refused.
	s, err := pass(nil)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("first pass: err = %v, context %v; want the worker's quota error, with every create in flight at once", err, ctx.Err())
	}
	for _, part := range []string{"worker group small", "worker pod c-small-worker-*", "fake-quota"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %q", err, part)
		}
	}
	got := pods()
	if len(got) != 2 {
		t.Fatalf("%d pods created, want the head and one worker", len(got))
	}
	var svc corev1.Service
	if err := k.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "c-head-svc"}, &svc); err != nil {
		t.Fatalf("head service: %v", err)
	}
	if s.replicaFailure == nil || s.replicaFailure.reason != rayv1.FailedCreateWorkerPod {
		t.Errorf("replicaFailure = %+v, want %s", s.replicaFailure, rayv1.FailedCreateWorkerPod)
	}
	if !s.podsChanged {
		t.Error("podsChanged is false after pods were created")
	}
	merged := s.events.Merged(EventCreatedHeadPod, EventCreatedWorkerPod, EventCreatedService)
	var normal, warning []reconcilekit.Event
	for _, e := range merged {
		if e.Type == corev1.EventTypeNormal {
			normal = append(normal, e)
		} else {
			warning = append(warning, e)
		}
	}
	if len(normal) != 1 || normal[0].Reason != EventCreatedHeadPod {
		t.Fatalf("normal events %+v, want one %s naming every object created", normal, EventCreatedHeadPod)
	}
	for _, p := range got {
		if !strings.Contains(normal[0].Note, p.Name) {
			t.Errorf("event %q does not name pod %s", normal[0].Note, p.Name)
		}
	}
	if !strings.Contains(normal[0].Note, "c-head-svc") {
		t.Errorf("event %q does not name the head service", normal[0].Note)
	}
	if len(warning) != 1 || warning[0].Reason != EventFailedToCreateWorkerPod || !strings.Contains(warning[0].Note, "fake-quota") {
		t.Errorf("warning events %+v, want one %s with the cause", warning, EventFailedToCreateWorkerPod)
	}

	// The head Service is expected until the cache shows it.
	if ok, _ := r.serviceExp.createsSatisfied(key, servicesGroup, nil, testNow); ok {
		t.Error("the head service is not expected after its create: a reconcile before its watch event would create it again")
	}
	if ok, _ := r.serviceExp.createsSatisfied(key, servicesGroup, []string{"c-head-svc"}, testNow); !ok {
		t.Error("the head service is still expected once the cache shows it")
	}

	// 2. The cache shows nothing yet: the created pods are expected, so no group creates again.
	gate.mu.Lock()
	gate.want = 0
	gate.mu.Unlock()
	svcs := []corev1.Service{svc}
	if _, err := pass(svcs); err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if n := len(pods()); n != 2 {
		t.Fatalf("%d pods after a pass that ran before the cache showed the creates, want 2 (nothing created twice)", n)
	}

	// 3. The cache shows them: the missing worker is created, and only it.
	s, err = pass(svcs, pods()...)
	if err != nil {
		t.Fatalf("third pass: %v", err)
	}
	if n := len(pods()); n != 3 {
		t.Fatalf("%d pods once the cache caught up, want 3", n)
	}
	if s.replicaFailure != nil {
		t.Errorf("replicaFailure %+v after a clean pass", s.replicaFailure)
	}
}

// TestIssueCreatesWithoutPlan issues nothing and reports nothing.
func TestIssueCreatesWithoutPlan(t *testing.T) {
	r, _ := unitReconciler(t)
	s := testScope(unitCluster())
	if err := r.issueCreates(context.Background(), s); err != nil || len(s.events) != 0 {
		t.Fatalf("issueCreates of an empty plan: err %v, events %+v", err, s.events)
	}
}
