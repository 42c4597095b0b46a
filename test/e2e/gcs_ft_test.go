package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/test/e2e/loadclient/stats"
)

// GCS fault tolerance on the samples: the external-Redis RayCluster and the highly available
// RayService share one Redis (KubeRay's). The RayService's head pod is deleted while the load
// client sends 200 req/s through its serve Service and a RayJob's driver runs on one of its
// workers; then the RayCluster is deleted and only its keys leave Redis.
var _ = ginkgo.Describe("GCS fault tolerance", ginkgo.Ordered, func() {
	const (
		clusterSample = "ray-cluster.external-redis.yaml"
		serviceSample = "ray-service.high-availability.yaml"
	)
	var (
		ns            string
		redisPassword string
		clusterName   string
		serviceName   string
		// The Redis key namespaces of the RayCluster and of the RayService's cluster.
		clusterStorage string
		serviceStorage string
	)

	ginkgo.BeforeAll(func(ctx context.Context) {
		ns = newNamespace(ctx)
		var rc *unstructured.Unstructured
		for _, obj := range sampleObjects(clusterSample) {
			obj.SetNamespace(ns)
			if obj.GetKind() == "Secret" && obj.GetName() == "redis-password-secret" {
				redisPassword = secretValue(obj, "password")
			}
			if obj.GetKind() == "RayCluster" {
				rc = obj
				continue
			}
			gomega.Expect(cl.Create(ctx, obj)).To(gomega.Succeed(), "creating %s %s", obj.GetKind(), obj.GetName())
		}
		gomega.Expect(rc).NotTo(gomega.BeNil(), "%s has no RayCluster", clusterSample)
		gomega.Expect(redisPassword).NotTo(gomega.BeEmpty(), "%s has no Redis password", clusterSample)
		clusterName = rc.GetName()
		// Both clusters start together; the RayService's is awaited by the second spec.
		gomega.Expect(cl.Create(ctx, rc)).To(gomega.Succeed())
		rs := rayServiceFrom(serviceSample)
		rs.Namespace = ns
		serviceName = rs.Name
		gomega.Expect(cl.Create(ctx, rs)).To(gomega.Succeed())
		// Delete the Ray objects while Redis is still there: their clean-up Jobs need it, and
		// the namespace's deletion would otherwise wait for them to give up.
		ginkgo.DeferCleanup(func(ctx context.Context) {
			for _, obj := range []client.Object{&rayv1.RayService{}, &rayv1.RayCluster{}} {
				gomega.Expect(client.IgnoreNotFound(cl.DeleteAllOf(ctx, obj, client.InNamespace(ns)))).To(gomega.Succeed())
			}
			gomega.Eventually(func(g gomega.Gomega) {
				var clusters rayv1.RayClusterList
				g.Expect(cl.List(ctx, &clusters, client.InNamespace(ns))).To(gomega.Succeed())
				g.Expect(clusters.Items).To(gomega.BeEmpty(), "RayClusters left")
			}).WithContext(ctx).Should(gomega.Succeed())
		}, ginkgo.NodeTimeout(time.Minute))
	}, ginkgo.NodeTimeout(30*time.Second))

	ginkgo.It("the external-Redis sample comes up with its tables in Redis under its own namespace", ginkgo.SpecTimeout(80*time.Second), func(ctx context.Context) {
		gomega.Eventually(func(g gomega.Gomega) {
			var d appsv1.Deployment
			g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "redis"}, &d)).To(gomega.Succeed())
			g.Expect(d.Status.AvailableReplicas).To(gomega.Equal(int32(1)), "redis Deployment available")
		}).WithContext(ctx).Should(gomega.Succeed())
		gomega.Eventually(clusterUp(ctx, ns, clusterName, 1)).WithContext(ctx).Should(gomega.Succeed())

		rc := &rayv1.RayCluster{}
		gomega.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: clusterName}, rc)).To(gomega.Succeed())
		clusterStorage = storageNamespace(ctx, ns, clusterName)
		gomega.Expect(clusterStorage).To(gomega.Equal(string(rc.UID)), "the storage namespace defaults to the RayCluster's UID")
		gomega.Eventually(func() ([]string, error) { return redisKeys(ctx, ns, redisPassword, clusterStorage) }).WithContext(ctx).
			ShouldNot(gomega.BeEmpty(), "keys of %s in Redis", clusterName)
	})

	ginkgo.It("the RayService stays Ready with zero failed requests at 200 req/s and a RayJob on a worker succeeds when the head pod is deleted", ginkgo.SpecTimeout(2*time.Minute), func(ctx context.Context) {
		readyRayService := func(g gomega.Gomega) (*rayv1.RayService, bool) {
			rs := &rayv1.RayService{}
			g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: serviceName}, rs)).To(gomega.Succeed())
			return rs, meta.IsStatusConditionTrue(rs.Status.Conditions, string(rayv1.RayServiceReady))
		}
		var active string
		gomega.Eventually(func(g gomega.Gomega) {
			rs, ready := readyRayService(g)
			g.Expect(ready).To(gomega.BeTrue(), "Ready condition: %+v", rs.Status.Conditions)
			g.Expect(rs.Status.NumServeEndpoints).To(gomega.BeNumerically(">", 0), "numServeEndpoints")
			active = rs.Status.ActiveServiceStatus.RayClusterName
			g.Expect(active).NotTo(gomega.BeEmpty(), "active cluster")
		}).WithContext(ctx).Should(gomega.Succeed())
		gomega.Eventually(clusterUp(ctx, ns, active, 2)).WithContext(ctx).Should(gomega.Succeed())
		serviceStorage = storageNamespace(ctx, ns, active)

		pod := loadClientPod(ns, fmt.Sprintf("http://%s-serve-svc:8000/", serviceName), loadRate, `"app":"echo"`)
		gomega.Expect(cl.Create(ctx, pod)).To(gomega.Succeed())
		gomega.Eventually(func(g gomega.Gomega) {
			s, err := loadStats(ctx, ns, pod.Name)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(s.OK).To(gomega.BeNumerically(">=", loadRate), "load client successes: %s", s)
		}).WithContext(ctx).Should(gomega.Succeed())

		// The driver ticks until the spec lets it finish, so it runs through the head's absence. It
		// requests a CPU share, and the head offers none: it runs on a worker.
		marker := "/tmp/rayk8s-e2e-gcs-ft-" + ns
		rj := &rayv1.RayJob{}
		rj.Namespace, rj.Name = ns, "through-head-restart"
		rj.Spec = rayv1.RayJobSpec{
			Entrypoint:        fmt.Sprintf("i=0; while [ ! -e %[1]s ]; do i=$((i+1)); echo tick $i; sleep 0.2; done; rm -f %[1]s; echo finished after $i ticks", marker),
			EntrypointNumCPUs: 0.5,
			SubmissionMode:    rayv1.HTTPMode,
			ClusterSelector:   map[string]string{rayv1.RayJobClusterSelectorKey: active},
		}
		gomega.Expect(cl.Create(ctx, rj)).To(gomega.Succeed())
		var jobID string
		gomega.Eventually(func(g gomega.Gomega) {
			got := getRayJob(ctx, g, ns, rj.Name)
			g.Expect(got.Status.JobStatus).To(gomega.Equal(rayv1.JobStatusRunning), "RayJob %s: %+v", rj.Name, got.Status)
			jobID = got.Status.JobID
		}).WithContext(ctx).Should(gomega.Succeed())
		head := rayPods(ctx, ns, active, "head")[0]
		workerIPs := map[string]bool{}
		for _, w := range rayPods(ctx, ns, active, "worker") {
			workerIPs[w.Status.PodIP] = true
		}
		before, err := rayJobOnHead(ctx, ns, active, jobID)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(before.DriverInfo).NotTo(gomega.BeNil(), "driver of %s", jobID)
		gomega.Expect(workerIPs).To(gomega.HaveKey(before.DriverInfo.NodeIPAddress), "the driver runs on a worker, not the head %s", head.Status.PodIP)

		gomega.Expect(cl.Delete(ctx, &head)).To(gomega.Succeed())
		// Wait for a new head with both workers registered again, checking at every poll that the
		// RayService never stopped being Ready.
		var notReady []string
		gomega.Eventually(func(g gomega.Gomega) {
			if rs, ready := readyRayService(g); !ready {
				notReady = append(notReady, fmt.Sprintf("%s: %+v", time.Now().Format("15:04:05"), rs.Status.Conditions))
			}
			heads := rayPods(ctx, ns, active, "head")
			g.Expect(heads).To(gomega.HaveLen(1), "head pods")
			g.Expect(heads[0].UID).NotTo(gomega.Equal(head.UID), "a new head pod")
			clusterUp(ctx, ns, active, 2)(g)
		}).WithContext(ctx).Should(gomega.Succeed())
		gomega.Expect(notReady).To(gomega.BeEmpty(), "the RayService was not Ready while the head was away")

		after, err := rayJobOnHead(ctx, ns, active, jobID)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "the restarted head knows the job")
		gomega.Expect(after.Status).To(gomega.BeEquivalentTo(rayv1.JobStatusRunning), "job %s on the restarted head: %s", jobID, after.Message)
		for _, w := range rayPods(ctx, ns, active, "worker") {
			out, err := execIn(ctx, &w, w.Spec.Containers[0].Name, "touch", marker)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "touch %s in %s: %s", marker, w.Name, out)
		}
		done := finishedRayJob(ctx, ns, rj.Name)
		gomega.Expect(done.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusComplete), "RayJob: %+v", done.Status)
		gomega.Expect(done.Status.JobStatus).To(gomega.Equal(rayv1.JobStatusSucceeded), "RayJob: %+v", done.Status)

		rs := &rayv1.RayService{}
		gomega.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: serviceName}, rs)).To(gomega.Succeed())
		gomega.Expect(rs.Status.ActiveServiceStatus.RayClusterName).To(gomega.Equal(active), "the same cluster serves: a head restart is no upgrade")
		s := loadPost(ctx, ns, pod.Name, "stop")
		ginkgo.AddReportEntry("GCS fault tolerance: load through the head restart", fmt.Sprintf("%d req/s: %s", loadRate, s))
		gomega.Expect(s.Failed).To(gomega.BeZero(), "failed requests through the serve Service: %s", s)
		gomega.Expect(s.OK).To(gomega.Equal(s.Sent), "every request sent finished successfully")
	})

	ginkgo.It("deleting the RayCluster removes its keys from Redis and leaves the RayService cluster's", ginkgo.SpecTimeout(40*time.Second), func(ctx context.Context) {
		gomega.Expect(clusterStorage).NotTo(gomega.BeEmpty())
		gomega.Expect(serviceStorage).NotTo(gomega.BeEmpty())
		gomega.Expect(serviceStorage).NotTo(gomega.Equal(clusterStorage), "two clusters share one storage namespace")
		gomega.Expect(redisKeys(ctx, ns, redisPassword, clusterStorage)).NotTo(gomega.BeEmpty(), "keys of %s before its deletion", clusterName)

		rc := &rayv1.RayCluster{}
		gomega.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: clusterName}, rc)).To(gomega.Succeed())
		gomega.Expect(rc.Finalizers).To(gomega.ContainElement(rayv1.GCSFaultToleranceRedisCleanupFinalizer))
		gomega.Expect(cl.Delete(ctx, rc)).To(gomega.Succeed())
		// The finalizer holds the RayCluster until the clean-up Job has ended.
		gomega.Eventually(func() bool {
			return apierrors.IsNotFound(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: clusterName}, &rayv1.RayCluster{}))
		}).WithContext(ctx).Should(gomega.BeTrue(), "RayCluster %s deleted", clusterName)

		gomega.Expect(redisKeys(ctx, ns, redisPassword, clusterStorage)).To(gomega.BeEmpty(), "keys of the deleted %s", clusterName)
		gomega.Expect(redisKeys(ctx, ns, redisPassword, serviceStorage)).NotTo(gomega.BeEmpty(), "keys of the RayService's cluster")
	})
})

// sampleObjects decodes every document of config/samples/<name>.
func sampleObjects(name string) []*unstructured.Unstructured {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "config", "samples", name))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "reading %s", name)
		j, err := yaml.YAMLToJSON(doc)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "reading %s", name)
		if len(bytes.TrimSpace(j)) == 0 || string(j) == "null" {
			continue
		}
		obj := &unstructured.Unstructured{}
		gomega.Expect(obj.UnmarshalJSON(j)).To(gomega.Succeed(), "decoding a document of %s", name)
		out = append(out, obj)
	}
}

// rayServiceFrom decodes, strictly, the RayService document of config/samples/<name>.
func rayServiceFrom(name string) *rayv1.RayService {
	for _, obj := range sampleObjects(name) {
		if obj.GetKind() != "RayService" {
			continue
		}
		j, err := obj.MarshalJSON()
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		rs := &rayv1.RayService{}
		d := json.NewDecoder(bytes.NewReader(j))
		d.DisallowUnknownFields()
		gomega.Expect(d.Decode(rs)).To(gomega.Succeed(), "decoding the RayService of %s", name)
		return rs
	}
	ginkgo.Fail(name + " has no RayService")
	return nil
}

// secretValue returns a key of a Secret manifest's data (base64) or stringData.
func secretValue(secret *unstructured.Unstructured, key string) string {
	var s corev1.Secret
	j, err := secret.MarshalJSON()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(json.Unmarshal(j, &s)).To(gomega.Succeed())
	if v, ok := s.StringData[key]; ok {
		return v
	}
	return string(s.Data[key])
}

// storageNamespace is the Redis key namespace a cluster's head uses, as the operator records it
// on the head pod.
func storageNamespace(ctx context.Context, ns, cluster string) string {
	heads := rayPods(ctx, ns, cluster, "head")
	gomega.Expect(heads).To(gomega.HaveLen(1), "head pods of %s", cluster)
	storage := heads[0].Annotations[rayv1.RayExternalStorageNSAnnotationKey]
	gomega.Expect(storage).NotTo(gomega.BeEmpty(), "annotation %s of %s", rayv1.RayExternalStorageNSAnnotationKey, heads[0].Name)
	return storage
}

// redisKeys lists, with redis-cli in the sample's Redis pod, the keys of one storage namespace
// (the runtime's tables are hashes named RAY<namespace>@<table>).
func redisKeys(ctx context.Context, ns, password, storage string) ([]string, error) {
	var pods corev1.PodList
	if err := cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": "redis"}); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || !podReady(p) {
			continue
		}
		out, err := execIn(ctx, p, "redis", "redis-cli", "-a", password, "--no-auth-warning", "--scan", "--pattern", "RAY"+storage+"@*")
		if err != nil {
			return nil, fmt.Errorf("redis-cli --scan: %w: %s", err, out)
		}
		return strings.Fields(out), nil
	}
	return nil, errors.New("no ready redis pod")
}

// loadStats reads the load client's counts.
func loadStats(ctx context.Context, ns, pod string) (stats.Stats, error) {
	var s stats.Stats
	b, err := k8s.CoreV1().Pods(ns).ProxyGet("http", pod, "9000", "/stats", nil).DoRaw(ctx)
	if err != nil {
		return s, fmt.Errorf("%w: %s", err, b)
	}
	return s, json.Unmarshal(b, &s)
}

// loadPost POSTs to a path of the load client (window, stop) and returns its counts.
func loadPost(ctx context.Context, ns, pod, path string) stats.Stats {
	b, err := k8s.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod + ":9000").
		SubResource("proxy").Suffix(path).DoRaw(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "POST %s: %s", path, b)
	var s stats.Stats
	gomega.Expect(json.Unmarshal(b, &s)).To(gomega.Succeed())
	return s
}
