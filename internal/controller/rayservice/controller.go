package rayservice

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/eventnote"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
)

// +kubebuilder:rbac:groups=ray.io,resources=rayservices,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=ray.io,resources=rayservices/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ray.io,resources=rayservices/finalizers,verbs=update
// +kubebuilder:rbac:groups=ray.io,resources=rayclusters,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services/proxy,verbs=get;create
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update

// Reconciler reconciles RayServices.
type Reconciler struct {
	client     client.Client
	cfg        Config
	clock      clock.PassiveClock
	recorder   events.EventRecorder
	resolver   dashboardresolver.Resolver
	prober     Prober
	suffix     func() string
	registerer prometheus.Registerer
	metrics    *serviceMetrics
	cache      *serveCache
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler that reads and writes through c (the manager's cached client).
func New(c client.Client, cfg Config, opts ...Option) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	r := &Reconciler{client: c, cfg: cfg, clock: clock.RealClock{}, suffix: randomSuffix, cache: newServeCache(),
		prober: NewHTTPProber(DefaultProbeTimeout)}
	for _, o := range opts {
		o(r)
	}
	if r.resolver == nil {
		r.resolver = &dashboardresolver.DNS{Options: cfg.Resources}
	}
	m, err := newServiceMetrics(r.registerer, c)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// SetupWithManager registers the indexes and the controller. What moves a RayService: its own
// changes, its RayClusters and Services, the pods of its active and pending clusters (head
// restarts, readiness), the EndpointSlices of its serve Service, and computed times (cluster
// deletion deadlines, Serve re-checks, the initializing timeout).
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("rayservice").
		For(&rayv1.RayService{}).
		Owns(&rayv1.RayCluster{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.rayServicesOfPod)).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.rayServicesOfEndpointSlice)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.cfg.MaxConcurrentReconciles}).
		Complete(r)
}

// phase is one named step of a reconcile. It records facts in the scope; stop ends the list.
type phase struct {
	name string
	run  func(ctx context.Context, s *scope) (stop bool, err error)
}

// Reconcile runs the phases of a RayService, writes its status once and then emits events.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rs := &rayv1.RayService{}
	if err := r.client.Get(ctx, req.NamespacedName, rs); err != nil {
		if apierrors.IsNotFound(err) {
			r.cache.forgetService(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting RayService: %w", err)
	}
	if managedByExternalController(rs) {
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("RayService", klog.KObj(rs))
	ctx = ctrl.LoggerInto(ctx, log)
	if !rs.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, rs)
	}
	if added, err := r.ensureFinalizer(ctx, rs); err != nil || added {
		return ctrl.Result{}, err
	}

	s := &scope{rs: rs, before: rs.DeepCopy(), now: r.clock.Now(), log: log}
	err := r.run(ctx, s, []phase{
		{"gathering RayClusters", r.gatherClusters},
		{"validating", r.validate},
		{"suspending", r.reconcileSuspend},
		{"checking the initializing timeout", r.checkInitializingTimeout},
		{"rolling out RayClusters", r.reconcileClusters},
		{"deploying Serve applications", r.reconcileServe},
		{"labelling serving pods", r.reconcileServeLabels},
		{"switching traffic", r.reconcileTraffic},
		{"counting serve endpoints", r.countServeEndpoints},
	}, []phase{
		{"deleting superseded RayClusters", r.collectGarbage},
	})

	computeStatus(s, err == nil)
	written, werr := r.writeStatus(ctx, s)
	r.emit(s, written)
	r.metrics.observe(s)
	if err := errors.Join(err, werr); err != nil {
		return ctrl.Result{}, err
	}
	if s.requeueAt.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: max(s.requeueAt.Sub(r.clock.Now()), time.Millisecond)}, nil
}

// run runs phases in order until one stops or fails, then always runs the final phases. Errors are
// wrapped with the phase name and joined.
func (r *Reconciler) run(ctx context.Context, s *scope, phases, final []phase) error {
	var errs []error
	for _, p := range phases {
		stop, err := p.run(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			break
		}
		if stop {
			break
		}
	}
	for _, p := range final {
		if _, err := p.run(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

// writeStatus patches the status when it changed, with an optimistic lock.
func (r *Reconciler) writeStatus(ctx context.Context, s *scope) (bool, error) {
	if !statusChanged(&s.before.Status, &s.rs.Status) {
		return false, nil
	}
	if err := r.client.Status().Patch(ctx, s.rs, client.MergeFromWithOptions(s.before, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, fmt.Errorf("patching RayService status: %w", err)
	}
	return true, nil
}

// emit sends the queued events. Events about status transitions are only sent when the status
// was written; events about actions on children are sent in any case (the action happened).
func (r *Reconciler) emit(s *scope, written bool) {
	if r.recorder == nil {
		return
	}
	for _, e := range s.events {
		r.recorder.Eventf(s.rs, nil, e.eventType, e.reason, e.action, "%s", eventnote.Fit(e.note))
	}
	for _, e := range transitionEvents(&s.before.Status, &s.rs.Status) {
		if written {
			r.recorder.Eventf(s.rs, nil, e.eventType, e.reason, e.action, "%s", eventnote.Fit(e.note))
		}
	}
}

// ensureFinalizer adds the finalizer that lets the operator delete the RayService's clusters
// before it goes away. It reports whether it patched (the patch brings the object back).
func (r *Reconciler) ensureFinalizer(ctx context.Context, rs *rayv1.RayService) (bool, error) {
	if controllerutil.ContainsFinalizer(rs, rayv1.RayServiceFinalizer) {
		return false, nil
	}
	before := rs.DeepCopy()
	controllerutil.AddFinalizer(rs, rayv1.RayServiceFinalizer)
	if err := r.client.Patch(ctx, rs, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, fmt.Errorf("adding finalizer: %w", err)
	}
	return true, nil
}

// managedByExternalController reports whether spec.managedBy hands the RayService to another
// controller (MultiKueue); then this operator must not touch it at all.
func managedByExternalController(rs *rayv1.RayService) bool {
	return rs.Spec.ManagedBy != nil && *rs.Spec.ManagedBy != rayv1.KubeRayController
}
