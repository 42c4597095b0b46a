// Command operator benchmarks the rayk8s manager: it creates N RayClusters (1 head + 2 workers
// each) against a local control plane, plays kubelet, and prints one line with the seconds until
// every pod exists, the seconds until every cluster is ready, the API writes per cluster and the
// manager's peak RSS. It is a benchmark, not a test: it reports numbers and never fails on them.
//
//	go run ./test/bench/operator -n 100
//
// It starts envtest (bin/kube-apiserver, bin/etcd) unless $KUBECONFIG is set, builds
// ./cmd/manager and runs it as a subprocess, so the numbers include the real binary's start-up,
// informers and client rate limits.
//
// Counting writes: kube-apiserver's apiserver_request_total has no user-agent label, so the bench
// scrapes it before and after the run and sums POST/PUT/PATCH/DELETE on the resources only the
// operator writes (pods except pods/status, services, serviceaccounts, roles, rolebindings,
// ingresses, jobs, rayclusters/status and rayclusters metadata patches, events), minus the
// bench's own RayCluster creates. The pods/status patches of the fake kubelet and the apiserver's
// own lease and endpoint writes are therefore excluded. Event writes are reported separately as
// well, since they are not reconcile writes.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench-operator: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 100, "number of RayClusters")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	namespace := flag.String("namespace", "rayk8s-bench", "namespace for the RayClusters")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "rayk8s-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	cfg, kubeconfig, stop, err := controlPlane(tmp)
	if err != nil {
		return err
	}
	defer stop()
	cfg.QPS, cfg.Burst = 2000, 4000
	scheme := testenv.NewScheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	bin := filepath.Join(tmp, "manager")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/manager")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the manager: %w", err)
	}

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: *namespace}}); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	before, err := scrapeWrites(ctx, cfg)
	if err != nil {
		return err
	}

	logf, err := os.Create(filepath.Join(tmp, "manager.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	mgr := exec.Command(bin, "--metrics-addr=0", "--health-probe-bind-address=0", "--enable-leader-election=false",
		"--watch-namespace="+*namespace)
	mgr.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	mgr.Stdout, mgr.Stderr = logf, logf
	if err := mgr.Start(); err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	defer func() { _ = mgr.Process.Kill(); _, _ = mgr.Process.Wait() }()

	kctx, kstop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); playKubelet(kctx, c, *namespace) }()
	defer func() { kstop(); wg.Wait() }()

	start := time.Now()
	for i := range *n {
		if err := c.Create(ctx, benchCluster(*namespace, fmt.Sprintf("bench-%03d", i))); err != nil {
			return fmt.Errorf("creating RayCluster %d: %w", i, err)
		}
	}
	wantPods := *n * 3
	var podsAt, readyAt time.Duration
	for podsAt == 0 || readyAt == 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("timed out: pods created after %v, clusters ready after %v (manager log: %s)", podsAt, readyAt, logf.Name())
		}
		if podsAt == 0 {
			var pods corev1.PodList
			if err := c.List(ctx, &pods, client.InNamespace(*namespace)); err == nil && len(pods.Items) >= wantPods {
				podsAt = time.Since(start)
			}
		}
		if readyAt == 0 {
			var list rayv1.RayClusterList
			if err := c.List(ctx, &list, client.InNamespace(*namespace)); err == nil {
				ready := 0
				for _, rc := range list.Items {
					if rc.Status.State == rayv1.ClusterStateReady {
						ready++
					}
				}
				if ready == *n {
					readyAt = time.Since(start)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Give the manager a moment to settle so late status writes are counted, then read RSS.
	time.Sleep(2 * time.Second)
	after, err := scrapeWrites(ctx, cfg)
	if err != nil {
		return err
	}
	rss, err := peakRSS(mgr.Process.Pid)
	if err != nil {
		return err
	}
	writes := after.operator - before.operator - float64(*n) // minus the bench's own creates
	events := after.events - before.events
	fmt.Printf("clusters=%d pods_created_s=%.2f clusters_ready_s=%.2f api_writes_per_cluster=%.2f (of which events %.2f) manager_peak_rss_mib=%.1f\n",
		*n, podsAt.Seconds(), readyAt.Seconds(), writes/float64(*n), events/float64(*n), float64(rss)/1024)
	return nil
}

// controlPlane returns a config and a kubeconfig file for $KUBECONFIG, or for a fresh envtest.
func controlPlane(tmp string) (*rest.Config, string, func(), error) {
	if kc := os.Getenv("KUBECONFIG"); kc != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kc)
		return cfg, kc, func() {}, err
	}
	env, err := testenv.Start()
	if err != nil {
		return nil, "", nil, err
	}
	stop := func() { _ = env.Stop() }
	cfg := rest.CopyConfig(env.Config)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(tmp, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		stop()
		return nil, "", nil, err
	}
	return cfg, path, stop, nil
}

func benchCluster(ns, name string) *rayv1.RayCluster {
	c := &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	c.Spec.RayVersion = "2.9.0"
	req := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}}
	c.Spec.HeadGroupSpec.Template.Spec.Containers = []corev1.Container{{Name: "ray-head", Image: "rayproject/ray:2.9.0", Resources: req}}
	g := rayv1.WorkerGroupSpec{GroupName: "workers", Replicas: ptr.To[int32](2), MinReplicas: ptr.To[int32](0), MaxReplicas: ptr.To[int32](10), NumOfHosts: 1}
	g.Template.Spec.Containers = []corev1.Container{{Name: "ray-worker", Image: "rayproject/ray:2.9.0", Resources: req}}
	c.Spec.WorkerGroupSpecs = []rayv1.WorkerGroupSpec{g}
	return c
}

// playKubelet marks every Pending pod Running and Ready with an IP.
func playKubelet(ctx context.Context, c client.Client, ns string) {
	ip := 0
	done := map[string]bool{}
	for ctx.Err() == nil {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(ns)); err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if done[string(p.UID)] || p.DeletionTimestamp != nil || (p.Status.Phase != "" && p.Status.Phase != corev1.PodPending) {
					continue
				}
				ip++
				orig := p.DeepCopy()
				now := metav1.Now()
				p.Status.Phase = corev1.PodRunning
				p.Status.PodIP = fmt.Sprintf("10.%d.%d.%d", ip/62500, ip/250%250, ip%250+1)
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
				for _, ctr := range p.Spec.Containers {
					p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: ctr.Name, Ready: true,
						State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
				}
				if err := c.Status().Patch(ctx, p, client.MergeFrom(orig)); err == nil {
					done[string(p.UID)] = true
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type writeCounts struct{ operator, events float64 }

// operatorWrites are the resource/subresource pairs only the operator writes in this bench.
var operatorWrites = map[string]bool{
	"pods/": true, "services/": true, "serviceaccounts/": true, "roles/": true, "rolebindings/": true,
	"ingresses/": true, "jobs/": true, "rayclusters/": true, "rayclusters/status": true, "events/": true,
}

// scrapeWrites sums apiserver_request_total for write verbs on operatorWrites.
func scrapeWrites(ctx context.Context, cfg *rest.Config) (writeCounts, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return writeCounts{}, err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return writeCounts{}, fmt.Errorf("scraping apiserver metrics: %w", err)
	}
	var out writeCounts
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		labels := parseLabels(line[len("apiserver_request_total{"):end])
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		switch labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		default:
			continue
		}
		if labels["dry_run"] != "" {
			continue
		}
		key := labels["resource"] + "/" + labels["subresource"]
		if !operatorWrites[key] {
			continue
		}
		out.operator += v
		if labels["resource"] == "events" {
			out.events += v
		}
	}
	if err := sc.Err(); err != nil {
		return writeCounts{}, err
	}
	return out, nil
}

func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		eq := strings.Index(s, "=\"")
		if eq < 0 {
			break
		}
		k := strings.TrimLeft(s[:eq], ",")
		rest := s[eq+2:]
		endq := strings.Index(rest, "\"")
		if endq < 0 {
			break
		}
		out[k] = rest[:endq]
		s = rest[endq+1:]
	}
	return out
}

// peakRSS reads VmHWM (KiB) of a process.
func peakRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) < 2 {
				break
			}
			return strconv.Atoi(f[1])
		}
	}
	return 0, errors.New("VmHWM not found")
}
