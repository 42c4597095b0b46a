package raycluster

import (
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// maxConditionMessage keeps condition messages well below the API limit of 32768 bytes.
const maxConditionMessage = 4096

// statusTransitions are the user-visible changes computeStatus found; they become events (and
// metrics) once the status write succeeded.
type statusTransitions struct {
	events reconcilekit.Events
	// requeueNow asks for another reconcile at once: a recorded suspend transition makes the next
	// reconcile act on pods, and no watch event would trigger it.
	requeueNow bool
	// provisioned is true when RayClusterProvisioned became True in this reconcile.
	provisioned bool
}

// computeStatus fills s.cluster.Status from the facts in s. old is the status read at the start
// of the reconcile. It is the only function that changes the status.
func computeStatus(s *scope, old rayv1.RayClusterStatus, reconcileErr error) statusTransitions {
	c := s.cluster
	setWorkerCounts(c, s.pods)
	setDesiredResources(c)
	setHead(c, s)
	if s.conditions {
		setSpecValidCondition(c, s)
		setHeadPodReadyCondition(c, s, old)
		setReplicaFailureCondition(c, s)
		setSuspendConditions(c, s, old)
		setProvisionedCondition(c, s, old)
	}
	setState(c, s, reconcileErr)
	if reconcileErr == nil {
		c.Status.ObservedGeneration = c.Generation
	}
	return transitionsOf(old, c.Status)
}

func setCondition(c *rayv1.RayCluster, t rayv1.RayClusterConditionType, status metav1.ConditionStatus, reason, message string, now time.Time) {
	if len(message) > maxConditionMessage {
		message = message[:maxConditionMessage]
	}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: string(t), Status: status, Reason: reason, Message: message,
		ObservedGeneration: c.Generation, LastTransitionTime: metav1.NewTime(now),
	})
}

func conditionTrue(conds []metav1.Condition, t rayv1.RayClusterConditionType) bool {
	return meta.IsStatusConditionTrue(conds, string(t))
}

// setWorkerCounts fills the desired/min/max (from the spec) and ready/available (from the pods)
// worker counts.
func setWorkerCounts(c *rayv1.RayCluster, pods []corev1.Pod) {
	var desired, minimum int32
	var maximum int64
	for i := range c.Spec.WorkerGroupSpecs {
		g := &c.Spec.WorkerGroupSpecs[i]
		if groupSuspended(g) {
			continue
		}
		desired += desiredPods(g)
		minimum += deref(g.MinReplicas, 0) * hosts(g)
		maximum += int64(deref(g.MaxReplicas, math.MaxInt32)) * int64(hosts(g))
	}
	c.Status.DesiredWorkerReplicas = desired
	c.Status.MinWorkerReplicas = minimum
	c.Status.MaxWorkerReplicas = int32(min(maximum, math.MaxInt32))
	var ready, available int32
	for _, p := range podsOfType(pods, rayv1.WorkerNode) {
		if p.Status.Phase == corev1.PodRunning {
			available++
			if resources.PodRunningAndReady(&p) {
				ready++
			}
		}
	}
	c.Status.ReadyWorkerReplicas, c.Status.AvailableWorkerReplicas = ready, available
}

// setDesiredResources sums the requests (falling back to limits) of every container of the head
// and of each desired worker pod.
func setDesiredResources(c *rayv1.RayCluster) {
	var cpu, mem, gpu, tpu resource.Quantity
	add := func(spec *corev1.PodSpec, times int32) {
		for _, ctr := range spec.Containers {
			for name, q := range containerResources(&ctr) {
				for range times {
					switch {
					case name == corev1.ResourceCPU:
						cpu.Add(q)
					case name == corev1.ResourceMemory:
						mem.Add(q)
					case name == "google.com/tpu":
						tpu.Add(q)
					case strings.HasSuffix(string(name), "gpu") || strings.HasPrefix(string(name), "nvidia.com/mig-"):
						gpu.Add(q)
					}
				}
			}
		}
	}
	add(&c.Spec.HeadGroupSpec.Template.Spec, 1)
	for i := range c.Spec.WorkerGroupSpecs {
		g := &c.Spec.WorkerGroupSpecs[i]
		if !groupSuspended(g) {
			add(&g.Template.Spec, desiredPods(g))
		}
	}
	c.Status.DesiredCPU, c.Status.DesiredMemory, c.Status.DesiredGPU, c.Status.DesiredTPU = cpu, mem, gpu, tpu
}

func containerResources(ctr *corev1.Container) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range ctr.Resources.Limits {
		out[name] = q
	}
	for name, q := range ctr.Resources.Requests {
		out[name] = q
	}
	return out
}

// setHead fills status.head and status.endpoints from the head pod and Service.
func setHead(c *rayv1.RayCluster, s *scope) {
	var head rayv1.HeadInfo
	if hp := s.headPods(); len(hp) == 1 {
		head.PodName, head.PodIP = hp[0].Name, hp[0].Status.PodIP
	}
	var endpoints map[string]string
	if svc := headService(s.services); svc != nil {
		head.ServiceName = svc.Name
		head.ServiceIP = svc.Spec.ClusterIP
		if head.ServiceIP == corev1.ClusterIPNone {
			head.ServiceIP = head.PodIP
		}
		for _, p := range svc.Spec.Ports {
			port := p.Port
			switch {
			case p.NodePort != 0:
				port = p.NodePort
			case p.TargetPort.IntVal != 0:
				port = p.TargetPort.IntVal
			}
			if endpoints == nil {
				endpoints = map[string]string{}
			}
			endpoints[p.Name] = strconv.Itoa(int(port))
		}
	}
	c.Status.Head, c.Status.Endpoints = head, endpoints
}

// setSpecValidCondition reports the result of validateCluster.
func setSpecValidCondition(c *rayv1.RayCluster, s *scope) {
	if s.validationErr != nil {
		setCondition(c, rayv1.RayClusterSpecValid, metav1.ConditionFalse, rayv1.InvalidRayClusterSpec, s.validationErr.Error(), s.now)
		return
	}
	setCondition(c, rayv1.RayClusterSpecValid, metav1.ConditionTrue, rayv1.ValidRayClusterSpec, "", s.now)
}

// setHeadPodReadyCondition mirrors the head pod's readiness. After the operator replaced a failed
// head, the condition keeps saying why until the new head is ready.
func setHeadPodReadyCondition(c *rayv1.RayCluster, s *scope, old rayv1.RayClusterStatus) {
	status, reason, message := headPodReadiness(s.headPods())
	if s.headReplaced != nil && (s.headReplaced.current || status != metav1.ConditionTrue) {
		status, reason, message = metav1.ConditionFalse, rayv1.HeadPodReplaced, "head pod "+s.headReplaced.pod+" was deleted to be recreated: "+s.headReplaced.reason
	} else if status != metav1.ConditionTrue {
		if prev := meta.FindStatusCondition(old.Conditions, string(rayv1.HeadPodReady)); prev != nil && prev.Reason == rayv1.HeadPodReplaced {
			reason, message = prev.Reason, prev.Message
		}
	}
	setCondition(c, rayv1.HeadPodReady, status, reason, message, s.now)
}

func headPodReadiness(heads []corev1.Pod) (metav1.ConditionStatus, string, string) {
	if len(heads) == 0 {
		return metav1.ConditionFalse, rayv1.HeadPodNotFound, "the head pod does not exist"
	}
	p := &heads[0]
	if resources.PodRunningAndReady(p) {
		return metav1.ConditionTrue, rayv1.HeadPodRunningAndReady, ""
	}
	reason, message := rayv1.HeadPodNotReady, "head pod "+p.Name+" is "+string(p.Status.Phase)
	for _, cond := range p.Status.Conditions {
		if cond.Type != corev1.PodReady {
			continue
		}
		if cond.Reason != "" {
			reason = cond.Reason
		}
		if cond.Message != "" {
			message = cond.Message
		}
		if cond.Reason == "ContainersNotReady" {
			for _, cs := range p.Status.ContainerStatuses {
				switch {
				case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
					return metav1.ConditionFalse, cs.State.Waiting.Reason, cs.State.Waiting.Message
				case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
					return metav1.ConditionFalse, cs.State.Terminated.Reason, cs.State.Terminated.Message
				}
			}
		}
	}
	return metav1.ConditionFalse, reason, message
}

// setReplicaFailureCondition is True while a pod create or delete failed in this reconcile and is
// removed after a clean one.
func setReplicaFailureCondition(c *rayv1.RayCluster, s *scope) {
	if s.replicaFailure == nil {
		meta.RemoveStatusCondition(&c.Status.Conditions, string(rayv1.RayClusterReplicaFailure))
		return
	}
	setCondition(c, rayv1.RayClusterReplicaFailure, metav1.ConditionTrue, s.replicaFailure.reason, s.replicaFailure.message, s.now)
}

// setSuspendConditions drives the two-phase suspend: Suspending is recorded first (the pods
// phase only deletes pods once it is recorded), Suspended once no pod is left and no pod create
// is still on its way to the cache, and Suspended goes back to False when spec.suspend is
// cleared.
func setSuspendConditions(c *rayv1.RayCluster, s *scope, old rayv1.RayClusterStatus) {
	suspending := conditionTrue(old.Conditions, rayv1.RayClusterSuspending)
	suspended := conditionTrue(old.Conditions, rayv1.RayClusterSuspended)
	switch {
	case suspending:
		if len(s.allPods) == 0 && !s.createsPending {
			setCondition(c, rayv1.RayClusterSuspending, metav1.ConditionFalse, rayv1.RayClusterSuspendingReason, "", s.now)
			setCondition(c, rayv1.RayClusterSuspended, metav1.ConditionTrue, rayv1.RayClusterSuspendedReason, "every pod was deleted", s.now)
			setCondition(c, rayv1.RayClusterProvisioned, metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning, "the cluster is suspended", s.now)
		}
	case suspended:
		if !clusterSuspendRequested(c) {
			setCondition(c, rayv1.RayClusterSuspended, metav1.ConditionFalse, rayv1.RayClusterSuspendedReason, "", s.now)
		}
	default:
		setCondition(c, rayv1.RayClusterSuspended, metav1.ConditionFalse, rayv1.RayClusterSuspendedReason, "", s.now)
		if clusterSuspendRequested(c) {
			setCondition(c, rayv1.RayClusterSuspending, metav1.ConditionTrue, rayv1.RayClusterSuspendingReason, "deleting every pod", s.now)
		} else {
			setCondition(c, rayv1.RayClusterSuspending, metav1.ConditionFalse, rayv1.RayClusterSuspendingReason, "", s.now)
		}
	}
}

// setProvisionedCondition becomes True the first time every needed pod is running and ready and
// stays True until the cluster is suspended.
func setProvisionedCondition(c *rayv1.RayCluster, s *scope, old rayv1.RayClusterStatus) {
	if conditionTrue(c.Status.Conditions, rayv1.RayClusterSuspended) {
		setCondition(c, rayv1.RayClusterProvisioned, metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning, "the cluster is suspended", s.now)
		return
	}
	if conditionTrue(old.Conditions, rayv1.RayClusterProvisioned) {
		return
	}
	if ok, why := allPodsReady(s); !ok {
		setCondition(c, rayv1.RayClusterProvisioned, metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning, why, s.now)
		return
	}
	setCondition(c, rayv1.RayClusterProvisioned, metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime, "every pod is running and ready", s.now)
}

// allPodsReady reports whether the head and every desired worker exist and every pod of the
// cluster is Running and Ready; a single Pending pod (even a surplus one) makes it false.
func allPodsReady(s *scope) (bool, string) {
	heads := s.headPods()
	if len(heads) != 1 {
		return false, "waiting for the head pod"
	}
	workers := podsOfType(s.pods, rayv1.WorkerNode)
	if int32(len(workers)) < s.cluster.Status.DesiredWorkerReplicas {
		return false, strconv.Itoa(len(workers)) + " of " + strconv.Itoa(int(s.cluster.Status.DesiredWorkerReplicas)) + " worker pods exist"
	}
	for i := range s.pods {
		p := &s.pods[i]
		if !resources.PodRunningAndReady(p) {
			return false, "pod " + p.Name + " is " + string(p.Status.Phase) + " and not ready"
		}
	}
	return true, ""
}

// setState sets the deprecated coarse state and reason. Unlike KubeRay, "ready" is withdrawn as
// soon as a needed pod is not running and ready (users' complaint: ready while pods are Pending).
func setState(c *rayv1.RayCluster, s *scope, reconcileErr error) {
	prev := c.Status.State
	var state rayv1.ClusterState
	reason := ""
	switch {
	case clusterSuspendRequested(c):
		if len(s.allPods) == 0 && !s.createsPending {
			state = rayv1.ClusterStateSuspended
		}
	case s.validationErr != nil:
		reason = s.validationErr.Error()
	case reconcileErr != nil:
		reason = reconcileErr.Error()
	case s.podsBlocked != "":
		reason = s.podsBlocked
	default:
		if ok, _ := allPodsReady(s); ok {
			state = rayv1.ClusterStateReady
		}
	}
	if len(reason) > maxConditionMessage {
		reason = reason[:maxConditionMessage]
	}
	c.Status.State, c.Status.Reason = state, reason
	if state != prev && state != "" {
		times := make(map[rayv1.ClusterState]*metav1.Time, len(c.Status.StateTransitionTimes)+1)
		for k, v := range c.Status.StateTransitionTimes {
			times[k] = v
		}
		times[state] = ptrTime(s.now)
		c.Status.StateTransitionTimes = times
	}
}

// transitionsOf lists the user-visible changes between two statuses.
func transitionsOf(old, cur rayv1.RayClusterStatus) statusTransitions {
	var t statusTransitions
	became := func(ct rayv1.RayClusterConditionType, status metav1.ConditionStatus) (*metav1.Condition, bool) {
		n := meta.FindStatusCondition(cur.Conditions, string(ct))
		if n == nil || n.Status != status {
			return n, false
		}
		o := meta.FindStatusCondition(old.Conditions, string(ct))
		return n, o == nil || o.Status != status
	}
	if n, ok := became(rayv1.RayClusterSpecValid, metav1.ConditionFalse); ok || (n != nil && n.Status == metav1.ConditionFalse && messageChanged(old, n)) {
		t.events.Add(corev1.EventTypeWarning, rayv1.InvalidRayClusterSpec, "Validate", "%s", n.Message)
	}
	if _, ok := became(rayv1.RayClusterSuspending, metav1.ConditionTrue); ok {
		t.events.Add(corev1.EventTypeNormal, string(rayv1.RayClusterSuspending), "Suspend", "Suspending the cluster: deleting every pod")
		t.requeueNow = true
	}
	if _, ok := became(rayv1.RayClusterSuspended, metav1.ConditionTrue); ok {
		t.events.Add(corev1.EventTypeNormal, string(rayv1.RayClusterSuspended), "Suspend", "The cluster is suspended: every pod was deleted")
	}
	if _, ok := became(rayv1.RayClusterSuspended, metav1.ConditionFalse); ok && conditionTrue(old.Conditions, rayv1.RayClusterSuspended) {
		t.events.Add(corev1.EventTypeNormal, "Resumed", "Suspend", "The cluster is resumed: recreating its pods")
		t.requeueNow = true
	}
	// Provisioned gets no event: KubeRay emits none, and the condition with its transition time
	// already says it; the event would be one more API write per cluster.
	if _, ok := became(rayv1.RayClusterProvisioned, metav1.ConditionTrue); ok {
		t.provisioned = true
	}
	return t
}

func messageChanged(old rayv1.RayClusterStatus, n *metav1.Condition) bool {
	o := meta.FindStatusCondition(old.Conditions, n.Type)
	return o != nil && o.Message != n.Message
}

// statusChanged reports whether cur differs from old in anything but lastUpdateTime, so that a
// converged cluster is never written just to bump a timestamp.
func statusChanged(old, cur *rayv1.RayClusterStatus) bool {
	c := cur.DeepCopy()
	c.LastUpdateTime = old.LastUpdateTime
	return !apiequality.Semantic.DeepEqual(old, c)
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
