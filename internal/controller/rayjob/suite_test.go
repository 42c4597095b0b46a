package rayjob

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

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
	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
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

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log.SetLogger(logr.Discard())

	tmp, err := os.MkdirTemp("", "rayjob-heads-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	heads = &headPool{dir: tmp, byCluster: map[string]*node.Node{}}
	if heads.shared, err = heads.start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer heads.stopAll()

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := DefaultConfig()
	cfg.MaxConcurrentReconciles = 4
	// The in-process head keeps hijacked log streams open when it stops, like a node that vanished
	// without closing connections; a short recheck makes the restart test quick.
	cfg.RunningRecheckInterval = 2 * time.Second
	r, err := New(mgr.GetClient(), cfg,
		WithRecorder(mgr.GetEventRecorder(ControllerName)),
		WithMetricsRegisterer(prometheus.NewRegistry()),
		WithResolver(dashboardresolver.Func(heads.client)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	go markClustersReady(ctx)
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

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
func (p *headPool) dedicate(t *testing.T, ns, cluster string) *node.Node {
	t.Helper()
	n, err := p.start()
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	old := p.byCluster[ns+"/"+cluster]
	p.byCluster[ns+"/"+cluster] = n
	p.mu.Unlock()
	if old != nil {
		_ = old.Stop()
	}
	t.Cleanup(func() { _ = n.Stop() })
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
func sharedClient(t *testing.T) *dashboard.Client {
	t.Helper()
	c, err := dashboard.NewClient(heads.shared.DashboardURL())
	if err != nil {
		t.Fatal(err)
	}
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

func newNamespace(t *testing.T) string {
	t.Helper()
	return testenv.NewNamespace(t, k8s, "rj-")
}

// newRayJob is a RayJob with a small cluster spec (nothing runs it: the test marks it ready).
func newRayJob(ns, name string, m rayv1.JobSubmissionMode, entrypoint string) *rayv1.RayJob {
	j := makeJob(name).mode(m).obj()
	j.UID = ""
	j.Namespace = ns
	j.Spec.Entrypoint = entrypoint
	g := &j.Spec.RayClusterSpec.WorkerGroupSpecs[0]
	g.Replicas, g.MinReplicas, g.MaxReplicas = ptr.To[int32](1), ptr.To[int32](1), ptr.To[int32](1)
	return j
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func getJob(t *testing.T, ns, name string) *rayv1.RayJob {
	t.Helper()
	rj := &rayv1.RayJob{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rj); err != nil {
		t.Fatal(err)
	}
	return rj
}

// eventually polls cond until it returns true or the timeout passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, interval, what, cond)
}

// waitState waits until the RayJob reaches the deployment status and returns it.
func waitState(t *testing.T, ns, name string, want rayv1.JobDeploymentStatus) *rayv1.RayJob {
	t.Helper()
	var rj *rayv1.RayJob
	eventually(t, fmt.Sprintf("RayJob %s/%s %s", ns, name, stateName(want)), func() (bool, string) {
		rj = &rayv1.RayJob{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rj); err != nil {
			return false, err.Error()
		}
		return rj.Status.JobDeploymentStatus == want, describe(rj)
	})
	return rj
}

func describe(rj *rayv1.RayJob) string {
	s := rj.Status
	return fmt.Sprintf("deployment=%s job=%s reason=%s cluster=%s id=%s failed=%d succeeded=%d message=%q",
		stateName(s.JobDeploymentStatus), s.JobStatus, s.Reason, s.RayClusterName, s.JobID, deref(s.Failed), deref(s.Succeeded), s.Message)
}

func getCluster(t *testing.T, ns, name string) (*rayv1.RayCluster, bool) {
	t.Helper()
	rc := &rayv1.RayCluster{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rc)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return rc, true
}

func waitClusterGone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "RayCluster "+name+" deleted", func() (bool, string) {
		rc, ok := getCluster(t, ns, name)
		if !ok {
			return true, ""
		}
		return rc.DeletionTimestamp != nil, "still there"
	})
}

func updateJob(t *testing.T, ns, name string, mut func(*rayv1.RayJob)) {
	t.Helper()
	eventually(t, "RayJob update", func() (bool, string) {
		rj := getJob(t, ns, name)
		mut(rj)
		if err := k8s.Update(context.Background(), rj); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

func hasEvent(t *testing.T, ns, name, reason, contains string) func() (bool, string) {
	return testenv.HasEvent(t, k8s, ns, "RayJob", name, reason, contains)
}
