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

	"github.com/onsi/gomega"
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
	"github.com/rayk8s/rayk8s/internal/testsupport/freeport"
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
		// Cluster DNS may not publish the names yet when the pod starts. This runs in a pod, not
		// under a test, so a failure is printed for the test to read from the pod's log.
		var addrs []string
		g := gomega.NewGomega(func(msg string, _ ...int) { fmt.Printf("%s lookup failed: %s\n", host, msg) })
		resolved := g.Eventually(func() (err error) {
			addrs, err = net.LookupHost(host)
			return err
		}).WithTimeout(10 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
		if !resolved {
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

func testOptions(t *testing.T) Options {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..")
	o := Defaults(repo)
	o.StateDir = filepath.Join(t.TempDir(), "devcluster")
	o.CRDDirs = nil
	o.Bridge, o.Prefix = "rk8st0", "rk8st"
	o.ClusterCIDR, o.ServiceCIDR = netip.MustParsePrefix("10.247.0.0/16"), netip.MustParsePrefix("10.248.0.0/16")
	o.EtcdPort, o.EtcdPeerPort, o.APIServerPort = freeport.For(t), freeport.For(t), freeport.For(t)
	o.ControllerManagerPort, o.SchedulerPort, o.KubeletPort = freeport.For(t), freeport.For(t), freeport.For(t)
	o.ProxyHealthPort, o.ProxyMetricsPort, o.DNSHealthPort, o.DNSReadyPort = freeport.For(t), freeport.For(t), freeport.For(t), freeport.For(t)
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
	g := gomega.NewWithT(t)
	g.Eventually(func() error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}).WithTimeout(time.Minute).WithPolling(pollInterval).Should(gomega.Succeed(), "the default service account")

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
	g.Eventually(func(g gomega.Gomega) {
		got, err = cs.CoreV1().Pods("default").Get(ctx, "hi", metav1.GetOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(got.Status.Phase == corev1.PodRunning && condition(got, corev1.PodReady)).To(gomega.BeTrue(), describe(got))
	}).WithTimeout(90*time.Second).WithPolling(pollInterval).Should(gomega.Succeed(), "pod Running and Ready")
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
	g.Eventually(func() (string, error) {
		b, err := cs.CoreV1().Pods("default").GetLogs("hi", &corev1.PodLogOptions{Container: "main"}).DoRaw(ctx)
		return string(b), err
	}).WithTimeout(30*time.Second).WithPolling(pollInterval).
		Should(gomega.Equal("hi from hi at "+got.Status.PodIP+"\ninit\ntoken ok\nimage files ok at /opt/rayk8s/python\n"), "the container's log")

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
	g.Eventually(podGone(ctx, cs, "hi")).WithTimeout(time.Minute).WithPolling(pollInterval).Should(gomega.Succeed(), "the pod to be deleted")
	g.Eventually(func() ([]string, error) { return n.Namespaces(ctx) }).WithTimeout(30*time.Second).WithPolling(pollInterval).
		Should(gomega.BeEmpty(), "the pod's network namespace to go")

	// A crashing container is restarted with backoff and counted.
	never := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "crash", Namespace: "default"},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
			Name: "c", Image: "ignored", Command: []string{"sh", "-c", "echo crash; exit 3"}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, never, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	g.Eventually(func(g gomega.Gomega) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "crash", metav1.GetOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(p.Status.ContainerStatuses).NotTo(gomega.BeEmpty(), describe(p))
		s := p.Status.ContainerStatuses[0]
		last := s.LastTerminationState.Terminated
		g.Expect(s.RestartCount >= 2 && last != nil && last.ExitCode == 3).To(gomega.BeTrue(), describe(p))
	}).WithTimeout(time.Minute).WithPolling(pollInterval).Should(gomega.Succeed(), "restarts of a crashing container")

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
	g.Eventually(podRunning(ctx, cs, "graceful")).WithTimeout(time.Minute).WithPolling(pollInterval).Should(gomega.Succeed(), "the graceful pod running")
	if err := cs.CoreV1().Pods("default").Delete(ctx, "graceful", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	g.Eventually(podGone(ctx, cs, "graceful")).WithTimeout(time.Minute).WithPolling(pollInterval).
		Should(gomega.Succeed(), "the graceful pod removed once its process exited")

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
	g := gomega.NewWithT(t)
	var srv *corev1.Pod
	g.Eventually(func(g gomega.Gomega) {
		srv, err = cs.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(srv.Status.Phase == corev1.PodRunning && srv.Status.PodIP != "").To(gomega.BeTrue(), describe(srv))
	}).WithTimeout(time.Minute).WithPolling(pollInterval).Should(gomega.Succeed(), "the server pod running")
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
	g.Eventually(func() (string, error) { return readGreeting(net.JoinHostPort(svc.Spec.ClusterIP, "80")) }).
		WithTimeout(time.Minute).WithPolling(pollInterval).Should(gomega.Equal("hello from web-1"), "the ClusterIP reachable from the host")

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
	g.Eventually(func() (corev1.PodPhase, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "client", metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return p.Status.Phase, nil
	}).WithTimeout(90*time.Second).WithPolling(pollInterval).
		Should(gomega.BeElementOf(corev1.PodSucceeded, corev1.PodFailed), "the client pod to finish")
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
	g.Eventually(func() ([]string, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		var left []string
		for _, p := range pods.Items {
			if p.Name != "hi" {
				left = append(left, p.Name)
			}
		}
		return left, nil
	}).WithTimeout(time.Minute).WithPolling(pollInterval).Should(gomega.BeEmpty(), "the service pods to be deleted")
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

// pollInterval paces the checks of a real cluster: its components act in hundreds of milliseconds.
const pollInterval = 250 * time.Millisecond

// podGone is, for Eventually, whether the pod is gone from the API.
func podGone(ctx context.Context, cs kubernetes.Interface, name string) func(gomega.Gomega) {
	return func(g gomega.Gomega) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "pod %s: %s (err %v)", name, describe(p), err)
	}
}

// podRunning is, for Eventually, whether the pod runs.
func podRunning(ctx context.Context, cs kubernetes.Interface, name string) func(gomega.Gomega) {
	return func(g gomega.Gomega) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(p.Status.Phase).To(gomega.Equal(corev1.PodRunning), describe(p))
	}
}
