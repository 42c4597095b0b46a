package processnode

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running() corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func exited(code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func waiting(restarted bool) corev1.ContainerStatus {
	s := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	if restarted {
		s.LastTerminationState = exited(1).State
	}
	return s
}

func TestPodPhase(t *testing.T) {
	never := func(corev1.ContainerStatus) bool { return false }
	always := func(corev1.ContainerStatus) bool { return true }
	cases := []struct {
		name        string
		initFailed  bool
		initialized bool
		statuses    []corev1.ContainerStatus
		restart     func(corev1.ContainerStatus) bool
		want        corev1.PodPhase
	}{
		{"init failed", true, false, nil, never, corev1.PodFailed},
		{"initialising", false, false, []corev1.ContainerStatus{waiting(false)}, never, corev1.PodPending},
		{"creating", false, true, []corev1.ContainerStatus{waiting(false)}, never, corev1.PodPending},
		{"one running one creating", false, true, []corev1.ContainerStatus{running(), waiting(false)}, never, corev1.PodPending},
		{"running", false, true, []corev1.ContainerStatus{running(), running()}, never, corev1.PodRunning},
		{"crash-looping", false, true, []corev1.ContainerStatus{waiting(true)}, always, corev1.PodRunning},
		{"exited, will restart", false, true, []corev1.ContainerStatus{exited(1)}, always, corev1.PodRunning},
		{"all succeeded", false, true, []corev1.ContainerStatus{exited(0), exited(0)}, never, corev1.PodSucceeded},
		{"one failed", false, true, []corev1.ContainerStatus{exited(0), exited(2)}, never, corev1.PodFailed},
		{"one still running", false, true, []corev1.ContainerStatus{exited(2), running()}, never, corev1.PodRunning},
	}
	for _, c := range cases {
		if got := podPhase(&corev1.PodSpec{}, c.initFailed, c.initialized, c.statuses, c.restart); got != c.want {
			t.Errorf("%s: phase %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	t0, t1 := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(200, 0))
	conds := setCondition(nil, corev1.PodReady, false, "ContainersNotReady", t0)
	conds = setCondition(conds, corev1.PodReady, false, "ContainersNotReady", t1)
	if !conds[0].LastTransitionTime.Equal(&t0) {
		t.Errorf("transition time moved without a change")
	}
	conds = setCondition(conds, corev1.PodReady, true, "x", t1)
	if conds[0].Status != corev1.ConditionTrue || conds[0].Reason != "" || !conds[0].LastTransitionTime.Equal(&t1) {
		t.Errorf("condition after change: %+v", conds[0])
	}
}

func TestBackoffDelay(t *testing.T) {
	b := DefaultBackoff
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := b.Delay(int32(i + 1)); got != w {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w)
		}
	}
}

func TestHostsFile(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "head-0", Namespace: "ns"},
		Spec: corev1.PodSpec{Hostname: "head", Subdomain: "svc", HostAliases: []corev1.HostAlias{{IP: "1.2.3.4", Hostnames: []string{"a", "b"}}}}}
	got := hostsFile(pod, "10.0.0.5", "cluster.local")
	for _, want := range []string{"10.0.0.5\thead.svc.ns.svc.cluster.local\thead\n", "1.2.3.4\ta\tb\n", "127.0.0.1\tlocalhost\n"} {
		if !contains(got, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, got)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
