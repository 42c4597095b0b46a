package raycronjob

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	eventsv1 "k8s.io/api/events/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// The integration tests run the controller in a real manager against envtest (kube-apiserver and
// etcd; no RayJob controller, no garbage collector). Schedule times are reached with a fake clock
// the test moves; the test plays the RayJob controller by writing RayJob statuses.

var (
	k8s client.Client
	clk *clocktesting.FakeClock
)

func TestRayCronJobController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "RayCronJob controller suite")
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
	clk = clocktesting.NewFakeClock(time.Now())
	cfg := DefaultConfig()
	cfg.Location = operatorZone
	r, err := New(mgr.GetClient(), cfg,
		reconcilekit.Deps{Clock: clk, Recorder: mgr.GetEventRecorder(ControllerName), Registerer: prometheus.NewRegistry()},
		WithAPIReader(mgr.GetAPIReader()))
	Expect(err).NotTo(HaveOccurred())
	Expect(r.SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Expect(<-done).To(Succeed(), "the manager stopped with an error")
	})
})

// operatorZone stands for the operator's local time zone, used by schedules without timeZone.
var operatorZone = time.FixedZone("UTC-3", -3*3600)

func newNamespace() string {
	GinkgoHelper()
	ns, err := testenv.CreateNamespace(context.Background(), k8s, "rcj-")
	Expect(err).NotTo(HaveOccurred())
	return ns
}

// create creates the RayCronJob with the fake clock at the real time (the API server stamps the
// creation time from the real clock), deletes it when the spec ends so that later clock moves do
// not reach it, and returns it as stored.
func create(cj *rayv1.RayCronJob) *rayv1.RayCronJob {
	GinkgoHelper()
	clk.SetTime(time.Now())
	Expect(k8s.Create(context.Background(), cj)).To(Succeed(), "creating RayCronJob %s", cj.Name)
	DeferCleanup(func() { _ = k8s.Delete(context.Background(), cj) })
	return getCronJob(cj.Namespace, cj.Name)
}

func getCronJob(ns, name string) *rayv1.RayCronJob {
	GinkgoHelper()
	cj := &rayv1.RayCronJob{}
	Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cj)).To(Succeed())
	return cj
}

// cronJobOf returns a function fetching the RayCronJob, for Eventually.
func cronJobOf(ns, name string) func() (*rayv1.RayCronJob, error) {
	return func() (*rayv1.RayCronJob, error) {
		cj := &rayv1.RayCronJob{}
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cj)
		return cj, err
	}
}

// advance sets the fake clock to t and waits for a reconcile that saw it: the spec is touched (a
// key of the RayJob template's metadata), which bumps the generation, and the status must report
// that generation.
func advance(ns, name string, t time.Time) {
	GinkgoHelper()
	clk.SetTime(t)
	var gen int64
	Eventually(func() error {
		cj := getCronJob(ns, name)
		if cj.Spec.JobTemplate.Metadata == nil {
			cj.Spec.JobTemplate.Metadata = map[string]string{}
		}
		cj.Spec.JobTemplate.Metadata["rayk8s-test-clock"] = strconv.FormatInt(t.Unix(), 10)
		if err := k8s.Update(context.Background(), cj); err != nil {
			return err
		}
		gen = cj.Generation
		return nil
	}).Should(Succeed(), "touching RayCronJob %s", name)
	Eventually(cronJobOf(ns, name)).Should(HaveField("Status.ObservedGeneration", BeNumerically(">=", gen)),
		"a reconcile of RayCronJob %s at %s", name, t.UTC().Format(time.RFC3339))
}

// jobNames lists the names of the RayJobs in ns, sorted.
func jobNames(ns string) func() ([]string, error) {
	return func() ([]string, error) {
		var list rayv1.RayJobList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		var names []string
		for _, rj := range list.Items {
			if rj.DeletionTimestamp == nil {
				names = append(names, rj.Name)
			}
		}
		return names, nil
	}
}

func getJob(ns, name string) *rayv1.RayJob {
	GinkgoHelper()
	rj := &rayv1.RayJob{}
	Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rj)).To(Succeed())
	return rj
}

// finishJob plays the RayJob controller: the RayJob reaches the terminal deployment status.
func finishJob(ns, name string, s rayv1.JobDeploymentStatus) {
	GinkgoHelper()
	Eventually(func() error {
		rj := getJob(ns, name)
		rj.Status.JobDeploymentStatus = s
		return k8s.Status().Update(context.Background(), rj)
	}).Should(Succeed(), "finishing RayJob %s", name)
}

// name is the RayJob name of the schedule time t.
func name(cron string, t time.Time) string { return fmt.Sprintf("%s-%d", cron, t.Unix()/60) }

// eventsOf returns a function listing the events about the RayCronJob, for Eventually.
func eventsOf(ns, name string) func() ([]eventsv1.Event, error) {
	return func() ([]eventsv1.Event, error) {
		return testenv.ListEvents(context.Background(), k8s, ns, "RayCronJob", name)
	}
}
