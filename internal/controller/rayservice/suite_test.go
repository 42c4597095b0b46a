package rayservice

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gomegatypes "github.com/onsi/gomega/types"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	"github.com/rayk8s/rayk8s/internal/testsupport/freeport"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
	"github.com/rayk8s/rayk8s/internal/serve/builtin"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// The integration tests run the controller in a real manager against envtest (kube-apiserver and
// etcd only: no kubelet, no RayCluster controller, no EndpointSlice controller, no garbage
// collector). The test plays the missing parts:
//   - the RayCluster controller and the kubelet: for every RayCluster it starts a real Ray head of
//     our runtime in-process, with its Serve proxy bound to a loopback address of its own
//     (127.0.0.x) on a shared port, and creates a Running/Ready head pod whose IP is that address;
//   - the EndpointSlice controller: it writes one EndpointSlice per Service listing the ready pods
//     its selector matches.
// The controller is pointed at each cluster's head through a dashboardresolver.Func, and probes
// proxies with its production HTTP prober at <pod IP>:<serve port>. Serve replicas are this test
// binary started with the "serve-replica" argument, running the built-in deployments.

var (
	k8s             client.Client
	env             *testenv.Env
	heads           *headPool
	op              *operator
	sharedServePort int
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve-replica" {
		os.Exit(runReplica())
	}
	os.Exit(m.Run())
}

// runReplica is `ray serve-replica` for the built-in deployments.
func runReplica() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := builtin.Run(ctx, os.Getenv, logr.Discard()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestRayServiceController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "RayService controller suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(timeout)
	SetDefaultEventuallyPollingInterval(interval)
	SetDefaultConsistentlyPollingInterval(interval)
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
	k8s = env.Client
	log.SetLogger(logr.Discard())
	sharedServePort, err = freeport.Pick()
	Expect(err).NotTo(HaveOccurred())
	tmp, err := os.MkdirTemp("", "rayservice-heads-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, tmp)
	heads = &headPool{dir: tmp, byCluster: map[string]*head{}}
	DeferCleanup(heads.stopAll)

	op, err = startOperator()
	Expect(err).NotTo(HaveOccurred())
	// A spec may replace op (an operator restart): stop whichever runs at the end.
	DeferCleanup(func() { op.stop() })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); runKubelet(ctx) }()
	go func() { defer wg.Done(); runEndpointSlices(ctx) }()
	// Cleanups run last-in first-out: the stand-ins stop first, envtest last.
	DeferCleanup(func() {
		cancel()
		wg.Wait()
	})
})

// operator is a running manager with the RayService controller.
type operator struct {
	cancel context.CancelFunc
	done   chan error
}

func startOperator() (*operator, error) {
	// As in the operator, Services and EndpointSlices are cached only with the created-by label.
	ours := labels.SelectorFromSet(labels.Set{rayv1.KubernetesCreatedByLabelKey: rayv1.ComponentName})
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Service{}:            {Label: ours},
			&discoveryv1.EndpointSlice{}: {Label: ours},
		}},
	})
	if err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	cfg.MaxConcurrentReconciles = 4
	cfg.ServeRecheckInterval = 2 * time.Second
	r, err := New(mgr.GetClient(), cfg, reconcilekit.Deps{
		Recorder:   mgr.GetEventRecorder(ControllerName),
		Registerer: prometheus.NewRegistry(),
		Resolver:   dashboardresolver.Func(heads.client),
	}, WithAPIReader(mgr.GetAPIReader()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		return nil, err
	}
	o := &operator{cancel: cancel, done: make(chan error, 1)}
	go func() { o.done <- mgr.Start(ctx) }()
	return o, nil
}

func (o *operator) stop() {
	o.cancel()
	if err := <-o.done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
}

// head is the in-process Ray head of one RayCluster.
type head struct {
	node *node.Node
	ip   string // the Serve proxy's address, and the head pod's IP
}

// headPool runs one head per RayCluster ("<ns>/<name>").
type headPool struct {
	dir       string
	nextIP    atomic.Int32
	mu        sync.Mutex
	byCluster map[string]*head
}

func (p *headPool) start(ip string) (*head, error) {
	dir, err := os.MkdirTemp(p.dir, "head-")
	if err != nil {
		return nil, err
	}
	if ip == "" {
		ip = fmt.Sprintf("127.0.0.%d", 10+p.nextIP.Add(1))
	}
	n, err := node.Start(context.Background(), node.Config{
		Head:             true,
		NodeIP:           "127.0.0.1",
		IncludeDashboard: true,
		DashboardHost:    "127.0.0.1",
		ServeHTTPHost:    ip,
		Resources:        map[string]float64{"CPU": 16},
		TempDir:          dir,
		HeartbeatPeriod:  100 * time.Millisecond,
		Logger:           logr.Discard(),
	})
	if err != nil {
		return nil, err
	}
	return &head{node: n, ip: ip}, nil
}

func (p *headPool) get(ns, cluster string) *head {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byCluster[ns+"/"+cluster]
}

// ensure starts the cluster's head unless it runs.
func (p *headPool) ensure(ns, cluster string) (*head, error) {
	if h := p.get(ns, cluster); h != nil {
		return h, nil
	}
	h, err := p.start("")
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.byCluster[ns+"/"+cluster] = h
	p.mu.Unlock()
	return h, nil
}

// restart replaces the cluster's head by a fresh one on the same address: everything Serve knew is
// gone, as after a head pod restart without GCS fault tolerance.
func (p *headPool) restart(ns, cluster string) (*head, error) {
	old := p.get(ns, cluster)
	if old != nil {
		_ = old.node.Stop()
	}
	ip := ""
	if old != nil {
		ip = old.ip
	}
	h, err := p.start(ip)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.byCluster[ns+"/"+cluster] = h
	p.mu.Unlock()
	return h, nil
}

func (p *headPool) stop(key string) {
	p.mu.Lock()
	h := p.byCluster[key]
	delete(p.byCluster, key)
	p.mu.Unlock()
	if h != nil {
		_ = h.node.Stop()
	}
}

func (p *headPool) keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.byCluster))
	for k := range p.byCluster {
		out = append(out, k)
	}
	return out
}

func (p *headPool) client(_ context.Context, rc *rayv1.RayCluster) (*dashboard.Client, error) {
	h := p.get(rc.Namespace, rc.Name)
	if h == nil {
		return nil, fmt.Errorf("no head runs for RayCluster %s/%s", rc.Namespace, rc.Name)
	}
	return dashboard.NewClient(h.node.DashboardURL())
}

func (p *headPool) stopAll() {
	for _, k := range p.keys() {
		p.stop(k)
	}
}

// holdAnnotation on a RayCluster (copied from its RayService) keeps the test kubelet from
// starting its head until it is removed.
const holdAnnotation = "test.rayk8s.io/hold"

// runKubelet plays the RayCluster controller and the kubelet for every RayCluster.
func runKubelet(ctx context.Context) {
	for ctx.Err() == nil {
		var list rayv1.RayClusterList
		if err := k8s.List(ctx, &list); err == nil {
			live := map[string]bool{}
			for i := range list.Items {
				rc := &list.Items[i]
				if rc.DeletionTimestamp != nil {
					continue
				}
				live[rc.Namespace+"/"+rc.Name] = true
				if rc.Annotations[holdAnnotation] == "true" {
					continue
				}
				if err := runCluster(ctx, rc); err != nil && ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "test kubelet: %s/%s: %v\n", rc.Namespace, rc.Name, err)
				}
			}
			for _, k := range heads.keys() {
				if !live[k] {
					heads.stop(k)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runCluster makes sure the cluster has a running head, a Running/Ready head pod pointing at it,
// and a ready status.
func runCluster(ctx context.Context, rc *rayv1.RayCluster) error {
	h, err := heads.ensure(rc.Namespace, rc.Name)
	if err != nil {
		return err
	}
	pod, err := headPodOf(ctx, rc)
	if err != nil {
		return err
	}
	if pod == nil {
		pod = &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				GenerateName: rc.Name + "-head-",
				Namespace:    rc.Namespace,
				Labels: map[string]string{
					rayv1.RayClusterLabelKey:  rc.Name,
					rayv1.RayNodeTypeLabelKey: string(rayv1.HeadNode),
				},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: rayv1.GroupVersion.String(), Kind: "RayCluster",
					Name: rc.Name, UID: rc.UID, Controller: ptr.To(true)}},
			},
			Spec: *rc.Spec.HeadGroupSpec.Template.Spec.DeepCopy(),
		}
		if err := k8s.Create(ctx, pod); err != nil {
			return err
		}
	}
	if pod.Status.PodIP != h.ip || !resources.PodRunningAndReady(pod) {
		now := metav1.Now()
		pod.Status = corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIP:  h.ip,
			PodIPs: []corev1.PodIP{{IP: h.ip}},
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
		}
		if err := k8s.Status().Update(ctx, pod); err != nil {
			return err
		}
	}
	if rc.Status.State != rayv1.ClusterStateReady {
		rc.Status.State = rayv1.ClusterStateReady
		rc.Status.Head = rayv1.HeadInfo{PodIP: h.ip, PodName: pod.Name, ServiceName: rc.Name + "-head-svc"}
		if err := k8s.Status().Update(ctx, rc); err != nil {
			return err
		}
	}
	return nil
}

func headPodOf(ctx context.Context, rc *rayv1.RayCluster) (*corev1.Pod, error) {
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(rc.Namespace), client.MatchingLabels{
		rayv1.RayClusterLabelKey: rc.Name, rayv1.RayNodeTypeLabelKey: string(rayv1.HeadNode)}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil && metav1.IsControlledBy(&pods.Items[i], rc) {
			return &pods.Items[i], nil
		}
	}
	return nil, nil
}

// runEndpointSlices plays the EndpointSlice controller for the Services of the test namespaces.
func runEndpointSlices(ctx context.Context) {
	for ctx.Err() == nil {
		var svcs corev1.ServiceList
		if err := k8s.List(ctx, &svcs); err == nil {
			for i := range svcs.Items {
				svc := &svcs.Items[i]
				if !strings.HasPrefix(svc.Namespace, "rs-") || len(svc.Spec.Selector) == 0 {
					continue
				}
				if err := syncEndpointSlice(ctx, svc); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) {
					fmt.Fprintf(os.Stderr, "test endpointslices: %s/%s: %v\n", svc.Namespace, svc.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func syncEndpointSlice(ctx context.Context, svc *corev1.Service) error {
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(svc.Namespace), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(svc.Spec.Selector)}); err != nil {
		return err
	}
	var eps []discoveryv1.Endpoint
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !resources.PodRunningAndReady(p) {
			continue
		}
		// EndpointSlices may not hold loopback addresses; the last octet keeps them distinct.
		ip := p.Status.PodIP
		addr := "10.255.0." + ip[strings.LastIndex(ip, ".")+1:]
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		})
	}
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: svc.Name + "-test", Namespace: svc.Namespace,
			// As Kubernetes' EndpointSlice controller does, the slice copies its Service's labels.
			Labels: maps.Clone(svc.Labels),
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
	if want.Labels == nil {
		want.Labels = map[string]string{}
	}
	want.Labels[discoveryv1.LabelServiceName] = svc.Name
	have := &discoveryv1.EndpointSlice{}
	err := k8s.Get(ctx, client.ObjectKeyFromObject(want), have)
	if apierrors.IsNotFound(err) {
		return k8s.Create(ctx, want)
	}
	if err != nil {
		return err
	}
	if apiequality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) && apiequality.Semantic.DeepEqual(have.Labels, want.Labels) {
		return nil
	}
	have.Endpoints, have.Labels = want.Endpoints, want.Labels
	return k8s.Update(ctx, have)
}

// Test helpers.

const (
	timeout  = 90 * time.Second
	interval = 100 * time.Millisecond
)

func newNamespace() string {
	GinkgoHelper()
	ns, err := testenv.CreateNamespace(context.Background(), k8s, "rs-")
	Expect(err).NotTo(HaveOccurred())
	return ns
}

// serveConfig is a serveConfigV2 with one built-in echo application per name.
func serveConfig(apps ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "http_options:\n  port: %d\napplications:\n", sharedServePort)
	for _, a := range apps {
		fmt.Fprintf(&b, "  - name: %s\n    route_prefix: /%s\n    import_path: builtin:echo\n    args:\n      message: %s\n", a, a, a)
	}
	return b.String()
}

// newRayService is a RayService with a small cluster whose head declares the shared serve port.
func newRayService(ns, name string, apps ...string) *rayv1.RayService {
	return builders.RayService(ns, name).
		ServeConfig(serveConfig(apps...)).
		ClusterDeletionDelay(2).
		HeadEnv("GENERATION", "1").
		ServePort(int32(sharedServePort)).
		Obj()
}

func create(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), obj)).To(Succeed(), "creating %T %s", obj, obj.GetName())
}

// rsOf returns a function fetching the RayService, for Eventually.
func rsOf(ns, name string) func() (*rayv1.RayService, error) {
	return func() (*rayv1.RayService, error) {
		rs := &rayv1.RayService{}
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rs)
		return rs, err
	}
}

func getRS(ns, name string) *rayv1.RayService {
	GinkgoHelper()
	rs, err := rsOf(ns, name)()
	Expect(err).NotTo(HaveOccurred())
	return rs
}

func updateRS(ns, name string, mut func(*rayv1.RayService)) {
	GinkgoHelper()
	Eventually(func() error {
		rs := getRS(ns, name)
		mut(rs)
		return k8s.Update(context.Background(), rs)
	}).Should(Succeed(), "RayService update")
}

// waitRS waits until the RayService matches and returns the version that did; a failure
// describes the last version seen.
func waitRS(ns, name, what string, matcher gomegatypes.GomegaMatcher) *rayv1.RayService {
	GinkgoHelper()
	var rs *rayv1.RayService
	Eventually(func() (*rayv1.RayService, error) {
		var err error
		rs, err = rsOf(ns, name)()
		return rs, err
	}).Should(matcher, func() string { return lastSeen(what, rs) })
	return rs
}

func lastSeen(what string, rs *rayv1.RayService) string {
	if rs == nil {
		return what
	}
	return what + "; last seen: " + describe(rs)
}

func describe(rs *rayv1.RayService) string {
	var conds []string
	for _, c := range rs.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s/%s(%q)", c.Type, c.Status, c.Reason, c.Message))
	}
	apps := func(st rayv1.RayServiceStatus) string {
		var out []string
		for n, a := range st.Applications {
			out = append(out, n+":"+a.Status)
		}
		return strings.Join(out, ",")
	}
	return fmt.Sprintf("active=%s[%s] pending=%s[%s] endpoints=%d serviceStatus=%q conditions=%v",
		rs.Status.ActiveServiceStatus.RayClusterName, apps(rs.Status.ActiveServiceStatus),
		rs.Status.PendingServiceStatus.RayClusterName, apps(rs.Status.PendingServiceStatus),
		rs.Status.NumServeEndpoints, rs.Status.ServiceStatus, conds)
}

// beReady matches a RayService that is Ready with no upgrade pending.
var beReady = And(
	HaveCondition(rayv1.RayServiceReady, metav1.ConditionTrue, ""),
	HaveField("Status.PendingServiceStatus.RayClusterName", BeEmpty()))

// waitReady waits for Ready=True and returns the RayService.
func waitReady(ns, name string) *rayv1.RayService {
	GinkgoHelper()
	return waitRS(ns, name, "RayService ready", beReady)
}

// clustersOf lists the RayClusters of the namespace that are not being deleted.
func clustersOf(ns string) []string {
	GinkgoHelper()
	var list rayv1.RayClusterList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, rc := range list.Items {
		if rc.DeletionTimestamp == nil {
			out = append(out, rc.Name)
		}
	}
	return out
}

func service(ns, name string) *corev1.Service {
	GinkgoHelper()
	svc := &corev1.Service{}
	Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, svc)).To(Succeed())
	return svc
}

// headApps asks a cluster's head directly which applications it runs.
func headApps(ns, cluster string) map[string]dashboard.ApplicationDetails {
	GinkgoHelper()
	h := heads.get(ns, cluster)
	if h == nil {
		return nil
	}
	c, err := dashboard.NewClient(h.node.DashboardURL())
	Expect(err).NotTo(HaveOccurred())
	d, err := c.GetServeApplications(context.Background())
	if err != nil {
		return nil
	}
	return d.Applications
}

// eventsOf returns a function listing the events.k8s.io Events about the RayService, for
// Eventually.
func eventsOf(ns, name string) func() ([]eventsv1.Event, error) {
	return func() ([]eventsv1.Event, error) {
		return testenv.ListEvents(context.Background(), k8s, ns, "RayService", name)
	}
}
