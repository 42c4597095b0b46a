package raycronjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// +kubebuilder:rbac:groups=ray.io,resources=raycronjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=ray.io,resources=raycronjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ray.io,resources=raycronjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=ray.io,resources=rayjobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update

// Reconciler reconciles RayCronJobs.
type Reconciler struct {
	reconcilekit.Deps
	client  client.Client
	live    client.Reader
	cfg     Config
	metrics *runMetrics
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler that reads and writes through c (the manager's cached client).
func New(c client.Client, cfg Config, deps reconcilekit.Deps, opts ...Option) (*Reconciler, error) {
	r := &Reconciler{client: c, cfg: cfg.withDefaults()}
	r.Deps = deps.WithDefaults(r.cfg.Settings)
	for _, o := range opts {
		o(r)
	}
	if r.live == nil {
		r.live = c
	}
	var err error
	if r.metrics, err = newRunMetrics(r.Registerer); err != nil {
		return nil, err
	}
	return r, nil
}

// SetupWithManager registers the controller. It watches the RayCronJobs and the RayJobs they
// control (so the active list and the history limits follow the RayJobs' states); schedule times
// are reached by requeueing at the computed next time, never by polling.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("raycronjob").
		For(&rayv1.RayCronJob{}).
		Owns(&rayv1.RayJob{}).
		WithOptions(r.cfg.ControllerOptions()).
		Complete(r)
}

// Reconcile handles at most one schedule time of one RayCronJob: gather its RayJobs, decide, act,
// write the status once, then emit the events.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cj := &rayv1.RayCronJob{}
	if err := r.client.Get(ctx, req.NamespacedName, cj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cj.DeletionTimestamp.IsZero() {
		// The RayJobs go with it through their owner references.
		return ctrl.Result{}, nil
	}
	jobs, err := r.gather(ctx, cj)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	d := decide(observed{cronJob: cj, jobs: jobs, now: now, local: r.cfg.Location})
	if err := r.act(ctx, &d); err != nil {
		// Nothing is written: the same schedule time is handled again on the retry.
		return ctrl.Result{}, err
	}
	before := cj.DeepCopy()
	cj.Status = d.status
	r.metrics.observe(cj.Namespace, &d)
	if statusChanged(&before.Status, &cj.Status) {
		if err := r.client.Status().Patch(ctx, cj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			d.actionEvents.Emit(r.Recorder, cj)
			return ctrl.Result{}, fmt.Errorf("patching RayCronJob status: %w", err)
		}
	}
	d.actionEvents.Emit(r.Recorder, cj)
	d.events.Emit(r.Recorder, cj)
	return ctrl.Result{RequeueAfter: requeueAfter(d.requeueAt, r.Clock.Now())}, nil
}

// gather lists the RayJobs cj controls, oldest schedule time first. A RayJob the status lists as
// active but the cache does not show yet is read from the API server, so a RayJob created a moment
// ago still counts for the concurrency policy.
func (r *Reconciler) gather(ctx context.Context, cj *rayv1.RayCronJob) ([]rayv1.RayJob, error) {
	var list rayv1.RayJobList
	if err := r.client.List(ctx, &list, client.InNamespace(cj.Namespace),
		client.MatchingLabels{rayv1.RayCronJobNameLabelKey: cj.Name}); err != nil {
		return nil, fmt.Errorf("listing RayJobs of RayCronJob: %w", err)
	}
	var jobs []rayv1.RayJob
	seen := map[string]bool{}
	for _, rj := range list.Items {
		if metav1.IsControlledBy(&rj, cj) {
			jobs = append(jobs, rj)
			seen[rj.Name] = true
		}
	}
	for _, ref := range cj.Status.Active {
		if seen[ref.Name] {
			continue
		}
		rj := &rayv1.RayJob{}
		err := r.live.Get(ctx, client.ObjectKey{Namespace: cj.Namespace, Name: ref.Name}, rj)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("reading active RayJob %s: %w", ref.Name, err)
		case metav1.IsControlledBy(rj, cj):
			jobs = append(jobs, *rj)
		}
	}
	sortBySchedule(jobs)
	return jobs, nil
}

// act creates and deletes the RayJobs the decision names. A RayJob that already exists (a retry
// after a failed status write) or is already gone is not an error.
func (r *Reconciler) act(ctx context.Context, d *decision) error {
	var errs []error
	for i := range d.delete {
		rj := &d.delete[i]
		err := r.client.Delete(ctx, rj, client.PropagationPolicy("Background"), client.Preconditions{UID: &rj.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting RayJob %s: %w", rj.Name, err))
		}
	}
	if d.create != nil {
		if err := r.client.Create(ctx, d.create); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("creating RayJob %s: %w", d.create.Name, err))
		}
	}
	return errors.Join(errs...)
}

// requeueAfter is how long until at, at least a moment (a due time replays at once); zero when
// nothing is scheduled.
func requeueAfter(at, now time.Time) time.Duration {
	if at.IsZero() {
		return 0
	}
	return max(at.Sub(now), 100*time.Millisecond)
}
