package resources

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// ShouldDeletePod reports whether a Ray pod is beyond repair and must be replaced, with a reason
// fit for an event or condition message:
//   - the pod reached a terminal phase (Failed or Succeeded), or
//   - its Ray container terminated and the pod's restartPolicy is Never, so the kubelet will not
//     restart it. With Always or OnFailure (or unset, which means Always) the kubelet restarts the
//     container and the pod is kept.
func ShouldDeletePod(pod *corev1.Pod) (bool, string) {
	kind := pod.Labels[rayv1.RayNodeTypeLabelKey]
	if kind == "" {
		kind = "Ray"
	}
	switch pod.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		return true, fmt.Sprintf("The %s pod %s/%s is in the terminal phase %s; it will be deleted and replaced.",
			kind, pod.Namespace, podName(pod), pod.Status.Phase)
	}
	term := rayContainerTerminated(pod)
	if term == nil {
		return false, fmt.Sprintf("The %s pod %s/%s is %s and its Ray container has not terminated.",
			kind, pod.Namespace, podName(pod), phaseOrUnknown(pod.Status.Phase))
	}
	if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return true, fmt.Sprintf("The Ray container of the %s pod %s/%s terminated (exit code %d, reason %q) and the pod's restartPolicy is Never; it will be deleted and replaced.",
			kind, pod.Namespace, podName(pod), term.ExitCode, term.Reason)
	}
	policy := pod.Spec.RestartPolicy
	if policy == "" {
		policy = corev1.RestartPolicyAlways
	}
	return false, fmt.Sprintf("The Ray container of the %s pod %s/%s terminated (exit code %d, reason %q) but the pod's restartPolicy is %s, so the kubelet restarts it.",
		kind, pod.Namespace, podName(pod), term.ExitCode, term.Reason, policy)
}

// rayContainerTerminated returns the terminated state of the Ray container (found by name), or nil.
func rayContainerTerminated(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	if len(pod.Spec.Containers) <= RayContainerIndex() {
		return nil
	}
	name := pod.Spec.Containers[RayContainerIndex()].Name
	for i := range pod.Status.ContainerStatuses {
		s := &pod.Status.ContainerStatuses[i]
		if s.Name == name {
			return s.State.Terminated
		}
	}
	return nil
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}

func phaseOrUnknown(p corev1.PodPhase) string {
	if p == "" {
		return "in an unknown phase"
	}
	return string(p)
}
