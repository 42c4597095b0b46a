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

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// OwnerUIDIndex is the field index holding the UID of an object's controlling RayCluster. Listing
// children by owner UID (not by name or label) means a RayCluster deleted and recreated under the
// same name never adopts the previous cluster's pods.
const OwnerUIDIndex = ".metadata.controller.rayclusterUID"

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
	return nil
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
