// Package namedwatch tells a controller when an object it needs but neither owns nor caches (a
// Secret a user names in a spec) comes into existence. While some custom resource waits for such
// an object, one narrow watch runs for it: metadata only, one namespace, a field selector on its
// name. The watch ends as soon as the object exists or nobody waits for it any more, so the
// operator never caches users' objects and never polls for them.
package namedwatch

import (
	"context"
	"sync"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Watcher runs one narrow watch per awaited object. It is a manager Runnable: watches run only
// between Start and the end of its context.
type Watcher struct {
	client   metadata.Interface
	resource schema.GroupVersionResource
	log      logr.Logger
	// events carries the waiters to enqueue; Source hands it to the controller.
	events chan event.GenericEvent

	mu      sync.Mutex
	ctx     context.Context // nil until Start
	watches map[types.NamespacedName]*watch
	// waitsFor is the object each waiter waits for.
	waitsFor map[types.NamespacedName]types.NamespacedName
}

// watch is the watch on one awaited object and who waits for it.
type watch struct {
	stop    context.CancelFunc // nil until started
	waiters map[types.NamespacedName]struct{}
}

// eventBuffer bounds the appearances queued before the controller takes them.
const eventBuffer = 64

// New returns a Watcher of objects of resource, read through client.
func New(client metadata.Interface, resource schema.GroupVersionResource, log logr.Logger) *Watcher {
	return &Watcher{
		client: client, resource: resource, log: log,
		events:   make(chan event.GenericEvent, eventBuffer),
		watches:  map[types.NamespacedName]*watch{},
		waitsFor: map[types.NamespacedName]types.NamespacedName{},
	}
}

// Source is the controller's source of waiters whose object appeared: each is enqueued under its
// own namespace and name.
func (w *Watcher) Source() source.Source {
	return source.Channel(w.events, &handler.EnqueueRequestForObject{})
}

// Start runs the watches registered so far and those registered later, until ctx ends.
func (w *Watcher) Start(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	for object, wt := range w.watches {
		w.run(object, wt)
	}
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	for object, wt := range w.watches {
		if wt.stop != nil {
			wt.stop()
		}
		delete(w.watches, object)
	}
	clear(w.waitsFor)
	return nil
}

// Await records that waiter waits for object to exist; waiter is enqueued once it does. A waiter
// waits for one object at a time: awaiting another forgets the first.
func (w *Watcher) Await(waiter, object types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, ok := w.waitsFor[waiter]; ok {
		if prev == object {
			return
		}
		w.forgetLocked(waiter)
	}
	w.waitsFor[waiter] = object
	wt, ok := w.watches[object]
	if !ok {
		wt = &watch{waiters: map[types.NamespacedName]struct{}{}}
		w.watches[object] = wt
		if w.ctx != nil {
			w.run(object, wt)
		}
	}
	wt.waiters[waiter] = struct{}{}
}

// Forget records that waiter waits for nothing; a watch nobody needs any more stops.
func (w *Watcher) Forget(waiter types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forgetLocked(waiter)
}

// Watching returns the objects watched now.
func (w *Watcher) Watching() []types.NamespacedName {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]types.NamespacedName, 0, len(w.watches))
	for object := range w.watches {
		out = append(out, object)
	}
	return out
}

func (w *Watcher) forgetLocked(waiter types.NamespacedName) {
	object, ok := w.waitsFor[waiter]
	if !ok {
		return
	}
	delete(w.waitsFor, waiter)
	wt := w.watches[object]
	if wt == nil {
		return
	}
	delete(wt.waiters, waiter)
	if len(wt.waiters) == 0 {
		if wt.stop != nil {
			wt.stop()
		}
		delete(w.watches, object)
	}
}

// run starts the informer of object's watch; w.mu is held.
func (w *Watcher) run(object types.NamespacedName, wt *watch) {
	ctx, stop := context.WithCancel(w.ctx)
	wt.stop = stop
	byName := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", object.Name).String()
	}
	inf := metadatainformer.NewFilteredMetadataInformer(w.client, w.resource, object.Namespace, 0, toolscache.Indexers{}, byName).Informer()
	// The initial list reports an object that appeared between the waiter's read and this watch.
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) { w.appeared(object, wt) }}); err != nil {
		w.log.Error(err, "Cannot watch for an awaited object", "resource", w.resource.String(), "object", object.String())
		return
	}
	w.log.V(1).Info("Watching for an awaited object", "resource", w.resource.String(), "object", object.String())
	go inf.Run(ctx.Done())
}

// appeared ends object's watch and enqueues its waiters.
func (w *Watcher) appeared(object types.NamespacedName, wt *watch) {
	w.mu.Lock()
	if w.watches[object] != wt {
		// Already handled, or forgotten and watched anew.
		w.mu.Unlock()
		return
	}
	delete(w.watches, object)
	wt.stop()
	waiters := make([]types.NamespacedName, 0, len(wt.waiters))
	for waiter := range wt.waiters {
		if w.waitsFor[waiter] == object {
			delete(w.waitsFor, waiter)
		}
		waiters = append(waiters, waiter)
	}
	done := w.ctx.Done()
	w.mu.Unlock()
	w.log.V(1).Info("An awaited object appeared", "resource", w.resource.String(), "object", object.String(), "waiters", len(waiters))
	for _, waiter := range waiters {
		m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: waiter.Namespace, Name: waiter.Name}}
		select {
		case w.events <- event.GenericEvent{Object: m}:
		case <-done:
			return
		}
	}
}
