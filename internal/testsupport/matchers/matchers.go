// Package matchers holds Gomega matchers for Kubernetes objects that the controller suites share:
// status conditions, owner references and events.
package matchers

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/onsi/gomega/types"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HaveCondition succeeds when the actual value carries a condition of type condType with status
// and, unless reason is empty, reason. The actual value is a []metav1.Condition or an object (or
// pointer to one) whose Status.Conditions is one, such as a RayCluster or a RayService.
func HaveCondition[T ~string](condType T, status metav1.ConditionStatus, reason string) types.GomegaMatcher {
	return &conditionMatcher{condType: string(condType), status: status, reason: reason}
}

type conditionMatcher struct {
	condType string
	status   metav1.ConditionStatus
	reason   string
}

func (m *conditionMatcher) Match(actual any) (bool, error) {
	conds, err := conditionsOf(actual)
	if err != nil {
		return false, err
	}
	c := find(conds, m.condType)
	return c != nil && c.Status == m.status && (m.reason == "" || c.Reason == m.reason), nil
}

func (m *conditionMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected condition %s, found %s", m.want(), describe(actual))
}

func (m *conditionMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected no condition %s, found %s", m.want(), describe(actual))
}

func (m *conditionMatcher) want() string {
	reason := m.reason
	if reason == "" {
		reason = "<any reason>"
	}
	return fmt.Sprintf("%s=%s/%s", m.condType, m.status, reason)
}

func find(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

var conditionsType = reflect.TypeFor[[]metav1.Condition]()

// conditionsOf finds the conditions in a slice or in Status.Conditions of a struct or pointer.
func conditionsOf(actual any) ([]metav1.Condition, error) {
	if c, ok := actual.([]metav1.Condition); ok {
		return c, nil
	}
	v := reflect.ValueOf(actual)
	for v.IsValid() && v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, fmt.Errorf("HaveCondition: actual is a nil %T", actual)
		}
		v = v.Elem()
	}
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("HaveCondition: actual %T is neither []metav1.Condition nor an object with Status.Conditions", actual)
	}
	st := v.FieldByName("Status")
	if !st.IsValid() || st.Kind() != reflect.Struct {
		return nil, fmt.Errorf("HaveCondition: %T has no Status struct", actual)
	}
	c := st.FieldByName("Conditions")
	if !c.IsValid() || c.Type() != conditionsType {
		return nil, fmt.Errorf("HaveCondition: %T has no Status.Conditions of type []metav1.Condition", actual)
	}
	return c.Interface().([]metav1.Condition), nil
}

// describe lists the conditions briefly: the whole object would bury them in a failure message.
func describe(actual any) string {
	conds, err := conditionsOf(actual)
	if err != nil {
		return err.Error()
	}
	if len(conds) == 0 {
		return "no conditions"
	}
	var out []string
	for _, c := range conds {
		out = append(out, fmt.Sprintf("%s=%s/%s (%q)", c.Type, c.Status, c.Reason, c.Message))
	}
	return strings.Join(out, ", ")
}

// BeOwnedBy succeeds when the actual object has an owner reference to owner (matched by UID).
func BeOwnedBy(owner metav1.Object) *OwnerMatcher {
	return &OwnerMatcher{owner: owner}
}

// BeControlledBy succeeds when the actual object's controller reference points at owner (matched
// by UID).
func BeControlledBy(owner metav1.Object) *OwnerMatcher {
	return &OwnerMatcher{owner: owner, controller: true}
}

// OwnerMatcher matches owner references; see BeOwnedBy and BeControlledBy.
type OwnerMatcher struct {
	owner         metav1.Object
	controller    bool
	blockDeletion bool
}

// BlockingOwnerDeletion additionally requires blockOwnerDeletion on the reference, which foreground
// deletion by the garbage collector relies on.
func (m *OwnerMatcher) BlockingOwnerDeletion() *OwnerMatcher {
	c := *m
	c.blockDeletion = true
	return &c
}

func (m *OwnerMatcher) Match(actual any) (bool, error) {
	obj, ok := actual.(metav1.Object)
	if !ok {
		return false, fmt.Errorf("BeOwnedBy: actual %T is not a Kubernetes object (a pointer to one)", actual)
	}
	if m.owner == nil || m.owner.GetUID() == "" {
		return false, fmt.Errorf("BeOwnedBy: the owner has no UID; fetch it from the API server first")
	}
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID != m.owner.GetUID() {
			continue
		}
		if m.controller && (ref.Controller == nil || !*ref.Controller) {
			continue
		}
		if m.blockDeletion && (ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion) {
			continue
		}
		return true, nil
	}
	return false, nil
}

func (m *OwnerMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected %s to be %s, owner references: %s", name(actual), m.want(), refs(actual))
}

func (m *OwnerMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected %s not to be %s, owner references: %s", name(actual), m.want(), refs(actual))
}

func (m *OwnerMatcher) want() string {
	s := "owned by"
	if m.controller {
		s = "controlled by"
	}
	s = fmt.Sprintf("%s %s/%s (uid %s)", s, m.owner.GetNamespace(), m.owner.GetName(), m.owner.GetUID())
	if m.blockDeletion {
		s += " with blockOwnerDeletion"
	}
	return s
}

func name(actual any) string {
	if o, ok := actual.(metav1.Object); ok {
		return fmt.Sprintf("%T %s/%s", actual, o.GetNamespace(), o.GetName())
	}
	return fmt.Sprintf("%T", actual)
}

func refs(actual any) string {
	o, ok := actual.(metav1.Object)
	if !ok || len(o.GetOwnerReferences()) == 0 {
		return "none"
	}
	var out []string
	for _, r := range o.GetOwnerReferences() {
		out = append(out, fmt.Sprintf("%s %s (uid %s, controller %v, blockOwnerDeletion %v)",
			r.Kind, r.Name, r.UID, r.Controller != nil && *r.Controller, r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion))
	}
	return strings.Join(out, "; ")
}

// HaveEvent succeeds when a list of events.k8s.io Events holds one with reason whose note
// contains noteContains; eventType ("Normal", "Warning") is checked unless empty.
func HaveEvent(eventType, reason, noteContains string) types.GomegaMatcher {
	return &eventMatcher{eventType: eventType, reason: reason, note: noteContains}
}

type eventMatcher struct{ eventType, reason, note string }

func (m *eventMatcher) Match(actual any) (bool, error) {
	events, ok := actual.([]eventsv1.Event)
	if !ok {
		return false, fmt.Errorf("HaveEvent: actual %T is not []eventsv1.Event", actual)
	}
	for _, e := range events {
		if e.Reason == m.reason && (m.eventType == "" || e.Type == m.eventType) && strings.Contains(e.Note, m.note) {
			return true, nil
		}
	}
	return false, nil
}

func (m *eventMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected an event %s, found %s", m.want(), eventList(actual))
}

func (m *eventMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected no event %s, found %s", m.want(), eventList(actual))
}

func (m *eventMatcher) want() string {
	t := m.eventType
	if t == "" {
		t = "<any type>"
	}
	return fmt.Sprintf("%s/%s with a note containing %q", t, m.reason, m.note)
}

func eventList(actual any) string {
	events, _ := actual.([]eventsv1.Event)
	if len(events) == 0 {
		return "no events"
	}
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s/%s (%q)", e.Type, e.Reason, e.Note))
	}
	return strings.Join(out, ", ")
}
