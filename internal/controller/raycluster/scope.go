package raycluster

import (
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// scope carries one reconcile: the cluster, the children observed in the cache, and the facts the
// phases record for status.go. Phases never touch cluster.Status.
type scope struct {
	cluster *rayv1.RayCluster
	key     types.NamespacedName
	now     time.Time
	// conditions is true when the RayClusterStatusConditions gate is on.
	conditions bool

	// Children observed in the cache, all controlled by this cluster (by owner UID).
	allPods   []corev1.Pod // including terminating ones (expectations need them)
	pods      []corev1.Pod // not terminating
	services  []corev1.Service
	jobs      []batchv1.Job
	ingresses []networkingv1.Ingress

	// Facts recorded by the phases.
	validationErr  error        // the spec cannot be reconciled; no phase ran
	replicaFailure *failure     // a pod create/delete failed (ReplicaFailure condition)
	headReplaced   *headReplace // the head pod was deleted to be recreated
	podsChanged    bool         // a pod was created or deleted in this reconcile
	// podsBlocked says why no pod may be created (a Secret the pods need is missing); empty
	// when pods may be created.
	podsBlocked string
	// servicesPending is true while a Service this controller created has not reached the cache:
	// the service phases create nothing then (its watch event brings the cluster back).
	servicesPending bool
	// createsPending is true when a pod create issued by an earlier reconcile has not reached
	// the cache yet: the pod exists but deleting "every cached pod" misses it, so a suspension
	// is not complete.
	createsPending bool

	// requeueAt is the earliest computed time at which the cluster must be looked at again even
	// without a watch event (0 = never).
	requeueAt time.Time

	// creates are the creates the phases planned; the reconcile issues them together once the
	// phases ran (issueCreates).
	creates createPlan

	// events are emitted after the status write.
	events reconcilekit.Events
}

// failure is the first pod create/delete that failed.
type failure struct {
	reason  string
	message string
}

// headReplace records why the head pod was deleted.
type headReplace struct {
	pod    string
	reason string
	// current is true in the reconcile that deleted the pod.
	current bool
}

// podEvent aggregates the pods a phase created or deleted for one reason into a single event per
// reconcile, instead of one event per pod.
type podEvents map[string][]string

func (p podEvents) add(reason, pod string) { p[reason] = append(p[reason], pod) }

func (s *scope) flushPodEvents(p podEvents, action string, nouns map[string]string) {
	for reason, pods := range p {
		s.events.Add(corev1.EventTypeNormal, reason, action, "%s %s", nouns[reason], listNames(pods))
	}
}

// maxNamesInEvent is how many names an event note lists before summarising the rest: the API
// server rejects notes longer than 1024 bytes.
const maxNamesInEvent = 10

// listNames joins names with ", ", listing at most maxNamesInEvent of them and counting the rest
// ("a, b, c and 5 more").
func listNames(names []string) string {
	if len(names) <= maxNamesInEvent {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamesInEvent], ", "), len(names)-maxNamesInEvent)
}

func (s *scope) fail(reason string, err error) {
	if s.replicaFailure == nil {
		s.replicaFailure = &failure{reason: reason, message: err.Error()}
	}
}

// blockPods records why pods cannot be created (the first reason wins).
func (s *scope) blockPods(why string) {
	if s.podsBlocked == "" {
		s.podsBlocked = why
	}
}

// wakeAt lowers requeueAt to t.
func (s *scope) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	if s.requeueAt.IsZero() || t.Before(s.requeueAt) {
		s.requeueAt = t
	}
}

// Pod selection helpers.

func podsOfType(pods []corev1.Pod, t rayv1.RayNodeType) []corev1.Pod {
	var out []corev1.Pod
	for i := range pods {
		if pods[i].Labels[rayv1.RayNodeTypeLabelKey] == string(t) {
			out = append(out, pods[i])
		}
	}
	return out
}

func (s *scope) headPods() []corev1.Pod { return podsOfType(s.pods, rayv1.HeadNode) }

func (s *scope) workerPods(group string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range podsOfType(s.pods, rayv1.WorkerNode) {
		if p.Labels[rayv1.RayNodeGroupLabelKey] == group {
			out = append(out, p)
		}
	}
	return out
}

// groupOf returns the worker pods of one group.
func groupOf(pods []corev1.Pod, group string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range podsOfType(pods, rayv1.WorkerNode) {
		if p.Labels[rayv1.RayNodeGroupLabelKey] == group {
			out = append(out, p)
		}
	}
	return out
}
