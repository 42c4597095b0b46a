package rayjob

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/eventnote"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
)

// +kubebuilder:rbac:groups=ray.io,resources=rayjobs,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=ray.io,resources=rayjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ray.io,resources=rayjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=ray.io,resources=rayclusters,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services/proxy,verbs=get;create
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update

// Reconciler reconciles RayJobs.
type Reconciler struct {
	client     client.Client
	cfg        Config
	clock      clock.PassiveClock
	recorder   events.EventRecorder
	resolver   dashboardresolver.Resolver
	suffix     func() string
	registerer prometheus.Registerer
	metrics    *jobMetrics
	watcher    *jobWatcher
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler that reads and writes through c (the manager's cached client).
func New(c client.Client, cfg Config, opts ...Option) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	r := &Reconciler{client: c, cfg: cfg, clock: clock.RealClock{}, suffix: randomSuffix, watcher: newJobWatcher()}
	for _, o := range opts {
		o(r)
	}
	if r.resolver == nil {
		r.resolver = &dashboardresolver.DNS{Options: cfg.Resources}
	}
	m, err := newJobMetrics(r.registerer, c)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// SetupWithManager registers the index and the controller. Every non-terminal state is moved by a
// watch or a computed deadline: the RayCluster and its head pod (through the cluster-name index,
// which also covers clusters selected with clusterSelector), the submitter Job, the RayJob itself,
// and the dashboard's log stream of a Running job.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		r.watcher.stopAll()
		return nil
	})); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("rayjob").
		For(&rayv1.RayJob{}).
		Owns(&batchv1.Job{}).
		Owns(&corev1.Service{}).
		Watches(&rayv1.RayCluster{}, handler.EnqueueRequestsFromMapFunc(r.rayJobsUsingCluster)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.rayJobsUsingCluster)).
		WatchesRawSource(source.Channel(r.watcher.events, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.cfg.MaxConcurrentReconciles}).
		Complete(r)
}

// Reconcile moves one RayJob through its state machine: validate, gather facts, decide, act,
// write the status once, then emit events.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rj := &rayv1.RayJob{}
	if err := r.client.Get(ctx, req.NamespacedName, rj); err != nil {
		if apierrors.IsNotFound(err) {
			r.watcher.stop(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting RayJob: %w", err)
	}
	if managedByExternalController(rj) {
		return ctrl.Result{}, nil
	}
	if !rj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.reconcileDelete(ctx, rj)
	}
	if added, err := r.ensureFinalizer(ctx, rj); err != nil || added {
		return ctrl.Result{}, err
	}

	before := rj.DeepCopy()
	var d decision
	var actErr error
	if vf := validate(rj, r.cfg); vf != nil {
		d = validationFailed(rj, vf)
	} else {
		in, err := r.gather(ctx, rj)
		if err != nil {
			return ctrl.Result{}, err
		}
		d = decide(in)
		actErr = r.act(ctx, in, &d)
	}

	rj.Status = d.status
	if actErr == nil {
		rj.Status.ObservedGeneration = rj.Generation
	}
	evs := d.events
	if ev, ok := transitionEvent(&before.Status, &rj.Status); ok {
		evs = append([]event{ev}, evs...)
	}
	if statusChanged(&before.Status, &rj.Status) {
		if err := r.client.Status().Patch(ctx, rj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, errors.Join(actErr, fmt.Errorf("patching RayJob status: %w", err))
		}
	}
	r.emit(rj, evs)
	r.metrics.observe(rj, before.Status.JobDeploymentStatus, r.clock.Now())
	if rj.Status.JobDeploymentStatus != rayv1.JobDeploymentStatusRunning {
		r.watcher.stop(req.NamespacedName)
	}
	if actErr != nil {
		return ctrl.Result{}, actErr
	}
	return ctrl.Result{RequeueAfter: requeueAfter(d.requeueAt, r.clock.Now())}, nil
}

// reconcileDelete stops a job that is still running (best effort: the cluster may be gone too)
// and releases the RayJob. Its children go with it through their owner references.
func (r *Reconciler) reconcileDelete(ctx context.Context, rj *rayv1.RayJob) error {
	key := types.NamespacedName{Namespace: rj.Namespace, Name: rj.Name}
	r.watcher.stop(key)
	if !controllerutil.ContainsFinalizer(rj, rayv1.RayJobStopJobFinalizer) {
		return nil
	}
	var d decision
	if !rayv1.IsJobTerminal(rj.Status.JobStatus) && rj.Status.JobID != "" && rj.Status.RayClusterName != "" {
		cluster, err := r.getCluster(ctx, rj)
		if err == nil {
			r.stopJob(ctx, cluster, rj.Status.JobID, &d)
		}
	}
	before := rj.DeepCopy()
	controllerutil.RemoveFinalizer(rj, rayv1.RayJobStopJobFinalizer)
	if err := r.client.Patch(ctx, rj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer: %w", err)
	}
	r.emit(rj, d.events)
	return nil
}

// ensureFinalizer adds the finalizer that lets the operator stop the Ray job before the RayJob
// goes away. It reports whether it patched (the patch brings the RayJob back through the watch).
func (r *Reconciler) ensureFinalizer(ctx context.Context, rj *rayv1.RayJob) (bool, error) {
	if controllerutil.ContainsFinalizer(rj, rayv1.RayJobStopJobFinalizer) {
		return false, nil
	}
	before := rj.DeepCopy()
	controllerutil.AddFinalizer(rj, rayv1.RayJobStopJobFinalizer)
	if err := r.client.Patch(ctx, rj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, fmt.Errorf("adding finalizer: %w", err)
	}
	return true, nil
}

func (r *Reconciler) emit(rj *rayv1.RayJob, evs []event) {
	if r.recorder == nil {
		return
	}
	for _, e := range evs {
		r.recorder.Eventf(rj, nil, e.eventType, e.reason, e.action, "%s", eventnote.Truncate(e.note, eventnote.Max))
	}
}

// managedByExternalController reports whether spec.managedBy hands the RayJob to another
// controller (MultiKueue); then this operator must not touch it at all.
func managedByExternalController(rj *rayv1.RayJob) bool {
	return rj.Spec.ManagedBy != nil && *rj.Spec.ManagedBy != rayv1.KubeRayController
}
