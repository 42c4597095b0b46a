package raycluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/namedwatch"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// Reconciler reconciles RayClusters.
type Reconciler struct {
	reconcilekit.Deps
	client client.Client
	// reader reads, uncached, the objects users bring (Secrets, claims, service accounts they
	// name): the manager caches only objects carrying the operator's labels.
	reader  client.Reader
	cfg     Config
	metrics *clusterMetrics
	exp     *expectations
	// serviceExp remembers the Services created and not yet in the cache (one group per
	// cluster), so that a reconcile running before their watch events does not create them again.
	serviceExp *expectations
	// statusWrites keeps reconciles off a cached RayCluster older than the last status write.
	statusWrites *statusWrites
	// secretWaits watches, by name, the users' Secrets that clusters wait for (nil until
	// SetupWithManager).
	secretWaits *namedwatch.Watcher
	// random is where generated auth tokens come from.
	random io.Reader
	// replacedHeads remembers, per cluster, the head pod deleted for replacement until its
	// successor is ready, so HeadPodReady keeps saying why even when the status in the cache lags
	// behind the last write.
	replacedHeads sync.Map // types.NamespacedName -> *headReplace
	// settling holds, per cluster, the end of the window in which progress is kept out of the
	// status after pods were created or deleted (holdStatus).
	settling sync.Map // types.NamespacedName -> time.Time
	// observe, when set (tests), is called after every Reconcile returns.
	observe func(req ctrl.Request)
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler that reads and writes through c (the manager's cached client in
// production).
func New(c client.Client, cfg Config, deps reconcilekit.Deps, opts ...Option) (*Reconciler, error) {
	cfg = cfg.withDefaults()
	r := &Reconciler{client: c, cfg: cfg, random: rand.Reader, exp: newExpectations(cfg.ExpectationTimeout),
		serviceExp: newExpectations(cfg.ExpectationTimeout), statusWrites: newStatusWrites(cfg.ExpectationTimeout)}
	r.Deps = deps.WithDefaults(cfg.Settings)
	for _, o := range opts {
		o(r)
	}
	if r.reader == nil {
		r.reader = c
	}
	var err error
	if r.metrics, err = newClusterMetrics(r.Registerer, c); err != nil {
		return nil, err
	}
	return r, nil
}

// SetupWithManager registers the owner-UID indexes and the controller with its watches.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	mc, err := metadata.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("building the metadata client of the Secret watches: %w", err)
	}
	r.secretWaits = namedwatch.New(mc, corev1.SchemeGroupVersion.WithResource("secrets"), mgr.GetLogger().WithName("awaited-secrets"))
	if err := mgr.Add(r.secretWaits); err != nil {
		return fmt.Errorf("adding the Secret watches: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("raycluster").
		// Status-only updates (including our own status writes) do not trigger a reconcile; our
		// own finalizer patches do, since a reconcile that patches them ends there.
		For(&rayv1.RayCluster{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{},
			reconcilekit.FinalizersChangedPredicate{}))).
		Owns(&corev1.Pod{}).
		Owns(&corev1.Service{}).
		Owns(&batchv1.Job{}).
		Owns(&networkingv1.Ingress{}).
		// Secrets and claims are watched by metadata only (the operator never caches Secret
		// data) and mapped by name to the clusters that use them, so a deleted one the operator
		// created is created again. The operator's cache holds only its own Secrets: a user's
		// Secret a cluster waits for is watched on its own, by name, while the cluster waits.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(clustersReferencing(r.client, AuthSecretIndex)), builder.OnlyMetadata).
		WatchesRawSource(r.secretWaits.Source())
	if r.cfg.Enabled(features.RayClusterNetworkPolicy) {
		b = b.Owns(&networkingv1.NetworkPolicy{})
	}
	if r.cfg.Enabled(features.GCSFaultToleranceEmbeddedStorage) {
		b = b.Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(clustersReferencing(r.client, GCSStorageClaimIndex)), builder.OnlyMetadata)
	}
	if r.cfg.Enabled(features.RayClusterMTLS) {
		b = r.watchCertificates(mgr, b)
	}
	b = r.watchBatchSchedulingGroups(b)
	b, err = r.setupWorkloadScheduling(mgr, b)
	if err != nil {
		return err
	}
	return b.WithOptions(r.cfg.ControllerOptions()).Complete(r)
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
			r.serviceExp.forget(req.NamespacedName)
			r.statusWrites.forget(req.NamespacedName)
			if r.secretWaits != nil {
				r.secretWaits.Forget(req.NamespacedName)
			}
			r.replacedHeads.Delete(req.NamespacedName)
			r.settling.Delete(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting RayCluster: %w", err)
	}
	if managedByExternalController(cluster) {
		return ctrl.Result{}, nil
	}
	if r.statusWrites.stale(req.NamespacedName, cluster.ResourceVersion, r.Clock.Now()) {
		// The cache has not caught up with our last status write (whose watch event the
		// predicates drop): one read instead of a status patch doomed to a 409 and a retry.
		if err := r.reader.Get(ctx, req.NamespacedName, cluster); err != nil {
			if apierrors.IsNotFound(err) {
				// Deleted since: the cache's delete event reconciles it.
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, fmt.Errorf("reading RayCluster past the cache after a status write: %w", err)
		}
	}
	s, err := r.newScope(ctx, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !cluster.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}
	if patched, err := r.reconcileFinalizer(ctx, s); err != nil || patched {
		return ctrl.Result{}, err
	}

	var reconcileErr error
	if s.validationErr = validateCluster(cluster, r.cfg); s.validationErr == nil {
		reconcileErr = reconcilekit.RunPhases(ctx, s, r.phases(), r.finalPhases())
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
		if r.holdStatus(s, before, reconcileErr, transitions) {
			// Metrics see what the API holds; the next reconcile computes the status again.
			cluster.Status = before.Status
		} else {
			cluster.Status.LastUpdateTime = ptrTime(s.now)
			if err := r.client.Status().Patch(ctx, cluster, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
				return ctrl.Result{}, errors.Join(reconcileErr, fmt.Errorf("patching RayCluster status: %w", err))
			}
			r.statusWrites.wrote(s.key, before.ResourceVersion, s.now)
		}
	}
	// One event for everything this reconcile created at start-up (KubeRay writes one per
	// object): events are API writes too.
	append(s.events, transitions.events...).Merged(EventCreatedHeadPod, EventCreatedWorkerPod, EventCreatedService).Emit(r.Recorder, cluster)
	r.metrics.observe(cluster, transitions)

	if reconcileErr != nil {
		return ctrl.Result{}, reconcileErr
	}
	if transitions.requeueNow {
		s.wakeAt(s.now)
	}
	return r.result(s), nil
}

// holdStatus reports whether the status computed for s is mere start-up progress that may wait:
// for StatusSettleTime after this controller created or deleted pods, a cluster that is neither
// ready nor was ready, has no failure, no suspension and no transition to announce keeps its
// status as it is, and the cluster is looked at again when the window ends. Pods that come up
// within the window thus cost one status write (ready) instead of one per step (pods unseen,
// pending, ready); a cluster whose pods take longer shows its progress when the window ends.
func (r *Reconciler) holdStatus(s *scope, old *rayv1.RayCluster, reconcileErr error, t statusTransitions) bool {
	if s.podsChanged {
		if v, ok := r.settling.Load(s.key); !ok || !s.now.Before(v.(time.Time)) {
			r.settling.Store(s.key, s.now.Add(r.cfg.StatusSettleTime))
		}
	}
	v, ok := r.settling.Load(s.key)
	if !ok {
		return false
	}
	until := v.(time.Time)
	c := s.cluster
	if !s.now.Before(until) || c.Status.State == rayv1.ClusterStateReady {
		r.settling.Delete(s.key)
		return false
	}
	if reconcileErr != nil || s.validationErr != nil || s.replicaFailure != nil || s.podsBlocked != "" || s.headReplaced != nil ||
		len(t.events) > 0 || t.requeueNow || t.provisioned || clusterSuspendRequested(c) ||
		old.Status.State == rayv1.ClusterStateReady || c.Status.State != old.Status.State {
		return false
	}
	s.wakeAt(until)
	return true
}

// phases are the steps of a normal reconcile, in order; the first error ends the list.
func (r *Reconciler) phases() []reconcilekit.Phase[*scope] {
	return []reconcilekit.Phase[*scope]{
		reconcilekit.Step("autoscaler RBAC", r.reconcileAutoscalerRBAC),
		reconcilekit.Step("ingress", r.reconcileIngress),
		reconcilekit.Step("auth secret", r.reconcileAuthSecret),
		reconcilekit.Step("head service", r.reconcileHeadService),
		reconcilekit.Step("headless worker service", r.reconcileHeadlessWorkerService),
		reconcilekit.Step("serve service", r.reconcileServeService),
		reconcilekit.Step("gcs storage", r.reconcileGCSStorage),
		// Before the pods, so that they start isolated.
		reconcilekit.Step("network policies", r.reconcileNetworkPolicies),
		// Before the pods, which mount the certificates' Secrets.
		reconcilekit.Step("mtls certificates", r.reconcileMTLS),
		// Before the pods, which name the PodGroup.
		reconcilekit.Step("workload scheduling", r.reconcileWorkloadScheduling),
		reconcilekit.Step("pods", r.reconcilePods),
	}
}

// finalPhases run after the phases whatever happened to them. The Services and pods the phases
// planned are created there, together: their creates do not depend on one another, so one
// reconcile costs one API round trip of latency instead of one per object. A phase that failed
// after others planned creates does not cancel them (the objects were wanted before the failure,
// as when they were created one by one).
func (r *Reconciler) finalPhases() []reconcilekit.Phase[*scope] {
	return []reconcilekit.Phase[*scope]{reconcilekit.Step("create children", r.issueCreates)}
}

func (r *Reconciler) newScope(ctx context.Context, cluster *rayv1.RayCluster) (*scope, error) {
	s := &scope{cluster: cluster, key: client.ObjectKeyFromObject(cluster), now: r.Clock.Now(),
		conditions: r.cfg.Enabled(features.RayClusterStatusConditions)}
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
	names := make([]string, len(svcs.Items))
	for i := range svcs.Items {
		names[i] = svcs.Items[i].Name
	}
	if ok, wake := r.serviceExp.createsSatisfied(s.key, servicesGroup, names, s.now); !ok {
		s.servicesPending = true
		s.wakeAt(wake)
	}
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
	d := s.requeueAt.Sub(r.Clock.Now())
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return ctrl.Result{RequeueAfter: d}
}

// managedByExternalController reports whether spec.managedBy hands the cluster to another
// controller (MultiKueue); then this operator must not touch it at all.
func managedByExternalController(c *rayv1.RayCluster) bool {
	return c.Spec.ManagedBy != nil && *c.Spec.ManagedBy != rayv1.KubeRayController
}
