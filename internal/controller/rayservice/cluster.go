package rayservice

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// lastAppliedAnnotation is kubectl's copy of the applied object; it describes the RayService, not
// the cluster, so it is not copied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// gatherClusters lists the RayClusters the RayService controls (by owner UID) and finds the
// active and pending ones named by status.
func (r *Reconciler) gatherClusters(ctx context.Context, s *scope) (bool, error) {
	var list rayv1.RayClusterList
	if err := r.client.List(ctx, &list, client.InNamespace(s.rs.Namespace), client.MatchingFields{OwnerUIDIndex: string(s.rs.UID)}); err != nil {
		return false, fmt.Errorf("listing RayClusters: %w", err)
	}
	s.owned = s.owned[:0]
	for i := range list.Items {
		rc := &list.Items[i]
		if !metav1.IsControlledBy(rc, s.rs) {
			continue
		}
		s.owned = append(s.owned, rc)
	}
	s.activeName = s.rs.Status.ActiveServiceStatus.RayClusterName
	s.pendingName = s.rs.Status.PendingServiceStatus.RayClusterName
	s.active = s.ownedNamed(s.activeName)
	s.pending = s.ownedNamed(s.pendingName)
	return false, nil
}

// ownedNamed is the controlled, not deleting, cluster of that name.
func (s *scope) ownedNamed(name string) *rayv1.RayCluster {
	if name == "" {
		return nil
	}
	for _, rc := range s.owned {
		if rc.Name == name && rc.DeletionTimestamp.IsZero() {
			return rc
		}
	}
	return nil
}

// reconcileClusters decides which clusters the RayService wants (policy.go) and carries it out:
// creating a pending cluster whose name is already in status, and updating clusters in place when
// worker groups were only appended.
func (r *Reconciler) reconcileClusters(ctx context.Context, s *scope) (bool, error) {
	d := decideRollout(rolloutInput{
		goal:        &s.rs.Spec.RayClusterSpec,
		upgrade:     upgradeEnabled(s.rs, r.cfg.EnableZeroDowntime),
		activeName:  s.activeName,
		pendingName: s.pendingName,
		active:      s.active,
		pending:     s.pending,
		newName:     func() string { return s.rs.Name + "-" + r.NameSuffix() },
	})
	if d.note != "" {
		s.log.V(2).Info("Changing RayClusters", "reason", d.note, "active", d.activeName, "pending", d.pendingName)
	}
	if d.pendingName != s.pendingName && d.pendingName != "" && incrementalUpgrade(s.rs) && s.activeName != "" {
		s.events.Add(corev1.EventTypeWarning, EventUnsupportedIncrementalUpgrade, eventActionCreate,
			"upgradeStrategy NewClusterWithIncrementalUpgrade is not supported yet; upgrading with NewCluster (blue/green) instead")
	}
	if d.activeName != s.activeName {
		s.active = nil
	}
	if d.pendingName != s.pendingName {
		s.pending = nil
	}
	s.activeName, s.pendingName = d.activeName, d.pendingName
	var errs []error
	if d.createPending {
		rc, err := r.createCluster(ctx, s, d.pendingName)
		if err != nil {
			errs = append(errs, err)
		}
		s.pending = rc
	}
	if d.updateActive && s.active != nil {
		errs = append(errs, r.updateCluster(ctx, s, s.active))
	}
	if d.updatePending && s.pending != nil {
		errs = append(errs, r.updateCluster(ctx, s, s.pending))
	}
	return false, errors.Join(errs...)
}

// createCluster creates the named RayCluster from rayClusterConfig.
func (r *Reconciler) createCluster(ctx context.Context, s *scope, name string) (*rayv1.RayCluster, error) {
	rc := BuildRayCluster(s.rs, name, r.cfg.Resources.OperatorVersion)
	s.log.V(2).Info("Creating RayCluster", "RayCluster", klog.KObj(rc))
	if err := r.client.Create(ctx, rc); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// The cache has not seen it yet; the watch brings it.
			return nil, nil
		}
		s.events.Add(corev1.EventTypeWarning, EventFailedToCreateRayCluster, eventActionCreate, "Failed to create RayCluster %s: %v", name, err)
		return nil, fmt.Errorf("creating RayCluster %s: %w", name, err)
	}
	s.events.Add(corev1.EventTypeNormal, EventCreatedRayCluster, eventActionCreate, "Created RayCluster %s", name)
	s.owned = append(s.owned, rc)
	return rc, nil
}

// updateCluster replaces a cluster's spec, labels and annotations with the goal's (worker groups
// were appended), keeping its suspend, which belongs to Kueue once the cluster exists.
func (r *Reconciler) updateCluster(ctx context.Context, s *scope, rc *rayv1.RayCluster) error {
	want := BuildRayCluster(s.rs, rc.Name, r.cfg.Resources.OperatorVersion)
	before := rc.DeepCopy()
	suspend := rc.Spec.Suspend
	rc.Spec = want.Spec
	rc.Spec.Suspend = suspend
	for k, v := range want.Labels {
		metav1.SetMetaDataLabel(&rc.ObjectMeta, k, v)
	}
	for k, v := range want.Annotations {
		metav1.SetMetaDataAnnotation(&rc.ObjectMeta, k, v)
	}
	s.log.V(2).Info("Updating RayCluster in place", "RayCluster", klog.KObj(rc), "reason", "worker groups appended")
	if err := r.client.Patch(ctx, rc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		s.events.Add(corev1.EventTypeWarning, EventFailedToUpdateRayCluster, eventActionUpdate, "Failed to update RayCluster %s: %v", rc.Name, err)
		return fmt.Errorf("updating RayCluster %s: %w", rc.Name, err)
	}
	s.events.Add(corev1.EventTypeNormal, EventUpdatedRayCluster, eventActionUpdate, "Updated RayCluster %s in place: worker groups were appended", rc.Name)
	return nil
}

// BuildRayCluster builds a generation of the RayService's cluster: labels of the RayService plus
// the originated-from labels, its annotations plus the hash annotations the upgrade decision reads
// (KubeRay's), and a copy of rayClusterConfig. The RayService's suspend is not copied: a suspended
// RayService deletes its clusters instead.
func BuildRayCluster(rs *rayv1.RayService, name, operatorVersion string) *rayv1.RayCluster {
	labels := map[string]string{}
	for k, v := range rs.Labels {
		labels[k] = v
	}
	labels[rayv1.RayOriginatedFromCRNameLabelKey] = rs.Name
	labels[rayv1.RayOriginatedFromCRDLabelKey] = string(rayv1.RayServiceCRD)
	annotations := map[string]string{}
	for k, v := range rs.Annotations {
		if k != lastAppliedAnnotation && k != rayv1.RayServiceInitializingTimeoutAnnotation {
			annotations[k] = v
		}
	}
	spec := rs.Spec.RayClusterSpec.DeepCopy()
	annotations[rayv1.HashWithoutReplicasAndWorkersToDeleteKey] = goalHash(spec)
	annotations[rayv1.NumWorkerGroupsKey] = strconv.Itoa(len(spec.WorkerGroupSpecs))
	annotations[rayv1.KubeRayVersion] = operatorVersion
	return &rayv1.RayCluster{
		TypeMeta: metav1.TypeMeta{APIVersion: rayv1.GroupVersion.String(), Kind: "RayCluster"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       rs.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{ownerReference(rs)},
		},
		Spec: *spec,
	}
}

// ownerReference makes the RayService the controller of what it creates.
func ownerReference(rs *rayv1.RayService) metav1.OwnerReference {
	return *metav1.NewControllerRef(rs, rayv1.GroupVersion.WithKind(string(rayv1.RayServiceCRD)))
}

// collectGarbage deletes the clusters that are neither active nor pending, rayClusterDeletionDelay
// after they were superseded (so in-flight requests drain), and asks to be woken up at the next
// deadline. The time a cluster was superseded is stamped on it, so the deadline survives an
// operator restart.
func (r *Reconciler) collectGarbage(ctx context.Context, s *scope) (bool, error) {
	if s.suspend != suspendNone && s.suspend != suspendResumed {
		return false, nil // the suspend phase deletes everything itself
	}
	delay := deletionDelay(s.rs)
	var errs []error
	for _, rc := range s.owned {
		if rc.Name == s.activeName || rc.Name == s.pendingName || !rc.DeletionTimestamp.IsZero() {
			continue
		}
		at, ok := supersededAt(rc)
		if !ok {
			before := rc.DeepCopy()
			metav1.SetMetaDataAnnotation(&rc.ObjectMeta, rayv1.SupersededAtAnnotation, s.now.UTC().Format(time.RFC3339))
			if err := r.client.Patch(ctx, rc, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("marking RayCluster %s superseded: %w", rc.Name, err))
				continue
			}
			// RFC 3339 has second precision: round down, as the parsed value will be.
			at = s.now.UTC().Truncate(time.Second)
		}
		deadline := at.Add(delay)
		if s.now.Before(deadline) {
			s.requeueAtTime(deadline)
			continue
		}
		errs = append(errs, r.deleteCluster(ctx, s, rc, fmt.Sprintf("superseded %s ago", s.now.Sub(at).Truncate(time.Second))))
	}
	return false, errors.Join(errs...)
}

func (r *Reconciler) deleteCluster(ctx context.Context, s *scope, rc *rayv1.RayCluster, why string) error {
	s.log.V(2).Info("Deleting RayCluster", "RayCluster", klog.KObj(rc), "reason", why)
	if err := r.client.Delete(ctx, rc, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		s.events.Add(corev1.EventTypeWarning, EventFailedToDeleteRayCluster, eventActionDelete, "Failed to delete RayCluster %s: %v", rc.Name, err)
		return fmt.Errorf("deleting RayCluster %s: %w", rc.Name, err)
	}
	s.events.Add(corev1.EventTypeNormal, EventDeletedRayCluster, eventActionDelete, "Deleted RayCluster %s (%s)", rc.Name, why)
	return nil
}

// reconcileDelete deletes every cluster of a RayService being deleted at once, and releases it
// once none is left (as KubeRay: Services go with it through their owner references).
func (r *Reconciler) reconcileDelete(ctx context.Context, rs *rayv1.RayService) (ctrl.Result, error) {
	r.cache.forgetService(client.ObjectKeyFromObject(rs))
	if !controllerutil.ContainsFinalizer(rs, rayv1.RayServiceFinalizer) {
		return ctrl.Result{}, nil
	}
	s := &scope{rs: rs, before: rs.DeepCopy(), now: r.Clock.Now(), log: ctrl.LoggerFrom(ctx)}
	if _, err := r.gatherClusters(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	var errs []error
	remaining := 0
	for _, rc := range s.owned {
		remaining++
		if rc.DeletionTimestamp.IsZero() {
			errs = append(errs, r.deleteCluster(ctx, s, rc, "the RayService is being deleted"))
		}
	}
	r.emit(s, false)
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	if remaining > 0 {
		return ctrl.Result{}, nil // the clusters' deletion events bring the RayService back
	}
	_, err := reconcilekit.RemoveFinalizer(ctx, r.client, rs, rayv1.RayServiceFinalizer)
	return ctrl.Result{}, err
}

func incrementalUpgrade(rs *rayv1.RayService) bool {
	us := rs.Spec.UpgradeStrategy
	return us != nil && us.Type != nil && *us.Type == rayv1.NewClusterWithIncrementalUpgrade
}
