package reconcilekit

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ApplyGroup server-side-applies a batch scheduler's group object unless the one in the cache
// already has every field want sets (an apply that changes nothing is still an API call).
func ApplyGroup(ctx context.Context, c client.Client, fieldManager string, want *unstructured.Unstructured) error {
	have := &unstructured.Unstructured{}
	have.SetGroupVersionKind(want.GroupVersionKind())
	err := c.Get(ctx, client.ObjectKeyFromObject(want), have)
	switch {
	case err == nil && groupUpToDate(have, want):
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("getting %s %s: %w", want.GetKind(), want.GetName(), err)
	}
	want = withoutNilSpecFields(want)
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(want), client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", want.GetKind(), want.GetName(), err)
	}
	return nil
}

// withoutNilSpecFields drops the spec fields a builder set to nil: leaving them out of the apply
// removes them from the object, as a builder that sets nil means.
func withoutNilSpecFields(u *unstructured.Unstructured) *unstructured.Unstructured {
	spec, ok := u.Object["spec"].(map[string]any)
	if !ok {
		return u
	}
	out := u.DeepCopy()
	kept := map[string]any{}
	for k, v := range spec {
		if v != nil {
			kept[k] = out.Object["spec"].(map[string]any)[k]
		}
	}
	out.Object["spec"] = kept
	return out
}

func groupUpToDate(have, want *unstructured.Unstructured) bool {
	hs, _ := have.Object["spec"].(map[string]any)
	ws, _ := want.Object["spec"].(map[string]any)
	for k, v := range ws {
		if !equality.Semantic.DeepEqual(hs[k], v) {
			return false
		}
	}
	for k, v := range want.GetAnnotations() {
		if have.GetAnnotations()[k] != v {
			return false
		}
	}
	return maps.EqualFunc(ownerUIDs(have), ownerUIDs(want), func(a, b bool) bool { return a == b })
}

func ownerUIDs(u *unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for _, ref := range u.GetOwnerReferences() {
		out[string(ref.UID)] = ref.Controller != nil && *ref.Controller
	}
	return out
}
