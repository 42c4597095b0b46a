package raycluster

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gomegatypes "github.com/onsi/gomega/types"

	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/featuregate"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/operator/features"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// The integration tests run the controller in a real manager against envtest (kube-apiserver and
// etcd, no kubelet, no garbage collector, no Job controller). The test plays kubelet by patching
// pod status, and marks Jobs complete itself.

var (
	k8s      client.Client // uncached admin client
	writes   *writeCounter // wraps the controller's client
	observed *reconcileObserver
	// reconciler is the controller under test.
	reconciler *Reconciler
	kubelet    *fakeKubelet
	// gates are the controller's feature gates.
	gates featuregate.MutableFeatureGate
	// tokenSource makes generated auth tokens predictable.
	tokenSource = &fixedByteReader{}
)

func TestRayClusterController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "RayCluster controller suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(waitTimeout)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	// cert-manager's CRDs (not cert-manager itself: the specs issue the certificates).
	env, err := testenv.Start(filepath.Join("..", "mtls", "testdata", "crds"))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
	k8s = env.Client
	ctx, cancel := context.WithCancel(context.Background())
	log.SetLogger(logrDiscard())
	// As in the operator, Secrets and Services are cached only when they carry the created-by
	// label, and objects users name are read uncached: a Service the controller creates without
	// the label, or a user's Secret it waits for, would otherwise go unseen.
	ours := labels.SelectorFromSet(labels.Set{rayv1.KubernetesCreatedByLabelKey: rayv1.ComponentName})
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:  {Label: ours},
			&corev1.Service{}: {Label: ours},
		}},
	})
	Expect(err).NotTo(HaveOccurred())
	writes = &writeCounter{Client: mgr.GetClient()}
	observed = &reconcileObserver{counts: map[types.NamespacedName]int{}}
	cfg := DefaultConfig()
	// Alpha gates the tests exercise are on (so their watches are registered); a spec may turn
	// one off for its duration with setGate.
	gates = features.New()
	Expect(gates.SetFromMap(map[string]bool{
		string(features.GCSFaultToleranceEmbeddedStorage): true,
		string(features.RayClusterNetworkPolicy):          true,
		string(features.RayClusterMTLS):                   true,
	})).To(Succeed())
	cfg.FeatureGates = gates
	r, err := New(writes, cfg,
		reconcilekit.Deps{Recorder: mgr.GetEventRecorder(ControllerName), Registerer: prometheus.NewRegistry()},
		WithTokenSource(tokenSource),
		WithAPIReader(mgr.GetAPIReader()),
		withReconcileObserver(observed.record))
	Expect(err).NotTo(HaveOccurred())
	Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	reconciler = r
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	kubelet = &fakeKubelet{c: k8s, held: map[string]bool{}}
	go kubelet.run(ctx)
	// Cleanups run last-in first-out: the manager stops before envtest does.
	DeferCleanup(func() {
		cancel()
		Expect(<-done).To(Succeed(), "the manager stopped with an error")
	})
})

// writeCounter counts every write the controller issues, by namespace.
type writeCounter struct {
	client.Client
	mu     sync.Mutex
	writes []string // "namespace verb kind/name"
}

func (w *writeCounter) record(verb string, obj runtime.Object) {
	ns, name := "*", "?"
	if o, ok := obj.(client.Object); ok {
		ns, name = o.GetNamespace(), o.GetName()
		if name == "" {
			name = o.GetGenerateName() + "*"
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, fmt.Sprintf("%s %s %T/%s", ns, verb, obj, name))
}

// since returns the writes recorded after mark in namespace ns (or of unknown namespace).
func (w *writeCounter) since(mark int, ns string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.writes[mark:] {
		if strings.HasPrefix(s, ns+" ") || strings.HasPrefix(s, "* ") {
			out = append(out, s)
		}
	}
	return out
}

func (w *writeCounter) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

func (w *writeCounter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	w.record("create", obj)
	return w.Client.Create(ctx, obj, opts...)
}

func (w *writeCounter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	w.record("update", obj)
	return w.Client.Update(ctx, obj, opts...)
}

func (w *writeCounter) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	w.record("patch", obj)
	return w.Client.Patch(ctx, obj, p, opts...)
}

func (w *writeCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	w.record("apply", nil)
	return w.Client.Apply(ctx, obj, opts...)
}

func (w *writeCounter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	w.record("delete", obj)
	return w.Client.Delete(ctx, obj, opts...)
}

func (w *writeCounter) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	w.record("deletecollection", nil)
	return w.Client.DeleteAllOf(ctx, obj, opts...)
}

func (w *writeCounter) Status() client.SubResourceWriter {
	return &subWriter{w.Client.Status(), w, "status"}
}

func (w *writeCounter) SubResource(sub string) client.SubResourceClient {
	return &subClient{w.Client.SubResource(sub), subWriter{w.Client.SubResource(sub), w, sub}}
}

type subWriter struct {
	client.SubResourceWriter
	w   *writeCounter
	sub string
}

func (s *subWriter) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	s.w.record(s.sub+" create", obj)
	return s.SubResourceWriter.Create(ctx, obj, sub, opts...)
}

func (s *subWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.w.record(s.sub+" update", obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *subWriter) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.w.record(s.sub+" patch", obj)
	return s.SubResourceWriter.Patch(ctx, obj, p, opts...)
}

func (s *subWriter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	s.w.record(s.sub+" apply", nil)
	return s.SubResourceWriter.Apply(ctx, obj, opts...)
}

type subClient struct {
	client.SubResourceClient
	subWriter
}

func (s *subClient) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	return s.subWriter.Create(ctx, obj, sub, opts...)
}

func (s *subClient) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	return s.subWriter.Update(ctx, obj, opts...)
}

func (s *subClient) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	return s.subWriter.Patch(ctx, obj, p, opts...)
}

func (s *subClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	return s.subWriter.Apply(ctx, obj, opts...)
}

// reconcileObserver counts finished reconciles per cluster.
type reconcileObserver struct {
	mu     sync.Mutex
	counts map[types.NamespacedName]int
}

func (o *reconcileObserver) record(req ctrl.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[req.NamespacedName]++
}

func (o *reconcileObserver) count(key types.NamespacedName) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[key]
}

// fakeKubelet marks every Pending pod Running and Ready with an IP, except in held namespaces.
type fakeKubelet struct {
	c    client.Client
	mu   sync.Mutex
	held map[string]bool
	ip   atomic.Int32
}

func (k *fakeKubelet) hold(ns string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held[ns] = on
}

func (k *fakeKubelet) isHeld(ns string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held[ns]
}

func (k *fakeKubelet) run(ctx context.Context) {
	for ctx.Err() == nil {
		var pods corev1.PodList
		if err := k.c.List(ctx, &pods); err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.DeletionTimestamp != nil || (p.Status.Phase != "" && p.Status.Phase != corev1.PodPending) || k.isHeld(p.Namespace) {
					continue
				}
				_ = k.start(ctx, p)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// start patches a pod's status to Running and Ready.
func (k *fakeKubelet) start(ctx context.Context, p *corev1.Pod) error {
	orig := p.DeepCopy()
	n := k.ip.Add(1)
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = fmt.Sprintf("10.0.%d.%d", n/250, n%250+1)
	p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return k.c.Status().Patch(ctx, p, client.MergeFrom(orig))
}

// Helpers.

var nsCounter atomic.Int32

// newNamespace creates a namespace for one spec, named after it.
func newNamespace() string {
	name := fmt.Sprintf("%s-%d", strings.ToLower(CurrentSpecReport().LeafNodeText), nsCounter.Add(1))
	name = strings.Trim(invalidNameChars.ReplaceAllString(name, "-"), "-")
	if len(name) > 63 {
		name = strings.Trim(name[len(name)-63:], "-")
	}
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed(), "creating namespace")
	return name
}

var invalidNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

const waitTimeout = 30 * time.Second

func create(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), obj)).To(Succeed(), "creating %T %s", obj, obj.GetName())
}

func getCluster(key types.NamespacedName) *rayv1.RayCluster {
	GinkgoHelper()
	c, err := clusterOf(key)()
	Expect(err).NotTo(HaveOccurred())
	return c
}

// clusterOf returns a function fetching the RayCluster, for Eventually.
func clusterOf(key types.NamespacedName) func() (*rayv1.RayCluster, error) {
	return func() (*rayv1.RayCluster, error) {
		var c rayv1.RayCluster
		if err := k8s.Get(context.Background(), key, &c); err != nil {
			return nil, fmt.Errorf("getting RayCluster %s: %w", key, err)
		}
		return &c, nil
	}
}

// HaveState matches a RayCluster in the state.
func HaveState(want rayv1.ClusterState) gomegatypes.GomegaMatcher {
	return HaveField("Status.State", want)
}

// updateCluster applies mutate to the latest RayCluster, retrying on conflicts.
func updateCluster(key types.NamespacedName, mutate func(*rayv1.RayCluster)) {
	GinkgoHelper()
	Eventually(func() error {
		var c rayv1.RayCluster
		if err := k8s.Get(context.Background(), key, &c); err != nil {
			return err
		}
		mutate(&c)
		return k8s.Update(context.Background(), &c)
	}).Should(Succeed(), "updating RayCluster %s", key)
}

// listPods lists the active pods of a cluster, filtered by node type ("" for all) and group.
func listPods(ns string, nodeType rayv1.RayNodeType, group string) []corev1.Pod {
	GinkgoHelper()
	pods, err := activePods(ns, nodeType, group)
	Expect(err).NotTo(HaveOccurred(), "listing pods")
	return pods
}

func activePods(ns string, nodeType rayv1.RayNodeType, group string) ([]corev1.Pod, error) {
	var list corev1.PodList
	sel := client.MatchingLabels{}
	if nodeType != "" {
		sel[rayv1.RayNodeTypeLabelKey] = string(nodeType)
	}
	if group != "" {
		sel[rayv1.RayNodeGroupLabelKey] = group
	}
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), sel); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// podNamesOf returns a function listing the names of the active pods, for Eventually.
func podNamesOf(ns string, nodeType rayv1.RayNodeType, group string) func() ([]string, error) {
	return func() ([]string, error) {
		pods, err := activePods(ns, nodeType, group)
		return podNames(pods), err
	}
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// eventsOf returns a function listing the events.k8s.io Events about the cluster, for Eventually.
func eventsOf(key types.NamespacedName) func() ([]eventsv1.Event, error) {
	return func() ([]eventsv1.Event, error) {
		return testenv.ListEvents(context.Background(), k8s, key.Namespace, "RayCluster", key.Name)
	}
}

// setPodStatus patches a pod's status.
func setPodStatus(p *corev1.Pod, mutate func(*corev1.PodStatus)) {
	GinkgoHelper()
	Eventually(func() error {
		var cur corev1.Pod
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), &cur); err != nil {
			return err
		}
		orig := cur.DeepCopy()
		mutate(&cur.Status)
		return k8s.Status().Patch(context.Background(), &cur, client.MergeFrom(orig))
	}).Should(Succeed(), "patching status of pod %s", p.Name)
}

// waitReconciled triggers a reconcile (by touching a label: annotations are copied onto the
// Ingress, so touching one would legitimately change a child) and waits until it finished.
func waitReconciled(key types.NamespacedName) {
	GinkgoHelper()
	before := observed.count(key)
	updateCluster(key, func(c *rayv1.RayCluster) {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels["test.rayk8s.io/poke"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	})
	Eventually(func() int { return observed.count(key) }).Should(BeNumerically(">", before), "a reconcile of %s", key)
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

func logrDiscard() logr.Logger { return logr.Discard() }

type (
	rbacRole        = rbacv1.Role
	rbacRoleBinding = rbacv1.RoleBinding
	ingress         = networkingv1.Ingress
)
