package rayservice

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/eventnote"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// computeStatus turns the facts the phases recorded into the RayService status. It is the only
// place that writes status fields; each setter owns its fields.
func computeStatus(s *scope, reconciled bool) {
	st := &s.rs.Status
	setClusterStatuses(s)
	setNumServeEndpoints(s)
	setReadyCondition(s)
	setUpgradeCondition(s)
	setServeConfigCondition(s)
	setSuspendConditions(s)
	if isTrue(st.Conditions, rayv1.RayServiceReady) {
		st.ServiceStatus = rayv1.Running
	} else {
		st.ServiceStatus = rayv1.NotRunning
	}
	if reconciled {
		st.ObservedGeneration = s.rs.Generation
	}
	if statusChanged(&s.before.Status, st) {
		now := metav1.NewTime(s.now)
		st.LastUpdateTime = &now
	}
}

// setClusterStatuses fills activeServiceStatus and pendingServiceStatus: the cluster names decided
// by the rollout and traffic phases, a copy of each cluster's status, and its applications. An
// application list that could not be read in this reconcile is kept from the previous status when
// it describes the same cluster.
func setClusterStatuses(s *scope) {
	st := &s.rs.Status
	prev := map[string]rayv1.RayServiceStatus{}
	for _, p := range []rayv1.RayServiceStatus{s.before.Status.ActiveServiceStatus, s.before.Status.PendingServiceStatus} {
		if p.RayClusterName != "" {
			prev[p.RayClusterName] = p
		}
	}
	build := func(name string) rayv1.RayServiceStatus {
		if name == "" {
			return rayv1.RayServiceStatus{}
		}
		out := rayv1.RayServiceStatus{RayClusterName: name}
		if rc := s.ownedNamed(name); rc != nil {
			out.RayClusterStatus = *rc.Status.DeepCopy()
		} else if p, ok := prev[name]; ok {
			out.RayClusterStatus = p.RayClusterStatus
		}
		cs := s.serve[name]
		switch {
		case cs != nil && cs.known:
			out.Applications = cs.apps
		case cs != nil && !cs.headReady:
			out.Applications = nil
		default:
			out.Applications = prev[name].Applications
		}
		return out
	}
	st.ActiveServiceStatus = build(s.activeName)
	st.PendingServiceStatus = build(s.pendingName)
}

func setNumServeEndpoints(s *scope) {
	switch {
	case s.suspend != suspendNone && s.suspend != suspendResumed:
		s.rs.Status.NumServeEndpoints = 0
	case s.endpointsKnown:
		s.rs.Status.NumServeEndpoints = s.numEndpoints
	}
}

// setReadyCondition: Ready is True while the serve Service has endpoints (KubeRay), with the
// terminal and blocking states first.
func setReadyCondition(s *scope) {
	st := &s.rs.Status
	cur := meta.FindStatusCondition(st.Conditions, string(rayv1.RayServiceReady))
	set := func(status metav1.ConditionStatus, reason rayv1.RayServiceConditionReason, msg string) {
		setCondition(s, string(rayv1.RayServiceReady), status, string(reason), msg)
	}
	rejected := rejectedMessage(s)
	switch {
	case s.invalid != nil:
		set(metav1.ConditionFalse, rayv1.RayServiceValidationFailed, s.invalid.Error())
	case s.suspend == suspendRequested || s.suspend == suspendInProgress:
		set(metav1.ConditionFalse, rayv1.RayServiceSuspendInProgress, "The RayService is being suspended")
	case s.suspend == suspendComplete:
		set(metav1.ConditionFalse, rayv1.RayServiceSuspendComplete, "The RayService is suspended")
	case s.suspend == suspendResumed:
		set(metav1.ConditionFalse, rayv1.RayServiceInitializing, "The RayService is resuming")
	case s.timedOut:
		set(metav1.ConditionFalse, rayv1.InitializingTimeout, "The RayService was not ready within its ray.io/initializing-timeout; recreate it to try again")
	case st.NumServeEndpoints > 0:
		set(metav1.ConditionTrue, rayv1.NonZeroServeEndpoints, "Number of serve endpoints is greater than 0")
	case cur != nil && cur.Status == metav1.ConditionTrue:
		set(metav1.ConditionFalse, rayv1.ZeroServeEndpoints, "Number of serve endpoints dropped to 0")
	case rejected != "" && (cur == nil || cur.Reason == string(rayv1.RayServiceInitializing) || cur.Reason == string(rayv1.RayServiceValidationFailed)):
		set(metav1.ConditionFalse, rayv1.RayServiceValidationFailed, "The dashboard rejected serveConfigV2: "+rejected)
	case cur == nil || cur.Reason == string(rayv1.RayServiceValidationFailed) || cur.Reason == string(rayv1.RayServiceSuspendComplete):
		set(metav1.ConditionFalse, rayv1.RayServiceInitializing, "RayService is initializing")
	}
}

// setUpgradeCondition mirrors the active and pending cluster names (KubeRay).
func setUpgradeCondition(s *scope) {
	t := string(rayv1.UpgradeInProgress)
	switch {
	case s.suspend == suspendResumed:
		setCondition(s, t, metav1.ConditionFalse, string(rayv1.RayServiceInitializing), "RayService is initializing")
	case s.suspend != suspendNone:
		setCondition(s, t, metav1.ConditionFalse, string(rayv1.NoPendingCluster), "The RayService is suspended")
	case s.activeName != "" && s.pendingName != "":
		setCondition(s, t, metav1.ConditionTrue, string(rayv1.BothActivePendingClustersExist),
			fmt.Sprintf("Preparing RayCluster %s to replace %s", s.pendingName, s.activeName))
	case s.activeName != "":
		setCondition(s, t, metav1.ConditionFalse, string(rayv1.NoPendingCluster), "Active Ray cluster exists and no pending Ray cluster")
	default:
		msg := "No active Ray cluster exists"
		if s.pendingName != "" {
			msg += ", and the RayService is preparing a new Ray cluster: " + s.pendingName
		}
		setCondition(s, t, metav1.ConditionUnknown, string(rayv1.NoActiveCluster), msg)
	}
}

// setServeConfigCondition reports whether the dashboard accepted the current serveConfigV2.
func setServeConfigCondition(s *scope) {
	if msg := rejectedMessage(s); msg != "" {
		setCondition(s, string(rayv1.ServeConfigValid), metav1.ConditionFalse, rayv1.InvalidServeConfig, msg)
		return
	}
	for _, cs := range s.serve {
		if cs.accepted {
			setCondition(s, string(rayv1.ServeConfigValid), metav1.ConditionTrue, rayv1.ServeConfigAccepted, "The dashboard accepted serveConfigV2")
			return
		}
	}
}

func setSuspendConditions(s *scope) {
	switch s.suspend {
	case suspendRequested:
		setCondition(s, string(rayv1.RayServiceSuspending), metav1.ConditionTrue, string(rayv1.RayServiceSuspendRequested), "spec.suspend is true")
	case suspendInProgress:
		setCondition(s, string(rayv1.RayServiceSuspending), metav1.ConditionTrue, string(rayv1.RayServiceSuspendInProgress), "Deleting the RayClusters and Services")
	case suspendComplete:
		setCondition(s, string(rayv1.RayServiceSuspending), metav1.ConditionFalse, string(rayv1.RayServiceSuspendComplete), "Every RayCluster and Service was deleted")
		setCondition(s, string(rayv1.RayServiceSuspended), metav1.ConditionTrue, string(rayv1.RayServiceSuspendComplete), "Every RayCluster and Service was deleted")
	case suspendResumed:
		setCondition(s, string(rayv1.RayServiceSuspended), metav1.ConditionFalse, string(rayv1.RayServiceResumed), "spec.suspend is false")
	}
}

// rejectedMessage is the dashboard's message when a cluster that received the current config
// rejected it.
func rejectedMessage(s *scope) string {
	for _, name := range []string{s.pendingName, s.activeName} {
		if cs := s.serve[name]; cs != nil && cs.rejected != "" {
			return cs.rejected
		}
	}
	return ""
}

func setCondition(s *scope, t string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.rs.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: eventnote.Truncate(msg, 32768),
		ObservedGeneration: s.rs.Generation, LastTransitionTime: metav1.NewTime(s.now),
	})
}

// statusChanged compares everything but lastUpdateTime.
func statusChanged(a, b *rayv1.RayServiceStatuses) bool {
	x, y := a.DeepCopy(), b.DeepCopy()
	x.LastUpdateTime, y.LastUpdateTime = nil, nil
	return !apiequality.Semantic.DeepEqual(x, y)
}

// transitionEvents are the events of user-visible status changes.
func transitionEvents(before, after *rayv1.RayServiceStatuses) reconcilekit.Events {
	var out reconcilekit.Events
	b := meta.FindStatusCondition(before.Conditions, string(rayv1.RayServiceReady))
	a := meta.FindStatusCondition(after.Conditions, string(rayv1.RayServiceReady))
	if a != nil && (b == nil || b.Status != a.Status || b.Reason != a.Reason) {
		typ := corev1.EventTypeNormal
		if a.Status != metav1.ConditionTrue && a.Reason != string(rayv1.RayServiceInitializing) {
			typ = corev1.EventTypeWarning
		}
		out.Add(typ, "Ready"+string(a.Status), "Status", "%s: %s", a.Reason, a.Message)
	}
	return out
}
