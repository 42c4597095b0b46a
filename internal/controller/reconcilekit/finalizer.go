package reconcilekit

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// AddFinalizer adds name to obj's finalizers when it is missing, patching with an optimistic lock.
// It reports whether it patched: the reconcile should end there and let the patch's watch event
// bring the object back, so nothing is built on a copy the cache does not hold yet.
func AddFinalizer(ctx context.Context, c client.Client, obj client.Object, name string) (bool, error) {
	if controllerutil.ContainsFinalizer(obj, name) {
		return false, nil
	}
	err := patchFinalizers(ctx, c, obj, func() { controllerutil.AddFinalizer(obj, name) }, "adding", name)
	return err == nil, err
}

// RemoveFinalizer removes name from obj's finalizers when present, patching with an optimistic
// lock. An object already gone is not an error. It reports whether it patched.
func RemoveFinalizer(ctx context.Context, c client.Client, obj client.Object, name string) (bool, error) {
	if !controllerutil.ContainsFinalizer(obj, name) {
		return false, nil
	}
	err := patchFinalizers(ctx, c, obj, func() { controllerutil.RemoveFinalizer(obj, name) }, "removing", name)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return err == nil, err
}

func patchFinalizers(ctx context.Context, c client.Client, obj client.Object, change func(), verb, name string) error {
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	change()
	if err := c.Patch(ctx, obj, patch); err != nil {
		return fmt.Errorf("%s finalizer %s: %w", verb, name, err)
	}
	return nil
}

// FinalizersChangedPredicate passes updates that changed the finalizers. A controller whose
// primary watch filters updates (by generation, say) needs it to see its own finalizer patches.
type FinalizersChangedPredicate struct {
	predicate.Funcs
}

// Update implements predicate.Predicate.
func (FinalizersChangedPredicate) Update(e event.UpdateEvent) bool {
	if e.ObjectOld == nil || e.ObjectNew == nil {
		return false
	}
	return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers())
}
