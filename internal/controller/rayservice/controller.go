package rayservice

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
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
	reconcilekit.Deps
	client client.Client
	// reader reads uncached what the cache leaves out (Services without the operator's label).
	reader  client.Reader
	cfg     Config
	prober  Prober
	metrics *serviceMetrics
	cache   *serveCache
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler that reads and writes through c (the manager's cached client).
func New(c client.Client, cfg Config, deps reconcilekit.Deps, opts ...Option) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	r := &Reconciler{client: c, cfg: cfg, cache: newServeCache(), prober: NewHTTPProber(DefaultProbeTimeout)}
	r.Deps = deps.WithDefaults(cfg.Settings)
	for _, o := range opts {
		o(r)
	}
	if r.reader == nil {
		r.reader = c
	}
	var err error
	if r.metrics, err = newServiceMetrics(r.Registerer, c); err != nil {
		return nil, err
	}
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
		WithOptions(r.cfg.ControllerOptions()).
		Complete(r)
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
	// The finalizer lets the operator delete the RayService's clusters before it goes away.
	if added, err := reconcilekit.AddFinalizer(ctx, r.client, rs, rayv1.RayServiceFinalizer); err != nil || added {
		return ctrl.Result{}, err
	}

	s := &scope{rs: rs, before: rs.DeepCopy(), now: r.Clock.Now(), log: log}
	// The phases record facts in the scope; one that stops ends the list, and the garbage
	// collection of superseded clusters runs whatever happened.
	err := reconcilekit.RunPhases(ctx, s, []reconcilekit.Phase[*scope]{
		{Name: "gathering RayClusters", Run: r.gatherClusters},
		{Name: "validating", Run: r.validate},
		{Name: "suspending", Run: r.reconcileSuspend},
		{Name: "checking the initializing timeout", Run: r.checkInitializingTimeout},
		{Name: "rolling out RayClusters", Run: r.reconcileClusters},
		{Name: "deploying Serve applications", Run: r.reconcileServe},
		{Name: "labelling serving pods", Run: r.reconcileServeLabels},
		{Name: "switching traffic", Run: r.reconcileTraffic},
		{Name: "counting serve endpoints", Run: r.countServeEndpoints},
	}, []reconcilekit.Phase[*scope]{
		{Name: "deleting superseded RayClusters", Run: r.collectGarbage},
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
	return ctrl.Result{RequeueAfter: max(s.requeueAt.Sub(r.Clock.Now()), time.Millisecond)}, nil
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
	s.events.Emit(r.Recorder, s.rs)
	if written {
		transitionEvents(&s.before.Status, &s.rs.Status).Emit(r.Recorder, s.rs)
	}
}

// managedByExternalController reports whether spec.managedBy hands the RayService to another
// controller (MultiKueue); then this operator must not touch it at all.
func managedByExternalController(rs *rayv1.RayService) bool {
	return rs.Spec.ManagedBy != nil && *rs.Spec.ManagedBy != rayv1.KubeRayController
}
