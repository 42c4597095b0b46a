package reconcilekit

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// RequestsByIndex lists into list the objects of namespace whose field index holds value, and
// returns a request for each: the body of a watch's map function. A map function cannot return an
// error, so a failed List is logged with what was looked up and yields no request; the watched
// object's next event, or the manager's periodic resync, maps it again.
func RequestsByIndex(ctx context.Context, c client.Reader, list client.ObjectList, namespace, index, value string) []reconcile.Request {
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{index: value}); err != nil {
		logf.FromContext(ctx).Error(err, "Listing objects for a watch event failed; the event is dropped",
			"listType", fmt.Sprintf("%T", list), "namespace", namespace, "index", index, "value", value)
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		logf.FromContext(ctx).Error(err, "Reading listed objects for a watch event failed; the event is dropped", "listType", fmt.Sprintf("%T", list))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(items))
	for _, it := range items {
		if o, ok := it.(client.Object); ok {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	return reqs
}
