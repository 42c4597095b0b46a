package raycluster

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/featuregate"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
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
	kubelet  *fakeKubelet
	// gates are the controller's feature gates.
	gates featuregate.MutableFeatureGate
	// tokenSource makes generated auth tokens predictable.
	tokenSource = &fixedByteReader{}
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
	log.SetLogger(logrDiscard())
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
	writes = &writeCounter{Client: mgr.GetClient()}
	observed = &reconcileObserver{counts: map[types.NamespacedName]int{}}
	cfg := DefaultConfig()
	// Alpha gates the tests exercise are on (so their watches are registered); a test may turn
	// one off for its duration with setGate.
	gates = features.New()
	if err := gates.SetFromMap(map[string]bool{string(features.GCSFaultToleranceEmbeddedStorage): true}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.FeatureGates = gates
	r, err := New(writes, cfg,
		WithTokenSource(tokenSource),
		WithRecorder(mgr.GetEventRecorder(ControllerName)),
		WithMetricsRegisterer(prometheus.NewRegistry()),
		withReconcileObserver(observed.record))
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
	kubelet = &fakeKubelet{c: k8s, held: map[string]bool{}}
	go kubelet.run(ctx)
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintf(os.Stderr, "manager stopped with an error: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

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

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), nsCounter.Add(1))
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	name = strings.Trim(strings.ReplaceAll(name, "_", "-"), "-")
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return name
}

// clusterWrapper builds test RayClusters.
type clusterWrapper struct{ rayv1.RayCluster }

func makeCluster(ns, name string) *clusterWrapper {
	w := &clusterWrapper{}
	w.Namespace, w.Name = ns, name
	w.Spec.RayVersion = "2.9.0"
	w.Spec.HeadGroupSpec.RayStartParams = map[string]string{}
	w.Spec.HeadGroupSpec.Template.Spec.Containers = []corev1.Container{{
		Name: "ray-head", Image: "rayproject/ray:2.9.0",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}},
	}}
	return w
}

func (w *clusterWrapper) workers(group string, replicas, minR, maxR int32) *clusterWrapper {
	g := rayv1.WorkerGroupSpec{GroupName: group, Replicas: ptr.To(replicas), MinReplicas: ptr.To(minR), MaxReplicas: ptr.To(maxR), NumOfHosts: 1,
		RayStartParams: map[string]string{}}
	g.Template.Spec.Containers = []corev1.Container{{
		Name: "ray-worker", Image: "rayproject/ray:2.9.0",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
	}}
	w.Spec.WorkerGroupSpecs = append(w.Spec.WorkerGroupSpecs, g)
	return w
}

func (w *clusterWrapper) obj() *rayv1.RayCluster { return w.DeepCopy() }

const waitTimeout = 30 * time.Second

// eventually polls f until it returns nil, failing the test with f's last error after
// waitTimeout.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", waitTimeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func getCluster(t *testing.T, key types.NamespacedName) *rayv1.RayCluster {
	t.Helper()
	var c rayv1.RayCluster
	if err := k8s.Get(context.Background(), key, &c); err != nil {
		t.Fatalf("getting RayCluster %s: %v", key, err)
	}
	return &c
}

// updateCluster applies mutate to the latest RayCluster, retrying on conflicts.
func updateCluster(t *testing.T, key types.NamespacedName, mutate func(*rayv1.RayCluster)) {
	t.Helper()
	eventually(t, "updating RayCluster "+key.String(), func() error {
		var c rayv1.RayCluster
		if err := k8s.Get(context.Background(), key, &c); err != nil {
			return err
		}
		mutate(&c)
		return k8s.Update(context.Background(), &c)
	})
}

// pods lists the active pods of a cluster, filtered by node type ("" for all) and group.
func listPods(t *testing.T, ns string, nodeType rayv1.RayNodeType, group string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	sel := client.MatchingLabels{}
	if nodeType != "" {
		sel[rayv1.RayNodeTypeLabelKey] = string(nodeType)
	}
	if group != "" {
		sel[rayv1.RayNodeGroupLabelKey] = group
	}
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), sel); err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func countPods(t *testing.T, ns string, nodeType rayv1.RayNodeType, group string, want int) func() error {
	return func() error {
		if got := listPods(t, ns, nodeType, group); len(got) != want {
			return fmt.Errorf("%d %s pods (group %q), want %d: %v", len(got), nodeType, group, want, podNames(got))
		}
		return nil
	}
}

// hasCondition checks a condition's status and (when non-empty) reason.
func hasCondition(t *testing.T, key types.NamespacedName, ct rayv1.RayClusterConditionType, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		c := getCluster(t, key)
		cond := meta.FindStatusCondition(c.Status.Conditions, string(ct))
		if cond == nil {
			return fmt.Errorf("condition %s missing; conditions: %+v", ct, c.Status.Conditions)
		}
		if cond.Status != status || (reason != "" && cond.Reason != reason) {
			return fmt.Errorf("condition %s is %s/%s (%s), want %s/%s", ct, cond.Status, cond.Reason, cond.Message, status, reason)
		}
		return nil
	}
}

func stateIs(t *testing.T, key types.NamespacedName, want rayv1.ClusterState) func() error {
	return func() error {
		if got := getCluster(t, key).Status.State; got != want {
			return fmt.Errorf("state is %q, want %q", got, want)
		}
		return nil
	}
}

// hasEvent checks that an events.k8s.io Event with the reason regards the cluster.
func hasEvent(t *testing.T, key types.NamespacedName, eventType, reason, noteContains string) func() error {
	return func() error {
		var list eventsv1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(key.Namespace)); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "RayCluster" && e.Regarding.Name == key.Name {
				if e.Reason == reason && e.Type == eventType && strings.Contains(e.Note, noteContains) {
					return nil
				}
				seen = append(seen, e.Type+"/"+e.Reason)
			}
		}
		return fmt.Errorf("no %s event %s containing %q; events: %v", eventType, reason, noteContains, seen)
	}
}

// setPodStatus patches a pod's status.
func setPodStatus(t *testing.T, p *corev1.Pod, mutate func(*corev1.PodStatus)) {
	t.Helper()
	eventually(t, "patching status of pod "+p.Name, func() error {
		var cur corev1.Pod
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), &cur); err != nil {
			return err
		}
		orig := cur.DeepCopy()
		mutate(&cur.Status)
		return k8s.Status().Patch(context.Background(), &cur, client.MergeFrom(orig))
	})
}

// waitReconciled triggers a reconcile (by touching a label: annotations are copied onto the
// Ingress, so touching one would legitimately change a child) and waits until it finished.
func waitReconciled(t *testing.T, key types.NamespacedName) {
	t.Helper()
	before := observed.count(key)
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels["test.rayk8s.io/poke"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	})
	eventually(t, "a reconcile of "+key.String(), func() error {
		if observed.count(key) <= before {
			return errors.New("no reconcile yet")
		}
		return nil
	})
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

func logrDiscard() logr.Logger { return logr.Discard() }

type (
	rbacRole        = rbacv1.Role
	rbacRoleBinding = rbacv1.RoleBinding
	ingress         = networkingv1.Ingress
)
