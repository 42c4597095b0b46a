package resources

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestShouldDeletePod(t *testing.T) {
	terminated := []corev1.ContainerStatus{{Name: "ray-worker", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"},
	}}}
	sidecarTerminated := []corev1.ContainerStatus{
		{Name: "ray-worker", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		{Name: "sidecar", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
	}
	tests := []struct {
		name       string
		phase      corev1.PodPhase
		policy     corev1.RestartPolicy
		statuses   []corev1.ContainerStatus
		want       bool
		wantReason string
	}{
		{name: "running and healthy", phase: corev1.PodRunning, want: false},
		{name: "pending", phase: corev1.PodPending, want: false},
		{name: "failed", phase: corev1.PodFailed, want: true, wantReason: "terminal phase Failed"},
		{name: "succeeded", phase: corev1.PodSucceeded, want: true, wantReason: "terminal phase Succeeded"},
		{name: "failed even with restartPolicy Always", phase: corev1.PodFailed, policy: corev1.RestartPolicyAlways, want: true},
		{name: "ray container exited, Never", phase: corev1.PodRunning, policy: corev1.RestartPolicyNever, statuses: terminated, want: true, wantReason: "restartPolicy is Never"},
		{name: "ray container exited, Always", phase: corev1.PodRunning, policy: corev1.RestartPolicyAlways, statuses: terminated, want: false, wantReason: "kubelet restarts it"},
		{name: "ray container exited, OnFailure", phase: corev1.PodRunning, policy: corev1.RestartPolicyOnFailure, statuses: terminated, want: false},
		{name: "ray container exited, unset policy means Always", phase: corev1.PodRunning, statuses: terminated, want: false, wantReason: "Always"},
		{name: "only a sidecar exited", phase: corev1.PodRunning, policy: corev1.RestartPolicyNever, statuses: sidecarTerminated, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "rc-small-worker-abcde", Namespace: "ns", Labels: map[string]string{"ray.io/node-type": "worker"}},
				Spec: corev1.PodSpec{
					RestartPolicy: tt.policy,
					Containers:    []corev1.Container{{Name: "ray-worker"}, {Name: "sidecar"}},
				},
				Status: corev1.PodStatus{Phase: tt.phase, ContainerStatuses: tt.statuses},
			}
			got, reason := ShouldDeletePod(pod)
			if got != tt.want {
				t.Errorf("ShouldDeletePod = %v (%s), want %v", got, reason, tt.want)
			}
			if reason == "" || !strings.Contains(reason, "ns/rc-small-worker-abcde") {
				t.Errorf("reason %q does not name the pod", reason)
			}
			if tt.wantReason != "" && !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason %q does not mention %q", reason, tt.wantReason)
			}
		})
	}
}
