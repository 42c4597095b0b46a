package raycluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// writeBudget is what a RayCluster of one head and two workers may cost from create to ready,
// events included: 3 pod creates, 1 Service create, 1 status write and 1 event. KubeRay spends 10.
const writeBudget = 6

// countingRecorder records every event the controller emits as a write of w before passing it
// on: each Eventf is one request of the event sink.
type countingRecorder struct {
	events.EventRecorder
	w *writeCounter
}

func (c *countingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	c.w.record("event "+reason, regarding)
	c.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// TestWritesFromCreateToReady is a regression test of the write budget: it counts, at the
// controller's client and recorder, every write made between creating a 1-head-2-workers cluster
// and the reconcile that reported it ready. It runs its own control plane and controller, with a
// settle window longer than the test, so that the count does not depend on how fast this
// machine is: pods the test's kubelet starts are ready long before the window ends.
func TestWritesFromCreateToReady(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(waitTimeout)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	ctrl.SetLogger(logr.Discard())
	env, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	g.Expect(err).NotTo(HaveOccurred())
	w := &writeCounter{Client: mgr.GetClient()}
	obs := &reconcileObserver{counts: map[types.NamespacedName]int{}}
	cfg := DefaultConfig()
	cfg.StatusSettleTime = time.Hour
	r, err := New(w, cfg,
		reconcilekit.Deps{
			Recorder:   &countingRecorder{EventRecorder: mgr.GetEventRecorder(ControllerName), w: w},
			Registerer: prometheus.NewRegistry(),
		},
		withReconcileObserver(obs.record))
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	g.Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	k := &fakeKubelet{c: env.Client, held: map[string]bool{}}
	go k.run(ctx)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the manager stopped with an error: %v", err)
		}
	})

	ns := "write-budget"
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	mark := w.mark()
	c := builders.RayCluster(ns, "budget").WorkerGroup("small", 2, 0, 5).Obj()
	g.Expect(env.Client.Create(ctx, c)).To(Succeed())
	key := client.ObjectKeyFromObject(c)
	g.Eventually(func() (rayv1.ClusterState, error) {
		var cur rayv1.RayCluster
		err := env.Client.Get(ctx, key, &cur)
		return cur.Status.State, err
	}).Should(Equal(rayv1.ClusterStateReady), "the cluster becomes ready")

	// The reconcile that wrote "ready" emits its events before it returns; a reconcile finishing
	// after this point (that one, or the one a label change triggers) proves it has.
	before := obs.count(key)
	g.Eventually(func() error {
		var cur rayv1.RayCluster
		if err := env.Client.Get(ctx, key, &cur); err != nil {
			return err
		}
		cur.Labels = map[string]string{"test.rayk8s.io/poke": "1"}
		return env.Client.Update(ctx, &cur)
	}).Should(Succeed(), "poking the cluster")
	g.Eventually(func() int { return obs.count(key) }).Should(BeNumerically(">", before), "a reconcile after ready")

	got := w.since(mark, ns)
	t.Logf("writes from create to ready: %v", got)
	kinds := map[string]int{}
	for _, s := range got {
		f := strings.Fields(s)
		kinds[strings.Join(f[1:len(f)-1], " ")+" "+strings.SplitN(f[len(f)-1], "/", 2)[0]]++
	}
	g.Expect(kinds).To(HaveKeyWithValue("create *v1.Pod", 3), "the pod creates are counted: %v", got)
	g.Expect(kinds).To(HaveKeyWithValue("create *v1.Service", 1), "the service create is counted: %v", got)
	g.Expect(kinds).To(HaveKeyWithValue("status patch *v1.RayCluster", 1), "one status write: %v", got)
	g.Expect(len(got)).To(BeNumerically("<=", writeBudget), "writes from create to ready: %v", got)
}
