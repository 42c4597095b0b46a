// Command operator benchmarks the rayk8s manager, and side by side a KubeRay operator binary
// when one is at hand: it creates N RayClusters (1 head + 2 workers each) against a local control
// plane, plays kubelet, and prints one row per operator with the seconds until every pod exists,
// the seconds until every cluster is ready, the API writes per cluster with and without events,
// the operator's peak RSS, the CPU seconds it used and the seconds its requests waited on its
// client-side rate limiters. It is a benchmark, not a test: it reports
// numbers and never fails on them.
//
//	go run ./test/bench/operator -n 100
//	KUBERAY_BIN=/path/to/kuberay-operator go run ./test/bench/operator -n 500 -unrelated 10000 -runs 3
//
// -runs K runs K rounds in one invocation, each running every operator once (in the given order
// in odd rounds, reversed in even ones), prints every run's row with run=i/K appended, then the
// min and median per operator and the ratio of the median all-ready times. Each run has its own
// namespace and fake kubelet, and its clusters, pods and Services are deleted once it is
// measured, so a run does not pay for the objects of the runs before it.
//
// It starts envtest (bin/kube-apiserver, bin/etcd) unless $KUBECONFIG is set, builds
// ./cmd/manager and runs it as a subprocess, so the numbers include the real binary's start-up,
// informers and client rate limits. With $KUBERAY_BIN, that binary (KubeRay's flags are ours)
// runs next, on the same control plane, with its own namespace of N clusters, after KubeRay's
// CRDs from $KUBERAY_CRDS (a directory of CRD YAML files, by default ../shared/kuberay/crds when
// present) replaced ours; ours are put back afterwards. docs/operator-performance.md says how to
// build KubeRay for this. Each operator watches its own namespace and a shared one holding the
// -unrelated pods and Secrets, which no operator owns: they show what each operator's cache costs
// in a busy cluster.
//
// An operator's run gives up after -timeout, which by default grows with -n (5 minutes plus one
// second per cluster: the cluster creates and pod writes of one run grow linearly with it).
//
// Counting writes: kube-apiserver's apiserver_request_total has no user-agent label, so the bench
// scrapes it before and after each operator's run (the runs do not overlap) and sums
// POST/PUT/PATCH/DELETE on the resources only the operator writes (pods except pods/status,
// services, serviceaccounts, roles, rolebindings, ingresses, jobs, rayclusters/status and
// rayclusters metadata patches, events), minus the bench's own RayCluster creates. The
// pods/status patches of the fake kubelet and the apiserver's own lease and endpoint writes are
// therefore excluded.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

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
	n := flag.Int("n", 100, "number of RayClusters per operator")
	timeout := flag.Duration("timeout", 0, "give up on an operator's run after this long (default 5m plus 1s per cluster)")
	namespace := flag.String("namespace", "rayk8s-bench", "prefix of the namespaces the bench creates")
	unrelated := flag.Int("unrelated", 0, "pods and Secrets (each) that no operator owns, created before the runs")
	runs := flag.Int("runs", 1, "rounds to run; each round runs every operator once, and more than one prints min and median per operator")
	logs := flag.String("logs", "", "directory to keep the operators' logs in (default: a temporary one, removed at the end)")
	parallel := flag.Int("parallel", 16, "RayCluster creates and pod status writes the bench keeps in flight (1: one after another)")
	concurrency := flag.Int("concurrency", 0, "--reconcile-concurrency given to every operator (0: each keeps its own default, KubeRay's 1 and rayk8s' 4)")
	flag.Parse()
	if *n <= 0 || *unrelated < 0 || *timeout < 0 {
		return fmt.Errorf("-n must be positive, -unrelated and -timeout not negative, got %d, %d and %v", *n, *unrelated, *timeout)
	}
	if *concurrency < 0 {
		return fmt.Errorf("-concurrency must not be negative, got %d", *concurrency)
	}
	if *runs <= 0 || *parallel <= 0 {
		return fmt.Errorf("-runs and -parallel must be positive, got %d and %d", *runs, *parallel)
	}
	if *timeout == 0 {
		*timeout = runTimeout(*n)
	}
	ctx := context.Background()
	// envtest's CRD installer logs through controller-runtime; the bench prints only its rows.
	crlog.SetLogger(logr.Discard())

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
	c, err := client.New(cfg, client.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		return err
	}

	bin := filepath.Join(tmp, "manager")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/manager")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the manager: %w", err)
	}
	var extra []string
	if *concurrency > 0 {
		extra = []string{fmt.Sprintf("--reconcile-concurrency=%d", *concurrency)}
		fmt.Fprintf(os.Stderr, "bench-operator: every operator runs with %s\n", extra[0])
	}
	operators := []operator{{name: "rayk8s", bin: bin, args: extra}}
	if kb := os.Getenv("KUBERAY_BIN"); kb != "" {
		if _, err := os.Stat(kb); err != nil {
			return fmt.Errorf("KUBERAY_BIN: %w", err)
		}
		crds, err := kubeRayCRDs(os.Getenv("KUBERAY_CRDS"), testenv.SharedDir())
		if err != nil {
			return err
		}
		operators = append(operators, operator{name: "kuberay", bin: kb, args: extra, crds: crds, restoreCRDs: filepath.Join(root, "config", "crd", "bases")})
	} else {
		fmt.Fprintln(os.Stderr, "bench-operator: KUBERAY_BIN is not set: measuring rayk8s alone")
	}

	logDir := tmp
	if *logs != "" {
		if err := os.MkdirAll(*logs, 0o755); err != nil {
			return fmt.Errorf("-logs: %w", err)
		}
		logDir = *logs
	}
	shared := *namespace + "-unrelated"
	if err := createNamespace(ctx, c, shared); err != nil {
		return err
	}
	if err := createUnrelated(ctx, c, shared, *unrelated); err != nil {
		return err
	}
	fmt.Printf("%-8s %8s %9s %12s %15s %20s %14s %8s\n", "operator", "clusters", "unrelated", "all_pods_s", "all_ready_s",
		"writes_per_cluster", "w/o_events", "peak_rss_mib")
	var results []result
	for round := 1; round <= *runs; round++ {
		for _, op := range roundOrder(operators, round) {
			ns := *namespace + "-" + op.name
			if *runs > 1 {
				ns += "-" + strconv.Itoa(round)
			}
			res, err := runOperator(ctx, c, cfg, op, benchRun{
				n: *n, namespace: ns, shared: shared, kubeconfig: kubeconfig, logDir: logDir, timeout: *timeout, parallel: *parallel,
			})
			if err != nil {
				return fmt.Errorf("%s (run %d of %d): %w", op.name, round, *runs, err)
			}
			res.unrelated = *unrelated
			row := res.row()
			if *runs > 1 {
				row += fmt.Sprintf(" run=%d/%d", round, *runs)
			}
			fmt.Println(row)
			results = append(results, res)
		}
	}
	if *runs > 1 {
		fmt.Print(summarize(results, operatorNames(operators)))
	}
	return nil
}

// runOperator installs op's CRDs, benchmarks it, puts our CRDs back and deletes the run's
// clusters and their children, so that the next run starts on a control plane that holds only
// the unrelated objects besides its own.
func runOperator(ctx context.Context, c client.Client, cfg *rest.Config, op operator, run benchRun) (result, error) {
	if op.crds != "" {
		if err := installCRDs(cfg, op.crds); err != nil {
			return result{}, err
		}
	}
	res, err := benchOperator(ctx, c, cfg, op, run)
	if err != nil {
		return result{}, err
	}
	if op.restoreCRDs != "" {
		if err := installCRDs(cfg, op.restoreCRDs); err != nil {
			return result{}, err
		}
	}
	return res, cleanUp(ctx, c, run.namespace)
}

// roundOrder is the order in which the operators run in a round: as given in odd rounds,
// reversed in even ones, so that over several rounds neither operator always runs on the control
// plane the other one just loaded.
func roundOrder(ops []operator, round int) []operator {
	out := slices.Clone(ops)
	if round%2 == 0 {
		slices.Reverse(out)
	}
	return out
}

func operatorNames(ops []operator) []string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.name
	}
	return names
}

// cleanUp deletes the RayClusters, pods and Services of a finished run. The control plane runs no
// garbage collector (envtest), so the children are deleted by label, not through their owners.
func cleanUp(ctx context.Context, c client.Client, ns string) error {
	for _, obj := range []client.Object{&rayv1.RayCluster{}, &corev1.Pod{}, &corev1.Service{}} {
		var opts []client.DeleteAllOfOption
		opts = append(opts, client.InNamespace(ns))
		if _, ok := obj.(*rayv1.RayCluster); !ok {
			opts = append(opts, client.HasLabels{rayv1.RayClusterLabelKey})
		}
		if err := c.DeleteAllOf(ctx, obj, opts...); err != nil {
			return fmt.Errorf("deleting the %T objects of namespace %s: %w", obj, ns, err)
		}
	}
	return nil
}

// summarize prints, per operator in the order of names, the min and median of the times to all
// pods and to all ready and the medians of the other columns over its runs, and, when both
// rayk8s and kuberay ran, how many times faster rayk8s's median all-ready time is.
func summarize(results []result, names []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %5s %11s %14s %12s %15s %20s %14s %12s\n", "summary", "runs", "min_pods_s", "median_pods_s",
		"min_ready_s", "median_ready_s", "median_writes", "median_rss_mib", "median_cpu_s")
	medianReady := map[string]float64{}
	for _, name := range names {
		var pods, ready, writes, rss, cpu []float64
		for _, r := range results {
			if r.operator != name {
				continue
			}
			pods = append(pods, r.podsAt.Seconds())
			ready = append(ready, r.readyAt.Seconds())
			writes = append(writes, r.writes)
			rss = append(rss, float64(r.peakRSSKiB)/1024)
			cpu = append(cpu, r.cpu.Seconds())
		}
		if len(ready) == 0 {
			continue
		}
		medianReady[name] = median(ready)
		fmt.Fprintf(&b, "%-8s %5d %11.2f %14.2f %12.2f %15.2f %20.2f %14.1f %12.1f\n", name, len(ready), slices.Min(pods), median(pods),
			slices.Min(ready), median(ready), median(writes), median(rss), median(cpu))
	}
	ours, okOurs := medianReady["rayk8s"]
	theirs, okTheirs := medianReady["kuberay"]
	if okOurs && okTheirs && ours > 0 {
		fmt.Fprintf(&b, "median all_ready_s kuberay/rayk8s: %.2fx\n", theirs/ours)
	}
	return b.String()
}

// median is the middle value of xs (the mean of the two middle ones for an even count); xs is
// not changed.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// operator is a binary that takes KubeRay's operator flags.
type operator struct {
	name, bin string
	// args are added to the flags every operator gets (operatorArgs).
	args []string
	// crds, when set, is a directory of CRDs installed before the run (replacing those of the
	// same name), and restoreCRDs the directory installed again after it.
	crds, restoreCRDs string
}

// runTimeout is the default -timeout for n clusters.
func runTimeout(n int) time.Duration { return 5*time.Minute + time.Duration(n)*time.Second }

// kubeRayCRDs is the directory of KubeRay's CRDs: $KUBERAY_CRDS, else shared/kuberay/crds of the
// development workspace.
func kubeRayCRDs(env, shared string) (string, error) {
	dir := env
	if dir == "" && shared != "" {
		dir = filepath.Join(shared, "kuberay", "crds")
		fmt.Fprintf(os.Stderr, "bench-operator: KUBERAY_CRDS is not set: installing KubeRay's CRDs from %s\n", dir)
	}
	if dir == "" {
		return "", errors.New("KUBERAY_CRDS: set it to the directory of the CRDs of the KubeRay version KUBERAY_BIN was built from (its ray-operator/config/crd/bases)")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("KUBERAY_CRDS: %s is not a directory of CRD files", dir)
	}
	return dir, nil
}

// installCRDs creates or updates the CRDs in dir and waits until they are served.
func installCRDs(cfg *rest.Config, dir string) error {
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true, MaxTime: 2 * time.Minute}); err != nil {
		return fmt.Errorf("installing the CRDs of %s: %w", dir, err)
	}
	return nil
}

// benchRun is one operator's run.
type benchRun struct {
	n                  int
	namespace, shared  string
	kubeconfig, logDir string
	timeout            time.Duration
	// parallel is how many cluster creates and pod status writes the bench has in flight.
	parallel int
}

// result is one operator's row.
type result struct {
	operator            string
	clusters, unrelated int
	podsAt, readyAt     time.Duration
	writes, eventWrites float64 // per cluster
	peakRSSKiB          int
	cpu                 time.Duration
	// throttled is the seconds requests waited on client-side rate limiters, when known.
	throttled      float64
	throttledKnown bool
}

func (r result) row() string {
	throttled := "throttled_s=n/a"
	if r.throttledKnown {
		throttled = fmt.Sprintf("throttled_s=%.2f", r.throttled)
	}
	return fmt.Sprintf("%-8s %8d %9d %12.2f %15.2f %20.2f %14.2f %12.1f cpu_s=%.1f %s", r.operator, r.clusters, r.unrelated,
		r.podsAt.Seconds(), r.readyAt.Seconds(), r.writes, r.writes-r.eventWrites, float64(r.peakRSSKiB)/1024, r.cpu.Seconds(), throttled)
}

// operatorArgs are the flags both operators understand: metrics on a loopback port, no probe
// listener, no leader election, and only the run's namespace and the shared one watched.
func operatorArgs(run benchRun, metricsAddr string) []string {
	return []string{"--metrics-addr=" + metricsAddr, "--health-probe-bind-address=0", "--enable-leader-election=false",
		"--watch-namespace=" + run.namespace + "," + run.shared}
}

// freeLoopbackAddr returns a loopback address with a port free at the time of the call.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// operatorMetrics returns the operator's Prometheus metrics, as text.
func operatorMetrics(ctx context.Context, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("scraping the operator's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("reading the operator's metrics: %w", err)
	}
	return string(body), nil
}

// rateLimiterWait sums, from an operator's metrics, the seconds its requests spent waiting on
// client-side rate limiters (rest_client_rate_limiter_duration_seconds_sum over every verb and
// host). ok is false when the operator does not export that histogram.
func rateLimiterWait(metrics string) (wait float64, ok bool) {
	const name = "rest_client_rate_limiter_duration_seconds_sum"
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		wait, ok = wait+v, true
	}
	return wait, ok
}

// benchOperator starts op, creates the run's clusters, waits until every pod exists and every
// cluster is ready, and measures.
func benchOperator(ctx context.Context, c client.Client, cfg *rest.Config, op operator, run benchRun) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, run.timeout)
	defer cancel()
	if err := createNamespace(ctx, c, run.namespace); err != nil {
		return result{}, err
	}
	before, err := scrapeWrites(ctx, cfg)
	if err != nil {
		return result{}, err
	}
	logf, err := os.Create(filepath.Join(run.logDir, run.namespace+".log"))
	if err != nil {
		return result{}, err
	}
	defer logf.Close()
	metricsAddr, err := freeLoopbackAddr()
	if err != nil {
		return result{}, err
	}
	mgr := exec.Command(op.bin, append(operatorArgs(run, metricsAddr), op.args...)...)
	mgr.Env = append(os.Environ(), "KUBECONFIG="+run.kubeconfig)
	mgr.Stdout, mgr.Stderr = logf, logf
	if err := mgr.Start(); err != nil {
		return result{}, fmt.Errorf("starting %s: %w", op.bin, err)
	}
	defer func() { _ = mgr.Process.Kill(); _, _ = mgr.Process.Wait() }()
	kctx, kstop := context.WithCancel(ctx)
	kubeletDone := make(chan struct{})
	go func() { defer close(kubeletDone); playKubelet(kctx, c, run.namespace, run.parallel) }()
	defer func() { kstop(); <-kubeletDone }()

	start := time.Now()
	err = forEach(run.n, run.parallel, func(i int) error {
		if err := c.Create(ctx, benchCluster(run.namespace, fmt.Sprintf("bench-%03d", i))); err != nil {
			return fmt.Errorf("creating RayCluster %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return result{}, err
	}
	fmt.Fprintf(os.Stderr, "bench-operator: %s: created %d RayClusters in %.2fs\n", op.name, run.n, time.Since(start).Seconds())
	wantPods := run.n * 3
	var podsAt, readyAt time.Duration
	for podsAt == 0 || readyAt == 0 {
		if ctx.Err() != nil {
			return result{}, fmt.Errorf("timed out: pods created after %v, clusters ready after %v (log: %s)", podsAt, readyAt, logf.Name())
		}
		if podsAt == 0 {
			var pods corev1.PodList
			if err := c.List(ctx, &pods, client.InNamespace(run.namespace), client.HasLabels{rayv1.RayClusterLabelKey}); err == nil && len(pods.Items) >= wantPods {
				podsAt = time.Since(start)
			}
		}
		if readyAt == 0 {
			var list rayv1.RayClusterList
			if err := c.List(ctx, &list, client.InNamespace(run.namespace)); err == nil {
				ready := 0
				for _, rc := range list.Items {
					if rc.Status.State == rayv1.ClusterStateReady {
						ready++
					}
				}
				if ready == run.n {
					readyAt = time.Since(start)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Give the operator a moment to settle so late status writes are counted, then measure.
	time.Sleep(2 * time.Second)
	after, err := scrapeWrites(ctx, cfg)
	if err != nil {
		return result{}, err
	}
	usage, err := readUsage(mgr.Process.Pid)
	if err != nil {
		return result{}, err
	}
	metrics, err := operatorMetrics(ctx, metricsAddr)
	if err != nil {
		return result{}, err
	}
	// Kept next to the log: the reconcile and request latency histograms say where the time went.
	if err := os.WriteFile(filepath.Join(run.logDir, run.namespace+".metrics"), []byte(metrics), 0o644); err != nil {
		return result{}, err
	}
	wait, waitKnown := rateLimiterWait(metrics)
	n := float64(run.n)
	return result{operator: op.name, clusters: run.n, podsAt: podsAt, readyAt: readyAt,
		writes:      (after.operator - before.operator - n) / n, // minus the bench's own creates
		eventWrites: (after.events - before.events) / n,
		peakRSSKiB:  usage.peakRSSKiB, cpu: usage.cpu, throttled: wait, throttledKnown: waitKnown}, nil
}

func createNamespace(ctx context.Context, c client.Client, name string) error {
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	return client.IgnoreAlreadyExists(err)
}

// createUnrelated creates n pods and n Secrets in ns that belong to no operator (no Ray labels),
// 16 at a time.
func createUnrelated(ctx context.Context, c client.Client, ns string, n int) error {
	if n == 0 {
		return nil
	}
	start := time.Now()
	err := forEach(n, 16, func(i int) error {
		name := fmt.Sprintf("unrelated-%05d", i)
		labels := map[string]string{"app": "unrelated"}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}}}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Data: map[string][]byte{"token": []byte(strings.Repeat("x", 256))}}
		for _, o := range []client.Object{pod, secret} {
			if err := c.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
				return fmt.Errorf("creating unrelated %T %s: %w", o, name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench-operator: created %d unrelated pods and Secrets in %v\n", n, time.Since(start).Round(time.Second))
	return nil
}

// forEach calls f(0) ... f(n-1) with at most parallel calls running at once, and returns how
// many failed and the first error, if any.
func forEach(n, parallel int, f func(i int) error) error {
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var first error
	failed := 0
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("%d of %d failed, first: %w", failed, n, first)
	}
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

// playKubelet marks every Pending Ray pod of the run's namespace Running and Ready with an IP,
// parallel pods at a time (a cluster's kubelets work side by side); the unrelated pods stay
// Pending.
func playKubelet(ctx context.Context, c client.Client, ns string, parallel int) {
	ip := 0
	done := map[types.UID]bool{}
	for ctx.Err() == nil {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(ns), client.HasLabels{rayv1.RayClusterLabelKey}); err == nil {
			var todo []*corev1.Pod
			var ips []string
			for i := range pods.Items {
				p := &pods.Items[i]
				if done[p.UID] || p.DeletionTimestamp != nil || (p.Status.Phase != "" && p.Status.Phase != corev1.PodPending) {
					continue
				}
				ip++
				todo = append(todo, p)
				ips = append(ips, fmt.Sprintf("10.%d.%d.%d", ip/62500, ip/250%250, ip%250+1))
			}
			marked := make([]bool, len(todo))
			_ = forEach(len(todo), parallel, func(i int) error {
				err := markRunning(ctx, c, todo[i], ips[i])
				marked[i] = err == nil
				return err // retried on the next poll
			})
			for i, ok := range marked {
				if ok {
					done[todo[i].UID] = true
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// markRunning patches p's status to Running and Ready with the given IP.
func markRunning(ctx context.Context, c client.Client, p *corev1.Pod, ip string) error {
	orig := p.DeepCopy()
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	for _, ctr := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: ctr.Name, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	return c.Status().Patch(ctx, p, client.MergeFrom(orig))
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

// usage is what a process used so far.
type usage struct {
	peakRSSKiB int
	cpu        time.Duration
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// readUsage reads the peak RSS (VmHWM) and the user+system CPU time of a running process.
func readUsage(pid int) (usage, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return usage{}, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, err
	}
	return parseUsage(string(status), string(stat))
}

func parseUsage(status, stat string) (usage, error) {
	var u usage
	found := false
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			v, err := strconv.Atoi(f[1])
			if err != nil {
				return usage{}, fmt.Errorf("VmHWM %q: %w", f[1], err)
			}
			u.peakRSSKiB, found = v, true
		}
	}
	if !found {
		return usage{}, errors.New("VmHWM not found in /proc/<pid>/status")
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis
	// start at field 3 (state): utime and stime are fields 14 and 15.
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return usage{}, errors.New("malformed /proc/<pid>/stat")
	}
	f := strings.Fields(stat[end+1:])
	if len(f) < 13 {
		return usage{}, errors.New("/proc/<pid>/stat has too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return usage{}, fmt.Errorf("cpu ticks %q: %w", s, err)
		}
		ticks += v
	}
	u.cpu = time.Duration(ticks) * time.Second / clockTicks
	return u, nil
}
