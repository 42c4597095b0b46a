package rayjob

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gomegatypes "github.com/onsi/gomega/types"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// The integration tests run the controller in a real manager against envtest (kube-apiserver and
// etcd: no kubelet, no garbage collector, no Job controller, no RayCluster controller) with a real
// Ray head of our runtime started in-process on loopback. The test plays the RayCluster controller
// by marking clusters ready, and the kubelet by writing head pods.

var (
	k8s   client.Client
	heads *headPool
)

func TestRayJobController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "RayJob controller suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(timeout)
	SetDefaultEventuallyPollingInterval(interval)
	env, err := testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
	k8s = env.Client
	log.SetLogger(logr.Discard())

	tmp, err := os.MkdirTemp("", "rayjob-heads-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, tmp)
	heads = &headPool{dir: tmp, byCluster: map[string]*node.Node{}}
	heads.shared, err = heads.start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(heads.stopAll)

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	cfg := DefaultConfig()
	cfg.MaxConcurrentReconciles = 4
	// The in-process head keeps hijacked log streams open when it stops, like a node that vanished
	// without closing connections; a short recheck makes the restart spec quick.
	cfg.RunningRecheckInterval = 2 * time.Second
	r, err := New(mgr.GetClient(), cfg, reconcilekit.Deps{
		Recorder:   mgr.GetEventRecorder(ControllerName),
		Registerer: prometheus.NewRegistry(),
		Resolver:   dashboardresolver.Func(heads.client),
	})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	go markClustersReady(ctx)
	// Cleanups run last-in first-out: the manager stops before the heads and envtest do.
	DeferCleanup(func() {
		cancel()
		Expect(<-done).To(Succeed(), "the manager stopped with an error")
	})
})

// headPool runs in-process Ray heads: one shared by every cluster, plus dedicated ones for tests
// that restart a head.
type headPool struct {
	dir       string
	shared    *node.Node
	mu        sync.Mutex
	byCluster map[string]*node.Node // "<ns>/<cluster>" -> dedicated head
}

func (p *headPool) start() (*node.Node, error) {
	dir, err := os.MkdirTemp(p.dir, "head-")
	if err != nil {
		return nil, err
	}
	return node.Start(context.Background(), node.Config{
		Head:               true,
		NodeIP:             "127.0.0.1",
		IncludeDashboard:   true,
		DashboardHost:      "127.0.0.1",
		Resources:          map[string]float64{"CPU": 64},
		TempDir:            dir,
		HeartbeatPeriod:    100 * time.Millisecond,
		JobStopGracePeriod: 500 * time.Millisecond,
		Logger:             logr.Discard(),
	})
}

// dedicate gives the cluster its own head (replacing any previous one, which is stopped: a head
// restart that loses the job table).
func (p *headPool) dedicate(ns, cluster string) *node.Node {
	GinkgoHelper()
	n, err := p.start()
	Expect(err).NotTo(HaveOccurred())
	p.mu.Lock()
	old := p.byCluster[ns+"/"+cluster]
	p.byCluster[ns+"/"+cluster] = n
	p.mu.Unlock()
	if old != nil {
		_ = old.Stop()
	}
	DeferCleanup(func() { _ = n.Stop() })
	return n
}

func (p *headPool) client(_ context.Context, rc *rayv1.RayCluster) (*dashboard.Client, error) {
	p.mu.Lock()
	n := p.byCluster[rc.Namespace+"/"+rc.Name]
	p.mu.Unlock()
	if n == nil {
		n = p.shared
	}
	return dashboard.NewClient(n.DashboardURL())
}

func (p *headPool) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.byCluster {
		_ = n.Stop()
	}
	_ = p.shared.Stop()
}

// sharedClient talks to the shared head as a user would.
func sharedClient() *dashboard.Client {
	GinkgoHelper()
	c, err := dashboard.NewClient(heads.shared.DashboardURL())
	Expect(err).NotTo(HaveOccurred())
	return c
}

// manualClusterAnnotation on a RayJob keeps its clusters from being marked ready automatically.
const manualClusterAnnotation = "test.rayk8s.io/manual-cluster"

// markClustersReady plays the RayCluster controller: every RayCluster not flagged manual becomes
// ready with a head service IP, as the real controller reports once all pods run.
func markClustersReady(ctx context.Context) {
	for ctx.Err() == nil {
		var list rayv1.RayClusterList
		if err := k8s.List(ctx, &list); err == nil {
			for i := range list.Items {
				rc := &list.Items[i]
				if rc.Status.State == rayv1.ClusterStateReady || rc.DeletionTimestamp != nil || rc.Annotations[manualClusterAnnotation] == "true" {
					continue
				}
				_ = setClusterReady(ctx, rc)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func setClusterReady(ctx context.Context, rc *rayv1.RayCluster) error {
	rc.Status.State = rayv1.ClusterStateReady
	rc.Status.Head = rayv1.HeadInfo{PodIP: "127.0.0.1", ServiceIP: "127.0.0.1", PodName: rc.Name + "-head-x", ServiceName: rc.Name + "-head-svc"}
	return k8s.Status().Update(ctx, rc)
}

// Test helpers.

const (
	timeout  = 60 * time.Second
	interval = 50 * time.Millisecond
)

func newNamespace() string {
	GinkgoHelper()
	ns, err := testenv.CreateNamespace(context.Background(), k8s, "rj-")
	Expect(err).NotTo(HaveOccurred())
	return ns
}

// newRayJob is a RayJob with a small cluster spec (nothing runs it: the suite marks it ready).
func newRayJob(ns, name string, m rayv1.JobSubmissionMode, entrypoint string) *rayv1.RayJob {
	return builders.RayJob(ns, name).Mode(m).Entrypoint(entrypoint).Workers(1).Obj()
}

func create(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), obj)).To(Succeed(), "creating %T %s", obj, obj.GetName())
}

// jobOf returns a function fetching the RayJob, for Eventually.
func jobOf(ns, name string) func() (*rayv1.RayJob, error) {
	return func() (*rayv1.RayJob, error) {
		rj := &rayv1.RayJob{}
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rj)
		return rj, err
	}
}

func getJob(ns, name string) *rayv1.RayJob {
	GinkgoHelper()
	rj, err := jobOf(ns, name)()
	Expect(err).NotTo(HaveOccurred())
	return rj
}

// waitJob waits until the RayJob matches and returns the version that did; a failure describes
// the last version seen.
func waitJob(ns, name, what string, matcher gomegatypes.GomegaMatcher) *rayv1.RayJob {
	GinkgoHelper()
	var rj *rayv1.RayJob
	Eventually(func() (*rayv1.RayJob, error) {
		var err error
		rj, err = jobOf(ns, name)()
		return rj, err
	}).Should(matcher, func() string {
		if rj == nil {
			return fmt.Sprintf("RayJob %s/%s %s", ns, name, what)
		}
		return fmt.Sprintf("RayJob %s/%s %s; last seen: %s", ns, name, what, describe(rj))
	})
	return rj
}

// waitState waits until the RayJob reaches the deployment status and returns it.
func waitState(ns, name string, want rayv1.JobDeploymentStatus) *rayv1.RayJob {
	GinkgoHelper()
	return waitJob(ns, name, stateName(want), HaveDeploymentStatus(want))
}

// HaveDeploymentStatus matches a RayJob in the deployment status.
func HaveDeploymentStatus(want rayv1.JobDeploymentStatus) gomegatypes.GomegaMatcher {
	return HaveField("Status.JobDeploymentStatus", want)
}

func describe(rj *rayv1.RayJob) string {
	s := rj.Status
	return fmt.Sprintf("deployment=%s job=%s reason=%s cluster=%s id=%s failed=%d succeeded=%d message=%q",
		stateName(s.JobDeploymentStatus), s.JobStatus, s.Reason, s.RayClusterName, s.JobID, deref(s.Failed), deref(s.Succeeded), s.Message)
}

func getCluster(ns, name string) (*rayv1.RayCluster, bool) {
	GinkgoHelper()
	rc := &rayv1.RayCluster{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rc)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	Expect(err).NotTo(HaveOccurred())
	return rc, true
}

// waitClusterGone waits until the RayCluster is gone or being deleted.
func waitClusterGone(ns, name string) {
	GinkgoHelper()
	Eventually(func() *rayv1.RayCluster {
		rc, _ := getCluster(ns, name)
		return rc
	}).Should(Or(BeNil(), HaveField("DeletionTimestamp", Not(BeNil()))), "RayCluster %s deleted", name)
}

func updateJob(ns, name string, mut func(*rayv1.RayJob)) {
	GinkgoHelper()
	Eventually(func() error {
		rj := getJob(ns, name)
		mut(rj)
		return k8s.Update(context.Background(), rj)
	}).Should(Succeed(), "RayJob update")
}

// eventsOf returns a function listing the events.k8s.io Events about the RayJob, for Eventually.
func eventsOf(ns, name string) func() ([]eventsv1.Event, error) {
	return func() ([]eventsv1.Event, error) {
		return testenv.ListEvents(context.Background(), k8s, ns, "RayJob", name)
	}
}
