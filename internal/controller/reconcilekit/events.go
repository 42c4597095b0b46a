package reconcilekit

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
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

// Merged returns the queue with its Normal events whose reason is one of reasons folded into a
// single event, so that a reconcile that created a head pod, worker pods and a Service writes one
// event naming them all instead of one per kind: each event is one API write, and on large
// clusters events are a large part of what an operator writes. The merged event takes the place
// of its first part; its parts are ordered as reasons lists them (then as queued), and it carries
// the reason and action of its first part, so a reconcile that made one kind of object emits
// exactly the event it did before. Other events, and every Warning, are left as they are: users
// filter on their reasons.
func (q Events) Merged(reasons ...string) Events {
	rank := func(e Event) int {
		if e.Type != corev1.EventTypeNormal {
			return -1
		}
		return slices.Index(reasons, e.Reason)
	}
	var out, parts Events
	at := -1
	for _, e := range q {
		if rank(e) < 0 {
			out = append(out, e)
			continue
		}
		if at < 0 {
			at = len(out)
			out = append(out, e)
		}
		parts = append(parts, e)
	}
	if len(parts) < 2 {
		return out
	}
	slices.SortStableFunc(parts, func(a, b Event) int { return rank(a) - rank(b) })
	notes := make([]string, len(parts))
	for i, p := range parts {
		notes[i] = p.Note
		if i > 0 {
			notes[i] = lowerFirst(p.Note)
		}
	}
	out[at] = Event{Type: corev1.EventTypeNormal, Reason: parts[0].Reason, Action: parts[0].Action, Note: strings.Join(notes, "; ")}
	return out
}

// lowerFirst lowers the first letter of a note that continues a merged one, unless the word is
// an acronym or a name ("RayCluster").
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || !unicode.IsUpper(r) {
		return s
	}
	word, _, _ := strings.Cut(s, " ")
	for _, c := range word[n:] {
		if unicode.IsUpper(c) {
			return s
		}
	}
	return string(unicode.ToLower(r)) + s[n:]
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
