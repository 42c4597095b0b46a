package raycluster

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Event reasons of the GCS storage phase (KubeRay's strings where it has them).
const (
	EventCreatedPVC             = "CreatedPVC"
	EventFailedToCreatePVC      = "FailedToCreatePVC"
	EventUpdatedPVC             = "UpdatedPVC"
	EventFailedToUpdatePVC      = "FailedToUpdatePVC"
	EventGCSStoragePVCNotFound  = "GCSStoragePVCNotFound"
	EventGCSStoragePVCNotOwned  = "GCSStoragePVCControlledByAnotherObject"
	gcsStorageClaimNameFieldRef = "spec.gcsFaultToleranceOptions.storage.claimName"
)

// reconcileGCSStorage provides the volume of the rocksdb GCS backend (the feature gate is checked
// by validateCluster). The claim "<cluster>-gcs-pvc" is created once from storage.size,
// storageClassName and accessModes and never resized; it is owned by the cluster unless
// deletionPolicy is Retain, and its owner reference follows later changes of the policy. A claim
// the user names (storage.claimName) is only checked for existence: the head pod waits for it
// (Pending) like any pod whose claim is missing, so it is reported but does not block. Claims
// are read by metadata only.
func (r *Reconciler) reconcileGCSStorage(ctx context.Context, s *scope) error {
	c := s.cluster
	if !resources.UsesRocksDBGCS(c) {
		return nil
	}
	name := resources.GCSPVCName(c)
	observed := coreMetadata("PersistentVolumeClaim")
	desired := resources.BuildGCSStoragePVC(c)
	var reader client.Reader = r.client
	if desired == nil {
		// A claim the user names is outside the manager's cache (it holds only the operator's
		// objects): read it directly.
		reader = r.reader
	}
	err := reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, observed)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting GCS storage claim %s: %w", name, err)
	}
	found := err == nil
	if desired == nil {
		if !found {
			s.events.Add(corev1.EventTypeWarning, EventGCSStoragePVCNotFound, "Reconcile",
				"PersistentVolumeClaim %s named by %s does not exist; the head pod stays Pending until it does", name, gcsStorageClaimNameFieldRef)
		}
		return nil
	}
	if !found {
		// The builder decides the owner reference (none for deletionPolicy Retain).
		err := r.client.Create(ctx, desired)
		if apierrors.IsAlreadyExists(err) {
			return nil // the cache lags; the claim watch brings the cluster back
		}
		if err != nil {
			s.events.Add(corev1.EventTypeWarning, EventFailedToCreatePVC, "Create", "Failed to create GCS storage claim %s: %v", name, err)
			return fmt.Errorf("creating GCS storage claim %s: %w", name, err)
		}
		s.events.Add(corev1.EventTypeNormal, EventCreatedPVC, "Create", "Created GCS storage claim %s", name)
		return nil
	}
	return r.reconcileGCSStorageOwner(ctx, s, observed, len(desired.OwnerReferences) > 0)
}

// reconcileGCSStorageOwner adds or removes the cluster's owner reference on an existing claim so
// that it matches the deletion policy. A claim another object controls is left alone.
func (r *Reconciler) reconcileGCSStorageOwner(ctx context.Context, s *scope, pvc *metav1.PartialObjectMetadata, wantOwned bool) error {
	c := s.cluster
	ours := func(ref metav1.OwnerReference) bool { return ref.UID == c.UID }
	owned := slices.ContainsFunc(pvc.OwnerReferences, ours)
	if owned == wantOwned {
		return nil
	}
	patch := client.MergeFromWithOptions(pvc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	var note string
	if wantOwned {
		if ctl := metav1.GetControllerOf(pvc); ctl != nil {
			s.events.Add(corev1.EventTypeWarning, EventGCSStoragePVCNotOwned, "Reconcile",
				"GCS storage claim %s is controlled by %s %s; it is used but not owned by this cluster", pvc.Name, ctl.Kind, ctl.Name)
			return nil
		}
		pvc.OwnerReferences = append(pvc.OwnerReferences, resources.OwnerReference(c))
		note = fmt.Sprintf("Owning GCS storage claim %s: it is deleted with the cluster (deletionPolicy %s)", pvc.Name, rayv1.GcsStorageDeleteWithCluster)
	} else {
		pvc.OwnerReferences = slices.DeleteFunc(pvc.OwnerReferences, ours)
		note = fmt.Sprintf("Releasing GCS storage claim %s: it outlives the cluster (deletionPolicy %s)", pvc.Name, rayv1.GcsStorageRetain)
	}
	if err := r.client.Patch(ctx, pvc, patch); err != nil {
		s.events.Add(corev1.EventTypeWarning, EventFailedToUpdatePVC, "Update", "Failed to update the owner of GCS storage claim %s: %v", pvc.Name, err)
		return fmt.Errorf("updating owner references of GCS storage claim %s: %w", pvc.Name, err)
	}
	s.events.Add(corev1.EventTypeNormal, EventUpdatedPVC, "Update", "%s", note)
	return nil
}
