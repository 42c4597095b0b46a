package reconcilekit

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/rayk8s/rayk8s/internal/controller/eventnote"
)

// Event is one events.k8s.io event a reconcile queued.
type Event struct {
	Type   string // Normal or Warning
	Reason string
	Action string
	Note   string
}

// Events queues the events of one reconcile. Phases add to it; the reconciler emits the queue once
// the status write succeeded, so no event announces a state the API does not hold.
type Events []Event

// Add queues an event whose note is format formatted with args.
func (q *Events) Add(eventType, reason, action, format string, args ...any) {
	*q = append(*q, Event{Type: eventType, Reason: reason, Action: action, Note: fmt.Sprintf(format, args...)})
}

// Emit records the queued events as regarding's, in order, each note fitted to what the API
// accepts. A nil recorder drops them.
func (q Events) Emit(rec events.EventRecorder, regarding runtime.Object) {
	if rec == nil {
		return
	}
	for _, e := range q {
		rec.Eventf(regarding, nil, e.Type, e.Reason, e.Action, "%s", eventnote.Fit(e.Note))
	}
}
