package schedulers_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/schedulers"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster"
	"github.com/rayk8s/rayk8s/internal/controller/rayjob"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// The batch scheduler integrations run inside the real RayCluster and RayJob controllers against
// envtest with the PodGroup CRDs installed (test CRDs written from the schedulers' API types).
// Each spec runs its own manager, configured with one scheduler and watching only the spec's
// namespace. No scheduler runs: the specs check the objects and pod metadata the controllers
// write, which is what a scheduler would read.

var env *testenv.Env

const waitTimeout = 30 * time.Second

func TestBatchSchedulersWithControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Batch scheduler integration suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(waitTimeout)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	log.SetLogger(logr.Discard())
	dir, err := testenv.BatchSchedulerCRDs()
	Expect(err).NotTo(HaveOccurred())
	env, err = testenv.Start(dir)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
})

// startControllers creates a namespace and runs the RayCluster and RayJob controllers with the
// named batch scheduler on it until the spec ends. It returns the namespace.
func startControllers(scheduler string) string {
	GinkgoHelper()
	return startControllersWithClock(scheduler, nil)
}

// startControllersWithClock is startControllers with the RayJob controller reading time from clk
// (the wall clock when nil).
func startControllersWithClock(scheduler string, clk clock.PassiveClock) string {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(context.Background())
	ns, err := testenv.CreateNamespace(ctx, env.Client, scheduler+"-")
	Expect(err).NotTo(HaveOccurred())
	bs, err := schedulers.ByName(scheduler, schedulers.Settings{MultiHostIndexing: true})
	Expect(err).NotTo(HaveOccurred())
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	rcCfg := raycluster.DefaultConfig()
	rcCfg.BatchScheduler = bs
	rc, err := raycluster.New(mgr.GetClient(), rcCfg, reconcilekit.Deps{})
	Expect(err).NotTo(HaveOccurred())
	Expect(rc.SetupWithManager(ctx, mgr)).To(Succeed())
	rjCfg := rayjob.DefaultConfig()
	rjCfg.BatchScheduler = bs
	rj, err := rayjob.New(mgr.GetClient(), rjCfg, reconcilekit.Deps{Recorder: mgr.GetEventRecorder(rayjob.ControllerName), Clock: clk})
	Expect(err).NotTo(HaveOccurred())
	Expect(rj.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done).Should(Receive(BeNil()), "the manager stopped with an error")
	})
	return ns
}

// podsOf returns the pods of the cluster.
func podsOf(g Gomega, ns, cluster string) []corev1.Pod {
	var pods corev1.PodList
	g.Expect(env.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{rayv1.RayClusterLabelKey: cluster})).To(Succeed())
	return pods.Items
}

// podGroup reads a PodGroup of kind gvk.
func podGroup(g Gomega, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)).To(Succeed())
	return u
}

// listPodGroups lists the PodGroups of kind gvk in ns.
func listPodGroups(g Gomega, gvk schema.GroupVersionKind, ns string) []unstructured.Unstructured {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	g.Expect(env.Client.List(context.Background(), l, client.InNamespace(ns))).To(Succeed())
	return l.Items
}

// controlledBy reports whether u's controller is the object with uid.
func controlledBy(u metav1.Object, uid string) bool {
	ref := metav1.GetControllerOf(u)
	return ref != nil && string(ref.UID) == uid
}

func warningEvents(g Gomega, ns, kind, name string) []eventsv1.Event {
	evs, err := testenv.ListEvents(context.Background(), env.Client, ns, kind, name)
	g.Expect(err).NotTo(HaveOccurred())
	var out []eventsv1.Event
	for _, e := range evs {
		if e.Type == corev1.EventTypeWarning {
			out = append(out, e)
		}
	}
	return out
}
