package raycluster

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// OwnerUIDIndex is the field index holding the UID of an object's controlling RayCluster. Listing
// children by owner UID (not by name or label) means a RayCluster deleted and recreated under the
// same name never adopts the previous cluster's pods.
const OwnerUIDIndex = ".metadata.controller.rayclusterUID"

// Indexes of RayClusters by the name of an object they reference, so that an event on that object
// (metadata-only watches) maps to the clusters that use it, whether the operator created the
// object or the user brought it.
const (
	// AuthSecretIndex holds the name of the Secret the cluster's pods read RAY_AUTH_TOKEN from.
	AuthSecretIndex = ".spec.authOptions.secretName"
	// GCSStorageClaimIndex holds the name of the PersistentVolumeClaim of the rocksdb GCS backend.
	GCSStorageClaimIndex = ".spec.gcsFaultToleranceOptions.storage.claimName"
)

// indexedKinds are the child kinds listed through OwnerUIDIndex. The autoscaler RBAC objects are
// read by name instead, so that their informers only start once a cluster uses the autoscaler.
func indexedKinds() []client.Object {
	return []client.Object{&corev1.Pod{}, &corev1.Service{}, &batchv1.Job{}, &networkingv1.Ingress{}}
}

// SetupIndexes registers OwnerUIDIndex for every child kind.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	for _, obj := range indexedKinds() {
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, OwnerUIDIndex, controllerUID); err != nil {
			return fmt.Errorf("indexing %T by owner UID: %w", obj, err)
		}
	}
	for name, f := range map[string]func(*rayv1.RayCluster) []string{
		AuthSecretIndex:      authSecretOf,
		GCSStorageClaimIndex: gcsStorageClaimOf,
	} {
		err := mgr.GetFieldIndexer().IndexField(ctx, &rayv1.RayCluster{}, name, func(obj client.Object) []string {
			c, ok := obj.(*rayv1.RayCluster)
			if !ok {
				return nil
			}
			return f(c)
		})
		if err != nil {
			return fmt.Errorf("indexing RayClusters by %s: %w", name, err)
		}
	}
	return nil
}

func authSecretOf(c *rayv1.RayCluster) []string {
	if !resources.UsesAuthTokenSecret(c) {
		return nil
	}
	return []string{resources.AuthSecretName(c)}
}

func gcsStorageClaimOf(c *rayv1.RayCluster) []string {
	if !resources.UsesRocksDBGCS(c) {
		return nil
	}
	return []string{resources.GCSPVCName(c)}
}

// clustersReferencing maps an object to the RayClusters of its namespace whose index holds its
// name.
func clustersReferencing(c client.Reader, index string) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		return reconcilekit.RequestsByIndex(ctx, c, &rayv1.RayClusterList{}, obj.GetNamespace(), index, obj.GetName())
	}
}

func controllerUID(obj client.Object) []string {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "RayCluster" || ref.APIVersion != rayv1.GroupVersion.String() {
		return nil
	}
	return []string{string(ref.UID)}
}

// listChildren lists the objects of list's kind controlled by the cluster.
func listChildren(ctx context.Context, c client.Reader, cluster *rayv1.RayCluster, list client.ObjectList) error {
	return c.List(ctx, list, client.InNamespace(cluster.Namespace), client.MatchingFields{OwnerUIDIndex: string(cluster.UID)})
}
