package rayjob

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// headPodFacts is what the controller saw of the cluster's head pod.
// pod is nil when the cluster has no live head pod.
type headPodFacts struct {
	pod *corev1.Pod
}

// headVerdict is the classification of a head pod: a failure reason (empty when the pod may
// still come up) and, when the pod looks bad but not yet bad enough, when to look again.
type headVerdict struct {
	reason    rayv1.JobFailedReason
	message   string
	recheckAt time.Time
}

// Waiting reasons of a container whose image cannot be pulled (kubelet's strings).
var imagePullReasons = map[string]bool{
	"ErrImagePull":      true,
	"ImagePullBackOff":  true,
	"InvalidImageName":  true,
	"ErrImageNeverPull": true,
}

// classifyHeadPod decides whether the head pod can no longer be expected to run the job:
//   - the pod failed (restartPolicy Never) → HeadPodFailed;
//   - an init container restarted HeadPodRestartThreshold times, or failed for good →
//     HeadPodInitContainerFailed;
//   - the Ray container restarted HeadPodRestartThreshold times → HeadPodCrashLoopBackOff;
//   - the pod stayed unschedulable, or its image unpullable, for HeadPodPendingTimeout →
//     HeadPodUnschedulable / HeadPodImagePullFailed.
//
// Pods deleted by the RayCluster controller for replacement are not looked at.
func classifyHeadPod(h headPodFacts, now time.Time, cfg Config) headVerdict {
	if h.pod == nil || h.pod.DeletionTimestamp != nil {
		return headVerdict{}
	}
	pod := h.pod
	threshold := cfg.HeadPodRestartThreshold
	if pod.Status.Phase == corev1.PodFailed {
		for _, cs := range pod.Status.InitContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
				return headVerdict{reason: rayv1.HeadPodInitContainerFailed,
					message: fmt.Sprintf("Init container %s of head pod %s failed: %s", cs.Name, pod.Name, containerDetail(cs))}
			}
		}
		return headVerdict{reason: rayv1.HeadPodFailed, message: fmt.Sprintf("Head pod %s failed: %s", pod.Name, podFailureDetail(pod))}
	}
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.RestartCount >= threshold {
			return headVerdict{reason: rayv1.HeadPodInitContainerFailed,
				message: fmt.Sprintf("Init container %s of head pod %s restarted %d times: %s", cs.Name, pod.Name, cs.RestartCount, containerDetail(cs))}
		}
	}
	for i, cs := range pod.Status.ContainerStatuses {
		if !isRayContainer(pod, cs.Name, i) {
			continue
		}
		if cs.RestartCount >= threshold {
			return headVerdict{reason: rayv1.HeadPodCrashLoopBackOff,
				message: fmt.Sprintf("Ray container %s of head pod %s restarted %d times: %s", cs.Name, pod.Name, cs.RestartCount, containerDetail(cs))}
		}
	}
	timeout := cfg.HeadPodPendingTimeout
	if pod.Status.Phase == corev1.PodPending {
		for _, c := range pod.Status.Conditions {
			if c.Type != corev1.PodScheduled || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
				continue
			}
			limit := c.LastTransitionTime.Add(timeout)
			if !now.Before(limit) {
				return headVerdict{reason: rayv1.HeadPodUnschedulable,
					message: fmt.Sprintf("Head pod %s has been unschedulable for %s: %s", pod.Name, now.Sub(c.LastTransitionTime.Time).Round(time.Second), c.Message)}
			}
			return headVerdict{recheckAt: limit}
		}
		for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && imagePullReasons[w.Reason] {
				since := pod.CreationTimestamp.Time
				if sc := scheduledAt(pod); !sc.IsZero() {
					since = sc
				}
				limit := since.Add(timeout)
				if !now.Before(limit) {
					return headVerdict{reason: rayv1.HeadPodImagePullFailed,
						message: fmt.Sprintf("Container %s of head pod %s cannot pull image %s: %s: %s", cs.Name, pod.Name, cs.Image, w.Reason, w.Message)}
				}
				return headVerdict{recheckAt: limit}
			}
		}
	}
	return headVerdict{}
}

// pendingHint says what the head pod is waiting for, to enrich a PreRunningDeadlineExceeded
// message.
func (h headPodFacts) pendingHint() string {
	if h.pod == nil {
		return "no head pod exists"
	}
	pod := h.pod
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("head pod %s is not scheduled: %s", pod.Name, c.Message)
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return fmt.Sprintf("container %s of head pod %s is waiting: %s %s", cs.Name, pod.Name, w.Reason, w.Message)
		}
		if !cs.Ready && cs.RestartCount > 0 {
			return fmt.Sprintf("container %s of head pod %s restarted %d times: %s", cs.Name, pod.Name, cs.RestartCount, containerDetail(cs))
		}
	}
	return fmt.Sprintf("head pod %s is %s", pod.Name, pod.Status.Phase)
}

func isRayContainer(pod *corev1.Pod, name string, statusIndex int) bool {
	if len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Name == name
	}
	return statusIndex == 0
}

func scheduledAt(pod *corev1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// containerDetail describes the last termination of a container (exit code, reason, message).
func containerDetail(cs corev1.ContainerStatus) string {
	t := cs.LastTerminationState.Terminated
	if t == nil {
		t = cs.State.Terminated
	}
	var parts []string
	if t != nil {
		parts = append(parts, fmt.Sprintf("exit code %d", t.ExitCode))
		if t.Reason != "" {
			parts = append(parts, t.Reason)
		}
		if m := strings.TrimSpace(t.Message); m != "" {
			parts = append(parts, m)
		}
	}
	if w := cs.State.Waiting; w != nil && w.Reason != "" {
		parts = append(parts, "now "+w.Reason)
	}
	if len(parts) == 0 {
		return "no termination recorded"
	}
	return strings.Join(parts, ", ")
}

func podFailureDetail(pod *corev1.Pod) string {
	var parts []string
	if pod.Status.Reason != "" || pod.Status.Message != "" {
		parts = append(parts, strings.TrimSpace(pod.Status.Reason+" "+pod.Status.Message))
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			parts = append(parts, fmt.Sprintf("container %s: %s", cs.Name, containerDetail(cs)))
		}
	}
	if len(parts) == 0 {
		return "no detail reported"
	}
	return strings.Join(parts, "; ")
}
