package reconcilekit

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Apply server-side-applies obj, a typed object of a built-in kind, as fieldManager, taking over
// the fields other managers set. The object is sent as client-go's typed apply configuration of its
// kind, without status, resourceVersion and creationTimestamp: a builder's zero values there would
// otherwise claim fields the controller does not mean to own.
func Apply(ctx context.Context, c client.Client, fieldManager string, obj client.Object) error {
	ac, err := ApplyConfiguration(obj, c.Scheme())
	if err != nil {
		return err
	}
	return c.Apply(ctx, ac, client.FieldOwner(fieldManager), client.ForceOwnership)
}

// ApplyConfiguration converts obj into client-go's typed apply configuration of its kind, leaving
// out status, resourceVersion and creationTimestamp.
func ApplyConfiguration(obj client.Object, scheme *runtime.Scheme) (runtime.ApplyConfiguration, error) {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, fmt.Errorf("looking up the kind of %T: %w", obj, err)
	}
	ac, ok := applyconfigurations.ForKind(gvk).(runtime.ApplyConfiguration)
	if !ok {
		return nil, fmt.Errorf("%s has no typed apply configuration", gvk)
	}
	fields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	delete(fields, "status")
	if md, ok := fields["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
		delete(md, "resourceVersion")
	}
	fields["apiVersion"], fields["kind"] = gvk.GroupVersion().String(), gvk.Kind
	// The apply configurations mirror the objects' JSON, so JSON carries one into the other.
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	if err := json.Unmarshal(raw, ac); err != nil {
		return nil, fmt.Errorf("decoding %s %s as its apply configuration: %w", gvk.Kind, obj.GetName(), err)
	}
	return ac, nil
}
