package matchers

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func clusterWith(conds ...metav1.Condition) *rayv1.RayCluster {
	c := &rayv1.RayCluster{}
	c.Status.Conditions = conds
	return c
}

func TestHaveCondition(t *testing.T) {
	g := NewWithT(t)
	ready := metav1.Condition{Type: string(rayv1.HeadPodReady), Status: metav1.ConditionTrue, Reason: rayv1.HeadPodRunningAndReady, Message: "up"}
	c := clusterWith(ready)

	g.Expect(c).To(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, rayv1.HeadPodRunningAndReady))
	g.Expect(c).To(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, ""), "an empty reason matches any")
	g.Expect(*c).To(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, ""), "a struct value works too")
	g.Expect(c.Status.Conditions).To(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, ""), "so does a bare slice")
	g.Expect(c).NotTo(HaveCondition(rayv1.HeadPodReady, metav1.ConditionFalse, ""), "wrong status")
	g.Expect(c).NotTo(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, "Other"), "wrong reason")
	g.Expect(c).NotTo(HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionTrue, ""), "missing type")

	rs := &rayv1.RayService{}
	rs.Status.Conditions = []metav1.Condition{{Type: string(rayv1.RayServiceReady), Status: metav1.ConditionFalse, Reason: "Initializing"}}
	g.Expect(rs).To(HaveCondition(rayv1.RayServiceReady, metav1.ConditionFalse, "Initializing"))

	m := HaveCondition(rayv1.RayClusterProvisioned, metav1.ConditionTrue, "AllReady")
	g.Expect(m.FailureMessage(c)).To(And(
		ContainSubstring("RayClusterProvisioned=True/AllReady"),
		ContainSubstring(`HeadPodReady=True/HeadPodRunningAndReady ("up")`)))
	g.Expect(HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, "").FailureMessage(clusterWith())).To(ContainSubstring("<any reason>"))
	g.Expect(m.NegatedFailureMessage(c)).To(HavePrefix("expected no condition"))
}

func TestHaveConditionRejectsObjectsWithoutConditions(t *testing.T) {
	g := NewWithT(t)
	m := HaveCondition(rayv1.HeadPodReady, metav1.ConditionTrue, "")
	for _, actual := range []any{nil, (*rayv1.RayCluster)(nil), "text", &corev1.Pod{}, &rayv1.RayJob{}} {
		_, err := m.Match(actual)
		g.Expect(err).To(HaveOccurred(), "%T", actual)
	}
}

func TestOwnerMatchers(t *testing.T) {
	g := NewWithT(t)
	owner := &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: "uid-rc"}}
	other := &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "ns", UID: "uid-other"}}
	pod := func(refs ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", OwnerReferences: refs}}
	}
	plain := metav1.OwnerReference{Kind: "RayCluster", Name: "rc", UID: "uid-rc"}
	controller := metav1.OwnerReference{Kind: "RayCluster", Name: "rc", UID: "uid-rc", Controller: ptr.To(true)}
	blocking := metav1.OwnerReference{Kind: "RayCluster", Name: "rc", UID: "uid-rc", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}

	g.Expect(pod(plain)).To(BeOwnedBy(owner))
	g.Expect(pod(plain)).NotTo(BeOwnedBy(other))
	g.Expect(pod()).NotTo(BeOwnedBy(owner))
	g.Expect(pod(plain)).NotTo(BeControlledBy(owner), "not the controller")
	g.Expect(pod(controller)).To(BeControlledBy(owner))
	g.Expect(pod(controller)).NotTo(BeControlledBy(other))
	g.Expect(pod(controller)).NotTo(BeControlledBy(owner).BlockingOwnerDeletion())
	g.Expect(pod(blocking)).To(BeControlledBy(owner).BlockingOwnerDeletion())
	g.Expect(pod(blocking)).To(BeOwnedBy(owner).BlockingOwnerDeletion())

	m := BeControlledBy(owner).BlockingOwnerDeletion()
	g.Expect(m.FailureMessage(pod(plain))).To(And(
		ContainSubstring("controlled by ns/rc (uid uid-rc) with blockOwnerDeletion"),
		ContainSubstring("RayCluster rc (uid uid-rc, controller false, blockOwnerDeletion false)")))
	g.Expect(BeOwnedBy(owner).NegatedFailureMessage(pod())).To(ContainSubstring("not to be owned by ns/rc"))

	_, err := BeOwnedBy(owner).Match("text")
	g.Expect(err).To(MatchError(ContainSubstring("not a Kubernetes object")))
	_, err = BeOwnedBy(&rayv1.RayCluster{}).Match(pod(plain))
	g.Expect(err).To(MatchError(ContainSubstring("owner has no UID")))
}

func TestHaveEvent(t *testing.T) {
	g := NewWithT(t)
	events := []eventsv1.Event{
		{Type: corev1.EventTypeNormal, Reason: "Created", Note: "Created pod rc-head-x"},
		{Type: corev1.EventTypeWarning, Reason: "Invalid", Note: "spec.headGroupSpec.labels: bad"},
	}
	g.Expect(events).To(HaveEvent(corev1.EventTypeNormal, "Created", "rc-head"))
	g.Expect(events).To(HaveEvent("", "Invalid", "labels"), "an empty type matches any")
	g.Expect(events).To(HaveEvent("", "Created", ""), "an empty note matches any")
	g.Expect(events).NotTo(HaveEvent(corev1.EventTypeWarning, "Created", ""), "wrong type")
	g.Expect(events).NotTo(HaveEvent("", "Created", "worker"), "note lacks the text")
	g.Expect(events).NotTo(HaveEvent("", "Deleted", ""), "no such reason")
	g.Expect([]eventsv1.Event(nil)).NotTo(HaveEvent("", "Created", ""))

	m := HaveEvent(corev1.EventTypeNormal, "Deleted", "head")
	g.Expect(m.FailureMessage(events)).To(And(
		ContainSubstring(`Normal/Deleted with a note containing "head"`),
		ContainSubstring(`Warning/Invalid ("spec.headGroupSpec.labels: bad")`)))
	g.Expect(m.NegatedFailureMessage(nil)).To(ContainSubstring("no events"))
	_, err := m.Match("text")
	g.Expect(err).To(HaveOccurred())
}
