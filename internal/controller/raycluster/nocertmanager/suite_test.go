// Package nocertmanager_test runs the RayCluster controller with the RayClusterMTLS gate on against
// an API server without cert-manager's API: a cluster asking for mTLS must be reported, not
// crash the manager, and get no pods. It has its own envtest because the controller suite installs
// cert-manager's CRDs.
package nocertmanager_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/operator/features"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

var (
	k8s        client.Client
	managerErr = make(chan error, 1)
)

func TestWithoutCertManager(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "RayCluster mTLS without cert-manager suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	env, err := testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
	k8s = env.Client
	log.SetLogger(logr.Discard())
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	cfg := raycluster.DefaultConfig()
	gates := features.New()
	Expect(gates.SetFromMap(map[string]bool{string(features.RayClusterMTLS): true})).To(Succeed())
	cfg.FeatureGates = gates
	r, err := raycluster.New(mgr.GetClient(), cfg, reconcilekit.Deps{Recorder: mgr.GetEventRecorder(raycluster.ControllerName), Registerer: prometheus.NewRegistry()})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	Expect(r.SetupWithManager(ctx, mgr)).To(Succeed(), "setting up the controller without cert-manager's API")
	go func() { managerErr <- mgr.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Expect(<-managerErr).To(Succeed(), "the manager stopped with an error")
	})
})

var _ = Describe("RayCluster mTLS without cert-manager", func() {
	It("reports the missing API with a condition and an event, creates no pod, and keeps the manager running", func() {
		ctx := context.Background()
		ns, err := testenv.CreateNamespace(ctx, k8s, "nocm-")
		Expect(err).NotTo(HaveOccurred())
		c := builders.RayCluster(ns, "mt").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.TLSOptions = &rayv1.TLSOptions{Enabled: ptr.To(true)}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		key := client.ObjectKeyFromObject(c)

		Eventually(func() (*rayv1.RayCluster, error) {
			var got rayv1.RayCluster
			err := k8s.Get(ctx, key, &got)
			return &got, err
		}).Should(And(
			HaveCondition(rayv1.RayClusterReplicaFailure, metav1.ConditionTrue, raycluster.ReasonCertManagerNotInstalled),
			HaveField("Status.Reason", ContainSubstring("cert-manager.io/v1"))))
		Eventually(func() ([]eventsv1.Event, error) { return testenv.ListEvents(ctx, k8s, ns, "RayCluster", "mt") }).
			Should(HaveEvent(corev1.EventTypeWarning, raycluster.EventMTLSFailedToReconcile, "install cert-manager"))

		var pods corev1.PodList
		Expect(k8s.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
		Expect(pods.Items).To(BeEmpty(), "pods created although their certificates cannot exist")
		Expect(managerErr).NotTo(Receive(), "the manager stopped")
	})
})
