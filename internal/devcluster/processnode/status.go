package processnode

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podPhase follows the kubelet's rules: Pending until initialised and a container has run,
// Running while any container runs or will be restarted, Succeeded when all exited 0 for good,
// Failed when all stopped for good and one failed.
func podPhase(spec *corev1.PodSpec, initFailed, initialized bool, statuses []corev1.ContainerStatus, willRestart func(corev1.ContainerStatus) bool) corev1.PodPhase {
	if initFailed {
		return corev1.PodFailed
	}
	if !initialized {
		return corev1.PodPending
	}
	var running, waiting, succeeded, failed int
	for _, s := range statuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			if willRestart(s) {
				running++
			} else if s.State.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				running++ // restarting after a crash
			} else {
				waiting++
			}
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case failed > 0:
		return corev1.PodFailed
	case succeeded > 0:
		return corev1.PodSucceeded
	}
	return corev1.PodPending
}

// setCondition sets a condition, moving its transition time only when the status changes.
func setCondition(conds []corev1.PodCondition, t corev1.PodConditionType, ok bool, reason string, now metav1.Time) []corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
		reason = ""
	}
	for i := range conds {
		if conds[i].Type == t {
			if conds[i].Status != status {
				conds[i].LastTransitionTime = now
			}
			conds[i].Status, conds[i].Reason = status, reason
			return conds
		}
	}
	return append(conds, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now})
}

// readiness reports whether every container is ready, and the reason when not.
func readiness(statuses []corev1.ContainerStatus) (bool, string) {
	if len(statuses) == 0 {
		return false, "ContainersNotReady"
	}
	for _, s := range statuses {
		if !s.Ready {
			return false, "ContainersNotReady"
		}
	}
	return true, ""
}
