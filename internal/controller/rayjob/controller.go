package rayjob

import (
	"context"
	"errors"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// +kubebuilder:rbac:groups=ray.io,resources=rayjobs,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=ray.io,resources=rayjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ray.io,resources=rayjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=ray.io,resources=rayclusters,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=scheduling.volcano.sh,resources=podgroups,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services/proxy,verbs=get;create
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update

// Reconciler reconciles RayJobs.
type Reconciler struct {
	reconcilekit.Deps
	client  client.Client
	cfg     Config
	metrics *jobMetrics
	watcher *jobWatcher
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler that reads and writes through c (the manager's cached client).
func New(c client.Client, cfg Config, deps reconcilekit.Deps, opts ...Option) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	r := &Reconciler{client: c, cfg: cfg, watcher: newJobWatcher()}
	r.Deps = deps.WithDefaults(cfg.Settings)
	for _, o := range opts {
		o(r)
	}
	var err error
	if r.metrics, err = newJobMetrics(r.Registerer, c); err != nil {
		return nil, err
	}
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
		WithOptions(r.cfg.ControllerOptions()).
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
	// The finalizer lets the operator stop the Ray job before the RayJob goes away.
	if added, err := reconcilekit.AddFinalizer(ctx, r.client, rj, rayv1.RayJobStopJobFinalizer); err != nil || added {
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
		evs = append(reconcilekit.Events{ev}, evs...)
	}
	if statusChanged(&before.Status, &rj.Status) {
		if err := r.client.Status().Patch(ctx, rj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, errors.Join(actErr, fmt.Errorf("patching RayJob status: %w", err))
		}
	}
	evs.Emit(r.Recorder, rj)
	r.metrics.observe(rj, before.Status.JobDeploymentStatus, r.Clock.Now())
	if rj.Status.JobDeploymentStatus != rayv1.JobDeploymentStatusRunning {
		r.watcher.stop(req.NamespacedName)
	}
	if actErr != nil {
		return ctrl.Result{}, actErr
	}
	return ctrl.Result{RequeueAfter: requeueAfter(d.requeueAt, r.Clock.Now())}, nil
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
	if _, err := reconcilekit.RemoveFinalizer(ctx, r.client, rj, rayv1.RayJobStopJobFinalizer); err != nil {
		return err
	}
	d.events.Emit(r.Recorder, rj)
	return nil
}

// managedByExternalController reports whether spec.managedBy hands the RayJob to another
// controller (MultiKueue); then this operator must not touch it at all.
func managedByExternalController(rj *rayv1.RayJob) bool {
	return rj.Spec.ManagedBy != nil && *rj.Spec.ManagedBy != rayv1.KubeRayController
}
