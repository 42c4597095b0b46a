package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/test/e2e/loadclient/stats"
)

// loadRate is the load client's steady rate during the RayService upgrades (the floor).
const loadRate = 200

// loadClientBinary is the load client's executable (test/e2e/loadclient): on the local cluster's
// process node it resolves from bin/ on PATH, in the rayk8s image from /usr/local/bin.
const loadClientBinary = "rayk8s-e2e-loadclient"

// The sample RayService, upgraded twice under a steady load from a pod inside the cluster: once by
// its serve config (in place) and once by its cluster spec (a new cluster, then a traffic switch).
// Not one request may fail.
var _ = ginkgo.Describe("RayService", ginkgo.Ordered, func() {
	var (
		ns      string
		name    string
		svcName string
		loadPod string
	)

	get := func(ctx context.Context) *rayv1.RayService {
		rs := &rayv1.RayService{}
		gomega.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rs)).To(gomega.Succeed())
		return rs
	}
	update := func(ctx context.Context, change func(*rayv1.RayService)) {
		updateObject(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rayv1.RayService{}, change)
	}
	// serving checks that the RayService is Ready with no upgrade running, every application
	// RUNNING on the active cluster, and returns the active cluster's name.
	serving := func(ctx context.Context) func(g gomega.Gomega) string {
		return func(g gomega.Gomega) string {
			rs := &rayv1.RayService{}
			g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rs)).To(gomega.Succeed())
			g.Expect(meta.IsStatusConditionTrue(rs.Status.Conditions, string(rayv1.RayServiceReady))).To(gomega.BeTrue(), "Ready condition: %+v", rs.Status.Conditions)
			g.Expect(meta.IsStatusConditionTrue(rs.Status.Conditions, string(rayv1.UpgradeInProgress))).To(gomega.BeFalse(), "UpgradeInProgress")
			g.Expect(rs.Status.ObservedGeneration).To(gomega.Equal(rs.Generation), "observedGeneration")
			g.Expect(rs.Status.PendingServiceStatus.RayClusterName).To(gomega.BeEmpty(), "pending cluster")
			g.Expect(rs.Status.ActiveServiceStatus.Applications).NotTo(gomega.BeEmpty(), "applications")
			for app, st := range rs.Status.ActiveServiceStatus.Applications {
				g.Expect(st.Status).To(gomega.Equal(rayv1.ApplicationStatusRunning), "application %s", app)
			}
			g.Expect(rs.Status.NumServeEndpoints).To(gomega.BeNumerically(">", 0), "numServeEndpoints")
			return rs.Status.ActiveServiceStatus.RayClusterName
		}
	}
	// echoVia asks the serve Service (through the API server's service proxy) what it serves.
	echoVia := func(ctx context.Context) (map[string]any, error) {
		b, err := k8s.CoreV1().Services(ns).ProxyGet("http", svcName, "serve", "/", nil).DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", err, b)
		}
		out := map[string]any{}
		return out, json.Unmarshal(b, &out)
	}
	loadNow := func(ctx context.Context) (stats.Stats, error) {
		var s stats.Stats
		b, err := k8s.CoreV1().Pods(ns).ProxyGet("http", loadPod, "9000", "/stats", nil).DoRaw(ctx)
		if err != nil {
			return s, fmt.Errorf("%w: %s", err, b)
		}
		return s, json.Unmarshal(b, &s)
	}
	// loadPost POSTs to the load client's path (window, stop) and returns its stats.
	loadPost := func(ctx context.Context, path string) stats.Stats {
		b, err := k8s.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(loadPod + ":9000").
			SubResource("proxy").Suffix(path).DoRaw(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "POST %s: %s", path, b)
		var s stats.Stats
		gomega.Expect(json.Unmarshal(b, &s)).To(gomega.Succeed())
		return s
	}
	// noFailures checks the load so far: flowing (more successes than at the last check) and
	// not one failure.
	var lastOK int64
	noFailures := func(ctx context.Context, step string) stats.Stats {
		s, err := loadNow(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.GinkgoWriter.Printf("Load after %s: %s\n", step, s)
		gomega.Expect(s.Failed).To(gomega.BeZero(), "failed requests after %s: %s", step, s)
		gomega.Expect(s.OK).To(gomega.BeNumerically(">", lastOK), "the load kept flowing through %s", step)
		lastOK = s.OK
		return s
	}

	ginkgo.BeforeAll(func(ctx context.Context) {
		ns = newNamespace(ctx)
	})

	ginkgo.It("serves the sample through the serve Service's ClusterIP", func(ctx context.Context) {
		rs := loadRayServiceSample()
		rs.Namespace = ns
		// The old cluster lives this long after the switch (default 60 s); shorter keeps the
		// suite fast and still covers its deletion under load.
		rs.Spec.RayClusterDeletionDelaySeconds = ptr.To[int32](15)
		name, svcName = rs.Name, rs.Name+"-serve-svc"
		gomega.Expect(cl.Create(ctx, rs)).To(gomega.Succeed())
		gomega.Eventually(serving(ctx)).WithContext(ctx).Should(gomega.Not(gomega.BeEmpty()))
		gomega.Eventually(func() (map[string]any, error) { return echoVia(ctx) }).WithContext(ctx).
			Should(gomega.HaveKeyWithValue("app", "echo"), "the echo application answers through %s", svcName)

		// The load client: a pod of the cluster network calling the serve Service by its DNS
		// name, which resolves to the ClusterIP.
		svc, err := k8s.CoreV1().Services(ns).Get(ctx, svcName, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(svc.Spec.ClusterIP).NotTo(gomega.BeEmpty())
		pod := loadClientPod(ns, fmt.Sprintf("http://%s:8000/", svcName), loadRate, `"app":"echo"`)
		loadPod = pod.Name
		gomega.Expect(cl.Create(ctx, pod)).To(gomega.Succeed())
		gomega.Eventually(func(g gomega.Gomega) {
			s, err := loadNow(ctx)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(s.OK).To(gomega.BeNumerically(">=", loadRate), "load client successes: %s", s)
		}).WithContext(ctx).Should(gomega.Succeed())
		noFailures(ctx, "start")
	})

	ginkgo.It("rolls out a serve config change in place, without a failed request", func(ctx context.Context) {
		active := get(ctx).Status.ActiveServiceStatus.RayClusterName
		gomega.Expect(active).NotTo(gomega.BeEmpty())
		loadPost(ctx, "window")
		// New application args: every replica is replaced (a rolling update), and a second replica
		// is added.
		update(ctx, func(rs *rayv1.RayService) {
			rs.Spec.ServeConfigV2 = strings.Join([]string{
				"applications:",
				"  - name: echo",
				"    import_path: builtin:echo",
				"    route_prefix: /",
				"    args:",
				"      message: v2",
				"    deployments:",
				"      - name: echo",
				"        num_replicas: 2",
				"",
			}, "\n")
		})
		start := time.Now()
		gomega.Eventually(func(g gomega.Gomega) {
			b, err := echoVia(ctx)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(b).To(gomega.HaveKeyWithValue("message", "v2"))
		}).WithContext(ctx).Should(gomega.Succeed())
		gomega.Eventually(serving(ctx)).WithContext(ctx).Should(gomega.Equal(active), "the same cluster serves: no new cluster for a serve config change")
		served := time.Since(start)
		var clusters rayv1.RayClusterList
		gomega.Expect(cl.List(ctx, &clusters, client.InNamespace(ns))).To(gomega.Succeed())
		gomega.Expect(clusters.Items).To(gomega.HaveLen(1), "RayClusters")
		st := noFailures(ctx, "the serve config change")
		ginkgo.AddReportEntry("serve config change", fmt.Sprintf("new config served after %s, same cluster; slowest request since the change %.1f ms; load so far: %s",
			served.Round(time.Millisecond), st.WindowMaxLatencyMs, st))
	})

	ginkgo.It("upgrades the cluster (new env) with a traffic switch, without a failed request", func(ctx context.Context) {
		old := get(ctx).Status.ActiveServiceStatus.RayClusterName
		gomega.Expect(old).NotTo(gomega.BeEmpty())
		loadPost(ctx, "window")
		start := time.Now()
		update(ctx, func(rs *rayv1.RayService) {
			spec := &rs.Spec.RayClusterSpec
			for _, pt := range append([]*corev1.PodTemplateSpec{&spec.HeadGroupSpec.Template}, workerTemplates(spec)...) {
				c := &pt.Spec.Containers[0]
				c.Env = append(c.Env, corev1.EnvVar{Name: "RAYK8S_E2E_REVISION", Value: "2"})
			}
		})
		// The serve Service moves to the new cluster once it serves.
		gomega.Eventually(func(g gomega.Gomega) {
			svc, err := k8s.CoreV1().Services(ns).Get(ctx, svcName, metav1.GetOptions{})
			g.Expect(err).NotTo(gomega.HaveOccurred())
			sel := svc.Spec.Selector[rayv1.RayClusterLabelKey]
			g.Expect(sel).NotTo(gomega.Equal(old), "serve Service selector")
			g.Expect(sel).NotTo(gomega.BeEmpty())
		}).WithContext(ctx).WithPolling(200 * time.Millisecond).Should(gomega.Succeed())
		switched := time.Since(start)
		noFailures(ctx, "the traffic switch")
		gomega.Eventually(serving(ctx)).WithContext(ctx).Should(gomega.Not(gomega.Equal(old)))
		// The old cluster goes after rayClusterDeletionDelaySeconds, its pods with it.
		gomega.Eventually(func(g gomega.Gomega) {
			err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: old}, &rayv1.RayCluster{})
			g.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "old RayCluster %s deleted (err=%v)", old, err)
			g.Expect(leftovers(ctx, ns, old)).To(gomega.BeEmpty())
		}).WithContext(ctx).Should(gomega.Succeed())
		deleted := time.Since(start)
		// Count only once the requests already on their way to the old cluster's pods have
		// finished, successfully or not: as many have finished as had been sent at its deletion.
		atDeletion, err := loadNow(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(func(g gomega.Gomega) {
			s, err := loadNow(ctx)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(s.OK+s.Failed).To(gomega.BeNumerically(">=", atDeletion.Sent), "requests finished, of %d sent at the deletion: %s", atDeletion.Sent, s)
		}).WithContext(ctx).Should(gomega.Succeed())
		st := noFailures(ctx, "the old cluster's deletion")
		ginkgo.AddReportEntry("cluster upgrade", fmt.Sprintf("traffic switched to the new cluster after %s, old cluster gone after %s; slowest request since the change %.1f ms; load so far: %s",
			switched.Round(time.Millisecond), deleted.Round(time.Millisecond), st.WindowMaxLatencyMs, st))
	})

	ginkgo.It("counted every request: zero failed out of all sent", func(ctx context.Context) {
		s := loadPost(ctx, "stop")
		ginkgo.AddReportEntry("load through both upgrades", fmt.Sprintf("%d req/s: sent=%d failed=%d (%s)", loadRate, s.Sent, s.Failed, s))
		gomega.Expect(s.Stopped).To(gomega.BeTrue())
		gomega.Expect(s.Failed).To(gomega.BeZero(), "failed requests: %s", s)
		gomega.Expect(s.OK).To(gomega.Equal(s.Sent), "every request sent finished successfully")
	})
})

// loadRayServiceSample reads config/samples/ray-service.sample.yaml.
func loadRayServiceSample() *rayv1.RayService {
	rs := &rayv1.RayService{}
	readSample("", "ray-service.sample.yaml", rs)
	return rs
}

func workerTemplates(spec *rayv1.RayClusterSpec) []*corev1.PodTemplateSpec {
	var out []*corev1.PodTemplateSpec
	for i := range spec.WorkerGroupSpecs {
		out = append(out, &spec.WorkerGroupSpecs[i].Template)
	}
	return out
}

// loadClientPod runs the load client against url at rate requests per second; a successful
// response must contain expect.
func loadClientPod(ns, url string, rate int, expect string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "load-client", Labels: map[string]string{"app": "load-client"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:    "load",
				Image:   "rayk8s/rayk8s:latest",
				Command: []string{loadClientBinary, "-url", url, "-rate", fmt.Sprint(rate), "-expect", expect, "-listen", ":9000"},
				Ports:   []corev1.ContainerPort{{Name: "stats", ContainerPort: 9000}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
		},
	}
}
