package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/rayk8s/rayk8s/internal/devcluster/netns"
	"github.com/rayk8s/rayk8s/internal/devcluster/podinit"
	"github.com/rayk8s/rayk8s/internal/devcluster/processnode"
	"github.com/rayk8s/rayk8s/internal/devcluster/servicenet"
)

// roleEnv makes this test binary, run as a pod's container, a small TCP server or client.
const roleEnv = "DEVCLUSTER_TEST_ROLE"

func TestMain(m *testing.M) {
	// Pods' containers run under this test binary (podinit's helper).
	podinit.RunIfHelper()
	switch os.Getenv(roleEnv) {
	case "serve":
		os.Exit(serve(os.Getenv("PORT"), os.Getenv("POD_NAME")))
	case "dial":
		os.Exit(dial(strings.Fields(os.Getenv("TARGETS"))))
	}
	os.Exit(m.Run())
}

// serve greets every TCP connection with "hello from <pod>".
func serve(port, pod string) int {
	l, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		_, _ = fmt.Fprintf(c, "hello from %s\n", pod)
		_ = c.Close()
	}
}

// dial resolves each host:port with the pod's resolv.conf (Go's resolver) and reads one line
// from it, printing "<host> <addrs> <line>".
func dial(targets []string) int {
	for _, t := range targets {
		host, port, _ := net.SplitHostPort(t)
		var addrs []string
		var err error
		for range 20 {
			if addrs, err = net.LookupHost(host); err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			fmt.Printf("%s lookup failed: %v\n", host, err)
			return 1
		}
		line, err := readGreeting(net.JoinHostPort(host, port))
		if err != nil {
			fmt.Printf("%s dial failed: %v\n", host, err)
			return 1
		}
		fmt.Printf("%s %s %s\n", host, strings.Join(addrs, ","), line)
	}
	return 0
}

func readGreeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
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
	o.ProxyHealthPort, o.ProxyMetricsPort, o.DNSHealthPort, o.DNSReadyPort = freePort(t), freePort(t), freePort(t), freePort(t)
	o.NodeName = "test-node"
	o.Backoff = processnode.Backoff{Initial: 200 * time.Millisecond, Max: time.Second, Reset: time.Minute}
	o.Log = zap.New(zap.WriteTo(os.Stderr))
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "coredns"} {
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
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cl, err := Up(ctx, o)
	servicesBusy := errors.Is(err, servicenet.ErrProxyBusy)
	if servicesBusy {
		// Another local cluster (`make run`?) owns kube-proxy's machine-wide tables.
		t.Logf("running without Services, so their checks are skipped: %v", err)
		o.WithoutServices = true
		cl, err = Up(ctx, o)
	}
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
				Command: []string{"sh", "-c", `echo hi from $POD_NAME at $POD_IP; cat /work/init.txt; test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token ok; test -f /opt/rayk8s/python/rayk8s/serve/__init__.py && echo image files ok at $PYTHONPATH; exec sleep 1000`},
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
		want := "hi from hi at " + got.Status.PodIP + "\ninit\ntoken ok\nimage files ok at /opt/rayk8s/python\n"
		return err == nil && string(b) == want, string(b) + errString(err)
	})

	if servicesBusy {
		t.Log("SKIPPED: Services and cluster DNS (another local cluster runs kube-proxy)")
	} else {
		testServices(ctx, t, cs, o, grace)
	}

	// The pod's network namespace exists while it runs and is gone after deletion.
	n, err := netns.New(netns.Config{Bridge: o.Bridge, Prefix: o.Prefix, ClusterCIDR: o.ClusterCIDR,
		NodeCIDR: netip.PrefixFrom(o.ClusterCIDR.Addr(), 24)}, netns.ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := n.Namespaces(ctx); len(names) != 1 {
		t.Fatalf("network namespaces while running: %v, want one", names)
	}
	// (testServices deleted its pods; only "hi" remains.)
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

	// A deleted pod whose process exits at SIGTERM is gone from the API at once, as with a
	// kubelet, not when its (here ten-minute) grace period ends.
	long := int64(600)
	graceful := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "graceful", Namespace: "default"},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &long, Containers: []corev1.Container{{
			Name: "c", Image: "ignored", Command: []string{"sleep", "1000"}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, graceful, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the graceful pod running", time.Minute, func() (bool, string) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "graceful", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, describe(p) + errString(err)
	})
	if err := cs.CoreV1().Pods("default").Delete(ctx, "graceful", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the graceful pod removed once its process exited", time.Minute, func() (bool, string) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "graceful", metav1.GetOptions{})
		return apierrors.IsNotFound(err), describe(p) + errString(err)
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
	if !servicesBusy {
		out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
		for _, table := range []string{"table ip kube-proxy", "table ip6 kube-proxy", "table inet " + servicenet.TableName(o.Prefix)} {
			if strings.Contains(string(out), table) {
				t.Errorf("nftables %s left after Stop", table)
			}
		}
	}
}

// testServices runs a TCP server pod behind a ClusterIP and a headless Service and a client pod
// that resolves both through cluster DNS and reads the server's greeting; the host reaches the
// ClusterIP too.
func testServices(ctx context.Context, t *testing.T, cs kubernetes.Interface, o Options, grace int64) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	server := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Hostname:                      "web-0", Subdomain: "web-headless",
			Containers: []corev1.Container{{Name: "web", Image: "ignored", Command: []string{self},
				Env: []corev1.EnvVar{{Name: roleEnv, Value: "serve"}, {Name: "PORT", Value: "8080"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				// Not ready: the headless Service publishes it all the same.
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}, PeriodSeconds: 1},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, server, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clusterIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{
		Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-headless", Namespace: "default"}, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, PublishNotReadyAddresses: true, Selector: labels,
		Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}
	for _, svc := range []*corev1.Service{clusterIP, headless} {
		if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var srv *corev1.Pod
	poll(t, "the server pod running", time.Minute, func() (bool, string) {
		srv, err = cs.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
		return err == nil && srv.Status.Phase == corev1.PodRunning && srv.Status.PodIP != "", describe(srv) + errString(err)
	})
	// web-0 never gets ready, so kube-proxy sends the ClusterIP's traffic to a second, ready server.
	ready := server.DeepCopy()
	ready.Name, ready.Spec.Hostname, ready.Spec.Containers[0].ReadinessProbe = "web-1", "web-1", nil
	if _, err := cs.CoreV1().Pods("default").Create(ctx, ready, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// From the host, through kube-proxy.
	poll(t, "the ClusterIP reachable from the host", time.Minute, func() (bool, string) {
		line, err := readGreeting(net.JoinHostPort(svc.Spec.ClusterIP, "80"))
		return err == nil && line == "hello from web-1", line + errString(err)
	})

	never := corev1.RestartPolicyNever
	client := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "default"},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, RestartPolicy: never,
			Containers: []corev1.Container{{Name: "c", Image: "ignored", Command: []string{self},
				Env: []corev1.EnvVar{{Name: roleEnv, Value: "dial"},
					{Name: "TARGETS", Value: "web:80 web-0.web-headless.default.svc.cluster.local:8080 web-headless:8080"}}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, client, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the client pod to finish", 90*time.Second, func() (bool, string) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "client", metav1.GetOptions{})
		return err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed), describe(p) + errString(err)
	})
	logs, err := cs.CoreV1().Pods("default").GetLogs("client", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client pod:\n%s", logs)
	srv1, err := cs.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"web " + svc.Spec.ClusterIP + " hello from web-1",
		"web-0.web-headless.default.svc.cluster.local " + srv.Status.PodIP + " hello from web-0",
	} {
		if !strings.Contains(string(logs), want+"\n") {
			t.Errorf("client output lacks %q", want)
		}
	}
	// The headless name resolves to both pods' IPs (the not-ready one too: publishNotReadyAddresses).
	headlessLine := ""
	for _, l := range strings.Split(string(logs), "\n") {
		if strings.HasPrefix(l, "web-headless ") {
			headlessLine = l
		}
	}
	if !strings.Contains(headlessLine, srv.Status.PodIP) || !strings.Contains(headlessLine, srv1.Status.PodIP) || !strings.Contains(headlessLine, "hello from web-") {
		t.Errorf("headless Service: %q, want both %s and %s and a greeting", headlessLine, srv.Status.PodIP, srv1.Status.PodIP)
	}
	for _, name := range []string{"client", "web-0", "web-1"} {
		_ = cs.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{})
	}
	poll(t, "the service pods to be deleted", time.Minute, func() (bool, string) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var left []string
		for _, p := range pods.Items {
			if p.Name != "hi" {
				left = append(left, p.Name)
			}
		}
		return len(left) == 0, strings.Join(left, ",")
	})
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
