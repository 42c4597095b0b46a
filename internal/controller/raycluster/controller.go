package raycluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/eventnote"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// Reconciler reconciles RayClusters.
type Reconciler struct {
	client     client.Client
	cfg        Config
	clock      clock.PassiveClock
	recorder   events.EventRecorder
	registerer prometheus.Registerer
	metrics    *clusterMetrics
	exp        *expectations
	// random is where generated auth tokens come from.
	random io.Reader
	// replacedHeads remembers, per cluster, the head pod deleted for replacement until its
	// successor is ready, so HeadPodReady keeps saying why even when the status in the cache lags
	// behind the last write.
	replacedHeads sync.Map // types.NamespacedName -> *headReplace
	// observe, when set (tests), is called after every Reconcile returns.
	observe func(req ctrl.Request)
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler that reads and writes through c (the manager's cached client in
// production).
func New(c client.Client, cfg Config, opts ...Option) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	r := &Reconciler{client: c, cfg: cfg, clock: clock.RealClock{}, random: rand.Reader}
	for _, o := range opts {
		o(r)
	}
	r.exp = newExpectations(cfg.ExpectationTimeout)
	m, err := newClusterMetrics(r.registerer, c)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// SetupWithManager registers the owner-UID indexes and the controller with its watches.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("raycluster").
		// Status-only updates (including our own status writes) do not trigger a reconcile.
		For(&rayv1.RayCluster{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Pod{}).
		Owns(&corev1.Service{}).
		Owns(&batchv1.Job{}).
		Owns(&networkingv1.Ingress{}).
		// Secrets and claims are watched by metadata only (the operator never caches Secret
		// data) and mapped by name to the clusters that use them: this covers the objects the
		// operator creates (and recreates when deleted) as well as the ones users bring.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(clustersReferencing(r.client, AuthSecretIndex)), builder.OnlyMetadata)
	if r.cfg.enabled(features.GCSFaultToleranceEmbeddedStorage) {
		b = b.Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(clustersReferencing(r.client, GCSStorageClaimIndex)), builder.OnlyMetadata)
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: r.cfg.MaxConcurrentReconciles}).
		Complete(r)
}

// Reconcile brings one RayCluster's children towards its spec and reports what it observed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.observe != nil {
		defer r.observe(req)
	}
	cluster := &rayv1.RayCluster{}
	if err := r.client.Get(ctx, req.NamespacedName, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			r.exp.forget(req.NamespacedName)
			r.replacedHeads.Delete(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting RayCluster: %w", err)
	}
	if managedByExternalController(cluster) {
		return ctrl.Result{}, nil
	}
	s, err := r.newScope(ctx, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !cluster.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	if err := r.reconcileFinalizer(ctx, s); err != nil {
		return ctrl.Result{}, err
	}

	var reconcileErr error
	if s.validationErr = validateCluster(cluster, r.cfg); s.validationErr == nil {
		reconcileErr = runPhases(ctx, s, r.phases())
	}

	before := cluster.DeepCopy()
	if s.headReplaced != nil {
		r.replacedHeads.Store(s.key, s.headReplaced)
	} else if v, ok := r.replacedHeads.Load(s.key); ok {
		hr := *v.(*headReplace)
		hr.current = false
		s.headReplaced = &hr
	}
	transitions := computeStatus(s, before.Status, reconcileErr)
	if meta.IsStatusConditionTrue(cluster.Status.Conditions, string(rayv1.HeadPodReady)) {
		r.replacedHeads.Delete(s.key)
	}
	if statusChanged(&before.Status, &cluster.Status) {
		cluster.Status.LastUpdateTime = ptrTime(s.now)
		if err := r.client.Status().Patch(ctx, cluster, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, errors.Join(reconcileErr, fmt.Errorf("patching RayCluster status: %w", err))
		}
	}
	r.emit(cluster, s.events)
	r.emit(cluster, transitions.events)
	r.metrics.observe(cluster, transitions)

	if reconcileErr != nil {
		return ctrl.Result{}, reconcileErr
	}
	if transitions.requeueNow {
		s.wakeAt(s.now)
	}
	return r.result(s), nil
}

// phases are the steps of a normal reconcile, in order.
func (r *Reconciler) phases() []phase {
	return []phase{
		{"autoscaler RBAC", r.reconcileAutoscalerRBAC},
		{"ingress", r.reconcileIngress},
		{"auth secret", r.reconcileAuthSecret},
		{"head service", r.reconcileHeadService},
		{"headless worker service", r.reconcileHeadlessWorkerService},
		{"serve service", r.reconcileServeService},
		{"gcs storage", r.reconcileGCSStorage},
		{"pods", r.reconcilePods},
	}
}

func (r *Reconciler) newScope(ctx context.Context, cluster *rayv1.RayCluster) (*scope, error) {
	s := &scope{cluster: cluster, key: client.ObjectKeyFromObject(cluster), now: r.clock.Now(),
		conditions: r.cfg.enabled(features.RayClusterStatusConditions)}
	var pods corev1.PodList
	if err := listChildren(ctx, r.client, cluster, &pods); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	s.allPods = pods.Items
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			s.pods = append(s.pods, p)
		}
	}
	var svcs corev1.ServiceList
	if err := listChildren(ctx, r.client, cluster, &svcs); err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	s.services = svcs.Items
	var jobs batchv1.JobList
	if err := listChildren(ctx, r.client, cluster, &jobs); err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	s.jobs = jobs.Items
	var ings networkingv1.IngressList
	if err := listChildren(ctx, r.client, cluster, &ings); err != nil {
		return nil, fmt.Errorf("listing ingresses: %w", err)
	}
	s.ingresses = ings.Items
	return s, nil
}

// result turns the scope's computed wake-up time into a Result. There is no periodic resync:
// every other change arrives through a watch.
func (r *Reconciler) result(s *scope) ctrl.Result {
	if s.requeueAt.IsZero() {
		return ctrl.Result{}
	}
	d := s.requeueAt.Sub(r.clock.Now())
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return ctrl.Result{RequeueAfter: d}
}

func (r *Reconciler) emit(cluster *rayv1.RayCluster, evs []event) {
	if r.recorder == nil {
		return
	}
	for _, e := range evs {
		r.recorder.Eventf(cluster, nil, e.eventType, e.reason, e.action, "%s", eventnote.Fit(e.note))
	}
}

// managedByExternalController reports whether spec.managedBy hands the cluster to another
// controller (MultiKueue); then this operator must not touch it at all.
func managedByExternalController(c *rayv1.RayCluster) bool {
	return c.Spec.ManagedBy != nil && *c.Spec.ManagedBy != rayv1.KubeRayController
}
