package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/test/e2e/loadclient/stats"
)

// The whole loop under load: a RayService whose deployment autoscales (min 1, max 6) on a
// RayCluster with the in-tree autoscaler and no worker at start. The load client ramps its rate
// so the replicas outgrow the head: replicas that do not fit are pending demand, the autoscaler
// adds worker pods, the replicas are placed there. The load is held, then stopped: replicas fall
// to one and the idle workers are removed. Not one request may fail.
//
// Run it alone with `go test ./test/e2e -count=1 -v -ginkgo.focus "RayService autoscaling"` and
// E2E_KUBECONFIG set (make e2e runs it with the rest of the suite).
var _ = ginkgo.Describe("RayService autoscaling", ginkgo.Ordered, func() {
	const (
		name = "rs-autoscale"
		// sleepS is each call's duration: at r requests per second, about r×sleepS calls are in
		// flight, and the policy asks for that over target_ongoing_requests replicas.
		sleepS        = 0.2
		targetOngoing = 2.0
		maxReplicas   = 6
	)
	var (
		ns, svcName, loadPod, cluster string
	)
	serveConfig := strings.Join([]string{
		"applications:",
		"  - name: sleep",
		"    import_path: builtin:sleep",
		"    route_prefix: /",
		"    deployments:",
		"      - name: sleep",
		fmt.Sprintf("        user_config: {sleep_s: %v}", sleepS),
		"        ray_actor_options: {num_cpus: 1}",
		"        autoscaling_config:",
		"          min_replicas: 1",
		fmt.Sprintf("          max_replicas: %d", maxReplicas),
		fmt.Sprintf("          target_ongoing_requests: %v", targetOngoing),
		"          metrics_interval_s: 1",
		"          look_back_period_s: 5",
		"          upscale_delay_s: 2",
		"          downscale_delay_s: 10",
		"",
	}, "\n")

	loadNow := func(ctx context.Context) (stats.Stats, error) {
		var s stats.Stats
		b, err := k8s.CoreV1().Pods(ns).ProxyGet("http", loadPod, "9000", "/stats", nil).DoRaw(ctx)
		if err != nil {
			return s, fmt.Errorf("%w: %s", err, b)
		}
		return s, json.Unmarshal(b, &s)
	}
	loadPost := func(ctx context.Context, path string, params map[string]string) stats.Stats {
		req := k8s.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(loadPod + ":9000").SubResource("proxy").Suffix(path)
		for k, v := range params {
			req = req.Param(k, v)
		}
		b, err := req.DoRaw(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "POST %s: %s", path, b)
		var s stats.Stats
		gomega.Expect(json.Unmarshal(b, &s)).To(gomega.Succeed())
		return s
	}
	noFailures := func(ctx context.Context, step string) stats.Stats {
		s, err := loadNow(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.GinkgoWriter.Printf("Load after %s: %s\n", step, s)
		gomega.Expect(s.Failed).To(gomega.BeZero(), "failed requests after %s: %s", step, s)
		return s
	}
	// replicas reads the deployment from the active cluster's Serve API: its target and its
	// RUNNING replicas.
	replicas := func(ctx context.Context) (target, running int, err error) {
		b, err := k8s.CoreV1().Services(ns).ProxyGet("http", cluster+"-head-svc", "dashboard", "/api/serve/applications/", nil).DoRaw(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %s", err, b)
		}
		var d struct {
			Applications map[string]struct {
				Status      string `json:"status"`
				Deployments map[string]struct {
					TargetNumReplicas int `json:"target_num_replicas"`
					Replicas          []struct {
						State string `json:"state"`
					} `json:"replicas"`
				} `json:"deployments"`
			} `json:"applications"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return 0, 0, err
		}
		app := d.Applications["sleep"]
		if app.Status != "RUNNING" {
			return 0, 0, fmt.Errorf("application status %q, want RUNNING throughout", app.Status)
		}
		dep := app.Deployments["sleep"]
		for _, r := range dep.Replicas {
			if r.State == "RUNNING" {
				running++
			}
		}
		return dep.TargetNumReplicas, running, nil
	}
	workers := func(ctx context.Context) int { return len(rayPods(ctx, ns, cluster, "worker")) }

	ginkgo.BeforeAll(func(ctx context.Context) {
		ns = newNamespace(ctx)
	})

	ginkgo.It("serves with one replica on the head and no worker", func(ctx context.Context) {
		rs := loadRayServiceSample()
		rs.Name, rs.Namespace = name, ns
		svcName = name + "-serve-svc"
		rs.Spec.ServeConfigV2 = serveConfig
		spec := &rs.Spec.RayClusterSpec
		spec.EnableInTreeAutoscaling = ptr.To(true)
		// Idle workers go after 30 s (Ray's default is 60 s).
		spec.AutoscalerOptions = &rayv1.AutoscalerOptions{IdleTimeoutSeconds: ptr.To[int32](30)}
		// The head has room for two replicas; the other four need workers of two CPUs each.
		spec.HeadGroupSpec.RayStartParams = map[string]string{"num-cpus": "2"}
		wg := &spec.WorkerGroupSpecs[0]
		wg.Replicas, wg.MinReplicas, wg.MaxReplicas = ptr.To[int32](0), ptr.To[int32](0), ptr.To[int32](3)
		wg.RayStartParams = map[string]string{"num-cpus": "2"}
		gomega.Expect(cl.Create(ctx, rs)).To(gomega.Succeed())

		gomega.Eventually(func(g gomega.Gomega) {
			got := &rayv1.RayService{}
			g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, got)).To(gomega.Succeed())
			cluster = got.Status.ActiveServiceStatus.RayClusterName
			g.Expect(cluster).NotTo(gomega.BeEmpty(), "active cluster")
			g.Expect(got.Status.NumServeEndpoints).To(gomega.BeNumerically(">", 0), "numServeEndpoints")
			target, running, err := replicas(ctx)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect([]int{target, running}).To(gomega.Equal([]int{1, 1}), "target and running replicas")
		}).WithContext(ctx).Should(gomega.Succeed())
		gomega.Expect(workers(ctx)).To(gomega.BeZero(), "worker pods at start")

		pod := loadClientPod(ns, fmt.Sprintf("http://%s:8000/", svcName), 2, `"slept_s"`)
		loadPod = pod.Name
		gomega.Expect(cl.Create(ctx, pod)).To(gomega.Succeed())
		gomega.Eventually(func(g gomega.Gomega) {
			s, err := loadNow(ctx)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(s.OK).To(gomega.BeNumerically(">=", 10), "load client successes: %s", s)
		}).WithContext(ctx).Should(gomega.Succeed())
		noFailures(ctx, "start")
	})

	ginkgo.It("ramps the load: workers are added and replicas placed on them, without a failed request", func(ctx context.Context) {
		loadPost(ctx, "window", nil)
		var notes []string
		for _, rate := range []int{5, 20, 40, 60} {
			want := min(maxReplicas, max(1, int(math.Ceil(float64(rate)*sleepS/targetOngoing))))
			loadPost(ctx, "rate", map[string]string{"rps": fmt.Sprint(rate)})
			start := time.Now()
			gomega.Eventually(func(g gomega.Gomega) {
				_, running, err := replicas(ctx)
				g.Expect(err).NotTo(gomega.HaveOccurred())
				g.Expect(running).To(gomega.BeNumerically(">=", want), "running replicas at %d req/s", rate)
			}).WithContext(ctx).WithTimeout(4 * time.Minute).Should(gomega.Succeed())
			took := time.Since(start)
			st := noFailures(ctx, fmt.Sprintf("%d req/s", rate))
			notes = append(notes, fmt.Sprintf("%d req/s: %d replicas running after %s (%d workers); p50 %.1f ms, p99 %.1f ms so far",
				rate, want, took.Round(100*time.Millisecond), workers(ctx), st.WindowP50Ms, st.WindowP99Ms))
		}
		gomega.Expect(workers(ctx)).To(gomega.BeNumerically(">=", 2), "worker pods for six one-CPU replicas beside a two-CPU head")
		// The load holds: the replicas stay and nothing fails.
		gomega.Consistently(func(g gomega.Gomega) {
			_, running, err := replicas(ctx)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(running).To(gomega.Equal(maxReplicas), "running replicas while the load holds")
		}).WithContext(ctx).WithTimeout(20 * time.Second).WithPolling(2 * time.Second).Should(gomega.Succeed())
		st := noFailures(ctx, "the hold")
		notes = append(notes, fmt.Sprintf("ramp and hold: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d requests", st.WindowP50Ms, st.WindowP99Ms, st.WindowMaxLatencyMs, st.WindowOK))
		ginkgo.AddReportEntry("autoscaling ramp", strings.Join(notes, "\n"))
	})

	ginkgo.It("stops the load: replicas fall to one, idle workers are removed, and no request failed", func(ctx context.Context) {
		s := loadPost(ctx, "stop", nil)
		gomega.Expect(s.Stopped).To(gomega.BeTrue())
		gomega.Expect(s.Failed).To(gomega.BeZero(), "failed requests: %s", s)
		gomega.Expect(s.OK).To(gomega.Equal(s.Sent), "every request sent finished successfully")
		start := time.Now()
		gomega.Eventually(func(g gomega.Gomega) {
			target, running, err := replicas(ctx)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect([]int{target, running}).To(gomega.Equal([]int{1, 1}), "target and running replicas after the load")
		}).WithContext(ctx).WithTimeout(3 * time.Minute).Should(gomega.Succeed())
		down := time.Since(start)
		gomega.Eventually(func(g gomega.Gomega) {
			g.Expect(rayPods(ctx, ns, cluster, "worker")).To(gomega.BeEmpty(), "idle worker pods")
		}).WithContext(ctx).WithTimeout(4 * time.Minute).Should(gomega.Succeed())
		ginkgo.AddReportEntry("autoscaling after the load", fmt.Sprintf("replicas back to 1 after %s, workers removed after %s; whole run: %s",
			down.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond), s))
	})
})
