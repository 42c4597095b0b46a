package raycluster

import (
	"context"
	"errors"
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Event reasons of the pods phase (KubeRay's strings).
const (
	EventCreatedHeadPod          = "CreatedHeadPod"
	EventFailedToCreateHeadPod   = "FailedToCreateHeadPod"
	EventDeletedHeadPod          = "DeletedHeadPod"
	EventFailedToDeleteHeadPod   = "FailedToDeleteHeadPod"
	EventCreatedWorkerPod        = "CreatedWorkerPod"
	EventFailedToCreateWorkerPod = "FailedToCreateWorkerPod"
	EventDeletedWorkerPod        = "DeletedWorkerPod"
	EventFailedToDeleteWorkerPod = "FailedToDeleteWorkerPod"
	EventDeletedPod              = "DeletedPod"
	EventFailedToDeletePod       = "FailedToDeletePodCollection"
)

// reconcilePods handles, in order: suspension, the Recreate upgrade strategy, the head pod, then
// each worker group (which includes the RollingUpdate strategy).
func (r *Reconciler) reconcilePods(ctx context.Context, s *scope) error {
	c := s.cluster
	if s.conditions {
		// Two-phase suspend: pods are deleted only once Suspending is recorded in status, so a
		// suspension that started always completes and Kueue sees it before pods disappear.
		if conditionTrue(c.Status.Conditions, rayv1.RayClusterSuspending) {
			return r.suspendPods(ctx, s, "the cluster is suspending")
		}
		if conditionTrue(c.Status.Conditions, rayv1.RayClusterSuspended) || clusterSuspendRequested(c) {
			return nil
		}
	} else if clusterSuspendRequested(c) {
		return r.suspendPods(ctx, s, "the cluster is suspended")
	}
	if s.podsBlocked != "" {
		// Pods could not start; those already running are left alone.
		return nil
	}
	if done, err := r.reconcileRecreate(ctx, s); done || err != nil {
		return err
	}
	if err := r.reconcileBatchScheduling(ctx, s); err != nil {
		return fmt.Errorf("batch scheduling: %w", err)
	}
	if err := r.reconcileHead(ctx, s); err != nil {
		return err
	}
	var errs []error
	for i := range c.Spec.WorkerGroupSpecs {
		if err := r.reconcileWorkerGroup(ctx, s, &c.Spec.WorkerGroupSpecs[i]); err != nil {
			errs = append(errs, fmt.Errorf("worker group %s: %w", c.Spec.WorkerGroupSpecs[i].GroupName, err))
		}
	}
	return errors.Join(errs...)
}

// reconcileHead plans the create of the head pod when it is missing and replaces it when it cannot come back by
// itself (resources.ShouldDeletePod).
func (r *Reconciler) reconcileHead(ctx context.Context, s *scope) error {
	c := s.cluster
	if ok, wake := r.exp.satisfied(s.key, rayv1.HeadGroupName, podsOfType(s.allPods, rayv1.HeadNode), s.now); !ok {
		s.wakeAt(wake)
		return nil
	}
	heads := s.headPods()
	switch len(heads) {
	case 0:
		if conditionTrue(c.Status.Conditions, rayv1.RayClusterProvisioned) && c.Annotations[rayv1.DisableProvisionedHeadRestartAnnotationKey] == "true" {
			return nil
		}
		pod := resources.BuildHeadPod(c, r.cfg.Resources)
		failed := func(err error) error {
			s.fail(rayv1.FailedCreateHeadPod, err)
			s.events.Add(corev1.EventTypeWarning, EventFailedToCreateHeadPod, "Create", "Failed to create head pod: %v", err)
			return fmt.Errorf("creating head pod %s: %w", podName(pod), err)
		}
		err := r.planPodCreate(s, rayv1.HeadGroupName, pod, func(err error) error {
			if err != nil {
				return failed(err)
			}
			s.events.Add(corev1.EventTypeNormal, EventCreatedHeadPod, "Create", "Created head pod %s", pod.Name)
			return nil
		})
		if err != nil {
			return failed(err)
		}
		return nil
	case 1:
		head := &heads[0]
		del, why := resources.ShouldDeletePod(head)
		if !del {
			return nil
		}
		if err := r.deletePod(ctx, s, rayv1.HeadGroupName, head); err != nil {
			s.fail(rayv1.FailedDeleteHeadPod, err)
			s.events.Add(corev1.EventTypeWarning, EventFailedToDeleteHeadPod, "Delete", "Failed to delete head pod %s: %v", head.Name, err)
			return fmt.Errorf("deleting head pod %s: %w", head.Name, err)
		}
		s.headReplaced = &headReplace{pod: head.Name, reason: why, current: true}
		s.events.Add(corev1.EventTypeNormal, EventDeletedHeadPod, "Delete", "Deleted head pod %s to recreate it: %s", head.Name, why)
		return nil
	default:
		return fmt.Errorf("found %d head pods, expected 1", len(heads))
	}
}

// reconcileRecreate implements upgradeStrategy Recreate: when the cluster spec hash recorded on
// the head pod differs from the current one, every pod is deleted (and recreated next round). It
// reports whether it acted.
func (r *Reconciler) reconcileRecreate(ctx context.Context, s *scope) (bool, error) {
	if upgradeType(s.cluster) != rayv1.RayClusterRecreate {
		return false, nil
	}
	heads := s.headPods()
	if len(heads) != 1 {
		return false, nil
	}
	head := &heads[0]
	want := resources.ClusterSpecHash(s.cluster)
	if head.Annotations[rayv1.UpgradeStrategyRecreateHashKey] == want {
		return false, nil
	}
	if v := r.cfg.Resources.OperatorVersion; head.Annotations[rayv1.KubeRayVersion] != v {
		// The hash may differ only because another operator version computed it: re-stamp
		// instead of restarting every cluster on an operator upgrade.
		patch := client.MergeFrom(head.DeepCopy())
		if head.Annotations == nil {
			head.Annotations = map[string]string{}
		}
		head.Annotations[rayv1.UpgradeStrategyRecreateHashKey] = want
		head.Annotations[rayv1.KubeRayVersion] = v
		if err := r.client.Patch(ctx, head, patch); err != nil {
			return true, fmt.Errorf("re-stamping head pod %s: %w", head.Name, err)
		}
		return true, nil
	}
	if r.awaitPendingCreates(s) {
		// A pod created by an earlier reconcile is not cached yet and would survive the
		// deletion (keeping the old spec); wait for it (its watch event or the expectation's
		// expiry brings the cluster back).
		return true, nil
	}
	return true, r.deleteAllPods(ctx, s, "the cluster spec changed and upgradeStrategy is Recreate")
}

// suspendPods deletes every cached pod of a suspending cluster and records whether a pod create
// is still pending, in which case the suspension is not complete yet (status.go).
func (r *Reconciler) suspendPods(ctx context.Context, s *scope, why string) error {
	if err := r.deleteAllPods(ctx, s, why); err != nil {
		return err
	}
	r.awaitPendingCreates(s)
	return nil
}

// awaitPendingCreates records in the scope whether any group of the cluster has a pod create
// the cache has not shown yet, and asks to be woken when the earliest one expires.
func (r *Reconciler) awaitPendingCreates(s *scope) bool {
	pending, wake := r.exp.pendingCreates(s.key, s.allPods, s.now)
	if pending {
		s.createsPending = true
		s.wakeAt(wake)
	}
	return pending
}

// deleteAllPods deletes every pod of the cluster, one by one so that only pods this cluster
// controls are touched.
func (r *Reconciler) deleteAllPods(ctx context.Context, s *scope, why string) error {
	var deleted []string
	var errs []error
	for i := range s.pods {
		p := &s.pods[i]
		if err := r.deletePod(ctx, s, podGroup(p), p); err != nil {
			errs = append(errs, fmt.Errorf("deleting pod %s: %w", p.Name, err))
			continue
		}
		deleted = append(deleted, p.Name)
	}
	if len(deleted) > 0 {
		s.events.Add(corev1.EventTypeNormal, EventDeletedPod, "Delete", "Deleted pods %s: %s", listNames(deleted), why)
	}
	if err := errors.Join(errs...); err != nil {
		s.fail(rayv1.FailedDeleteAllPods, err)
		s.events.Add(corev1.EventTypeWarning, EventFailedToDeletePod, "Delete", "Failed to delete pods: %v", err)
		return err
	}
	return nil
}

// planPodCreate completes pod (controller reference, scheduler metadata) and plans its create;
// issueCreates sends it with the reconcile's other creates. Once the create succeeded, the pod is
// expected in group (so no later reconcile creates it again before the cache shows it); done is
// then told how the create went.
func (r *Reconciler) planPodCreate(s *scope, group string, pod *corev1.Pod, done func(err error) error) error {
	if pod == nil {
		return errors.New("the pod builder returned nothing")
	}
	if err := ensureControllerRef(s.cluster, pod, r.client); err != nil {
		return err
	}
	if err := r.addBatchSchedulingMetadata(s, group, pod); err != nil {
		return err
	}
	r.addWorkloadSchedulingMetadata(s, pod)
	s.creates.plan(pod, func(_ context.Context, err error) error {
		if err == nil {
			r.exp.expectCreate(s.key, group, pod.Name, s.now)
			s.podsChanged = true
		}
		return done(err)
	})
	return nil
}

// podName names a pod in messages: its name, or before the API server gave it one, its
// generateName followed by "*".
func podName(p *corev1.Pod) string {
	if p == nil {
		return "(none)"
	}
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}

func (r *Reconciler) deletePod(ctx context.Context, s *scope, group string, pod *corev1.Pod) error {
	uid := pod.UID
	err := r.client.Delete(ctx, pod, client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	r.exp.expectDelete(s.key, group, pod)
	s.podsChanged = true
	return nil
}

// ensureControllerRef makes the cluster the controller of obj unless the builder already did.
func ensureControllerRef(cluster *rayv1.RayCluster, obj client.Object, c client.Client) error {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.UID == cluster.UID {
			return nil
		}
	}
	if err := controllerutil.SetControllerReference(cluster, obj, c.Scheme()); err != nil {
		return fmt.Errorf("setting controller reference: %w", err)
	}
	return nil
}

// Spec helpers.

func podGroup(p *corev1.Pod) string {
	if p.Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.HeadNode) {
		return rayv1.HeadGroupName
	}
	return p.Labels[rayv1.RayNodeGroupLabelKey]
}

func clusterSuspendRequested(c *rayv1.RayCluster) bool {
	return c.Spec.Suspend != nil && *c.Spec.Suspend
}

func groupSuspended(g *rayv1.WorkerGroupSpec) bool { return g.Suspend != nil && *g.Suspend }

func autoscalingEnabled(c *rayv1.RayCluster) bool {
	return c.Spec.EnableInTreeAutoscaling != nil && *c.Spec.EnableInTreeAutoscaling
}

func hosts(g *rayv1.WorkerGroupSpec) int32 { return max(g.NumOfHosts, 1) }

// desiredReplicas is replicas clamped to [minReplicas, maxReplicas] (nil replicas = minReplicas).
func desiredReplicas(g *rayv1.WorkerGroupSpec) int32 {
	lo, hi := deref(g.MinReplicas, 0), deref(g.MaxReplicas, math.MaxInt32)
	n := deref(g.Replicas, lo)
	return min(max(n, lo), max(hi, lo))
}

// desiredPods is the number of pods a group should run (0 when suspended).
func desiredPods(g *rayv1.WorkerGroupSpec) int32 {
	if groupSuspended(g) {
		return 0
	}
	return desiredReplicas(g) * hosts(g)
}

func upgradeType(c *rayv1.RayCluster) rayv1.RayClusterUpgradeType {
	if c.Spec.UpgradeStrategy == nil || c.Spec.UpgradeStrategy.Type == nil {
		return rayv1.RayClusterUpgradeNone
	}
	return *c.Spec.UpgradeStrategy.Type
}
