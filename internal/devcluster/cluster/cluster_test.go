package cluster

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/rayk8s/rayk8s/internal/devcluster/netns"
	"github.com/rayk8s/rayk8s/internal/devcluster/podinit"
	"github.com/rayk8s/rayk8s/internal/devcluster/processnode"
)

func TestMain(m *testing.M) {
	// Pods' containers run under this test binary (podinit's helper).
	podinit.RunIfHelper()
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testOptions(t *testing.T) Options {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..")
	o := Defaults(repo)
	o.StateDir = filepath.Join(t.TempDir(), "devcluster")
	o.CRDDirs = nil
	o.Bridge, o.Prefix = "rk8st0", "rk8st"
	o.ClusterCIDR, o.ServiceCIDR = netip.MustParsePrefix("10.247.0.0/16"), netip.MustParsePrefix("10.248.0.0/16")
	o.EtcdPort, o.EtcdPeerPort, o.APIServerPort = freePort(t), freePort(t), freePort(t)
	o.ControllerManagerPort, o.SchedulerPort, o.KubeletPort = freePort(t), freePort(t), freePort(t)
	o.NodeName = "test-node"
	o.Backoff = processnode.Backoff{Initial: 200 * time.Millisecond, Max: time.Second, Reset: time.Minute}
	o.Log = zap.New(zap.WriteTo(os.Stderr))
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			t.Fatalf("bin/%s is missing: run `make tools`", b)
		}
	}
	return o
}

func poll(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// TestPodLifecycle brings up the control plane and a process node, runs a pod with an exec
// readiness probe and checks its status, IP, logs, exec, restarts and cleanup.
func TestPodLifecycle(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the local cluster needs root (bridge, network and mount namespaces); run the tests as root")
	}
	for _, cmd := range []string{"ip", "nsenter", "sh", "sleep"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("needs %s (hack/install-deps.sh installs it)", cmd)
		}
	}
	o := testOptions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl, err := Up(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			cl.Stop()
		}
	}()
	cs, err := kubernetes.NewForConfig(cl.CP.Rest)
	if err != nil {
		t.Fatal(err)
	}
	// kube-controller-manager creates the default service account pods need.
	poll(t, "the default service account", time.Minute, func() (bool, string) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, errString(err)
	})

	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hi", Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			InitContainers: []corev1.Container{{Name: "init", Image: "ignored", Command: []string{"sh", "-c", "echo init > /work/init.txt"},
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}}},
			Containers: []corev1.Container{{
				Name: "main", Image: "ignored",
				Command: []string{"sh", "-c", `echo hi from $POD_NAME at $POD_IP; cat /work/init.txt; test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token ok; exec sleep 1000`},
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "test -f /work/init.txt"}}},
					PeriodSeconds: 1,
				},
			}},
			Volumes: []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *corev1.Pod
	poll(t, "pod Running and Ready", 90*time.Second, func() (bool, string) {
		got, err = cs.CoreV1().Pods("default").Get(ctx, "hi", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return got.Status.Phase == corev1.PodRunning && condition(got, corev1.PodReady), describe(got)
	})
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		if !condition(got, c) {
			t.Errorf("condition %s is not True: %s", c, describe(got))
		}
	}
	ip, err := netip.ParseAddr(got.Status.PodIP)
	if err != nil || !o.ClusterCIDR.Contains(ip) {
		t.Fatalf("pod IP %q is not in %s", got.Status.PodIP, o.ClusterCIDR)
	}
	if s := got.Status.InitContainerStatuses; len(s) != 1 || s[0].State.Terminated == nil || s[0].State.Terminated.ExitCode != 0 {
		t.Errorf("init container status: %+v", s)
	}

	// kubectl logs goes apiserver → the node's kubelet API.
	poll(t, "the container's log", 30*time.Second, func() (bool, string) {
		b, err := cs.CoreV1().Pods("default").GetLogs("hi", &corev1.PodLogOptions{Container: "main"}).DoRaw(ctx)
		want := "hi from hi at " + got.Status.PodIP + "\ninit\ntoken ok\n"
		return err == nil && string(b) == want, string(b) + errString(err)
	})

	// The pod's network namespace exists while it runs and is gone after deletion.
	n, err := netns.New(netns.Config{Bridge: o.Bridge, Prefix: o.Prefix, ClusterCIDR: o.ClusterCIDR,
		NodeCIDR: netip.PrefixFrom(o.ClusterCIDR.Addr(), 24)}, netns.ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := n.Namespaces(ctx); len(names) != 1 {
		t.Fatalf("network namespaces while running: %v, want one", names)
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "hi", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the pod to be deleted", time.Minute, func() (bool, string) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "hi", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		return false, describe(p) + errString(err)
	})
	poll(t, "the pod's network namespace to go", 30*time.Second, func() (bool, string) {
		names, err := n.Namespaces(ctx)
		return err == nil && len(names) == 0, strings.Join(names, ",") + errString(err)
	})

	// A crashing container is restarted with backoff and counted.
	never := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crash", Namespace: "default"},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
			Name: "c", Image: "ignored", Command: []string{"sh", "-c", "echo crash; exit 3"}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, never, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "restarts of a crashing container", time.Minute, func() (bool, string) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "crash", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, errString(err)
		}
		s := p.Status.ContainerStatuses[0]
		last := s.LastTerminationState.Terminated
		return s.RestartCount >= 2 && last != nil && last.ExitCode == 3, describe(p)
	})

	stopped = true
	cl.Stop()
	if names, _ := n.Namespaces(context.Background()); len(names) != 0 {
		t.Errorf("network namespaces left after Stop: %v", names)
	}
	if out, err := exec.Command("ip", "link", "show", "dev", o.Bridge).CombinedOutput(); err == nil {
		t.Errorf("bridge %s left after Stop: %s", o.Bridge, out)
	}
	if _, err := os.Stat(o.StateDir); !os.IsNotExist(err) {
		t.Errorf("state dir %s left after Stop (%v)", o.StateDir, err)
	}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func describe(p *corev1.Pod) string {
	if p == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(string(p.Status.Phase) + " " + p.Status.Message)
	for _, c := range p.Status.ContainerStatuses {
		b.WriteString(" " + c.Name + ":")
		switch {
		case c.State.Running != nil:
			b.WriteString("running")
		case c.State.Waiting != nil:
			b.WriteString("waiting " + c.State.Waiting.Reason + " " + c.State.Waiting.Message)
		case c.State.Terminated != nil:
			b.WriteString("terminated " + c.State.Terminated.Reason)
		}
	}
	return b.String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " " + err.Error()
}
