package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// loadSample reads the RayCluster sample (E2E_SAMPLE or the repository's).
func loadSample() *rayv1.RayCluster {
	rc := &rayv1.RayCluster{}
	readSample(os.Getenv("E2E_SAMPLE"), "ray-cluster.sample.yaml", rc)
	return rc
}

// readSample decodes, strictly, the manifest at path, or config/samples/<name> when path is empty.
func readSample(path, name string, into any) {
	if path == "" {
		_, file, _, _ := runtime.Caller(0)
		path = filepath.Join(filepath.Dir(file), "..", "..", "config", "samples", name)
	}
	b, err := os.ReadFile(path)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(yaml.UnmarshalStrict(b, into)).To(gomega.Succeed(), "decoding %s", path)
}

// rayPods lists the cluster's pods of one node type ("head" or "worker") that are not being
// deleted.
func rayPods(ctx context.Context, ns, cluster, nodeType string) []corev1.Pod {
	var pods corev1.PodList
	gomega.Expect(cl.List(ctx, &pods, client.InNamespace(ns),
		client.MatchingLabels{"ray.io/cluster": cluster, "ray.io/node-type": nodeType})).To(gomega.Succeed())
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// clusterUp checks, as one Eventually-able function, that the RayCluster is ready with one head
// and n workers, all Running and Ready, and that the head reports exactly those nodes alive.
func clusterUp(ctx context.Context, ns, name string, n int) func(g gomega.Gomega) {
	return func(g gomega.Gomega) {
		rc := &rayv1.RayCluster{}
		g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rc)).To(gomega.Succeed())
		g.Expect(rc.Status.State).To(gomega.Equal(rayv1.ClusterStateReady), "RayCluster state")
		heads, workers := rayPods(ctx, ns, name, "head"), rayPods(ctx, ns, name, "worker")
		g.Expect(heads).To(gomega.HaveLen(1), "head pods")
		g.Expect(workers).To(gomega.HaveLen(n), "worker pods")
		all := append(append([]corev1.Pod{}, heads...), workers...)
		for i := range all {
			g.Expect(podReady(&all[i])).To(gomega.BeTrue(), "pod %s Running and Ready", all[i].Name)
		}
		want := map[string]string{heads[0].Status.PodIP: "head"}
		for _, w := range workers {
			want[w.Status.PodIP] = "worker"
		}
		g.Expect(aliveNodes(ctx, &heads[0])).To(gomega.Equal(want), "Ray nodes alive (IP → role) per `ray status` on the head")
	}
}

// aliveNodes runs `ray status` in the head and returns the alive nodes' IPs and roles. (The
// dashboard has no nodes endpoint yet; exec works on kind and on the process node alike.)
func aliveNodes(ctx context.Context, head *corev1.Pod) (map[string]string, error) {
	out, err := execIn(ctx, head, head.Spec.Containers[0].Name, "ray", "status")
	if err != nil {
		return nil, fmt.Errorf("ray status: %w: %s", err, out)
	}
	nodes := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[3] == "ALIVE" && (f[2] == "head" || f[2] == "worker") {
			nodes[f[1]] = f[2]
		}
	}
	return nodes, nil
}

// dashboardVersion fetches /api/version from the head's dashboard through the API server's
// service proxy.
func dashboardVersion(ctx context.Context, ns, cluster string) (string, error) {
	var svcs corev1.ServiceList
	if err := cl.List(ctx, &svcs, client.InNamespace(ns), client.MatchingLabels{"ray.io/cluster": cluster, "ray.io/node-type": "head"}); err != nil {
		return "", err
	}
	if len(svcs.Items) != 1 {
		return "", fmt.Errorf("%d head services", len(svcs.Items))
	}
	b, err := k8s.CoreV1().Services(ns).ProxyGet("http", svcs.Items[0].Name, "dashboard", "/api/version", nil).DoRaw(ctx)
	return string(b), err
}

// execIn runs argv in a container and returns its combined output.
func execIn(ctx context.Context, pod *corev1.Pod, container string, argv ...string) (string, error) {
	req := k8s.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: container, Command: argv, Stdout: true, Stderr: true,
	}, scheme.ParameterCodec)
	// WebSockets, as kubectl does; the API server speaks SPDY to the kubelet where it must.
	exec, err := remotecommand.NewWebSocketExecutor(restCfg, "GET", req.URL().String())
	if err != nil {
		return "", err
	}
	// stdout and stderr are copied by two goroutines: one lock keeps both.
	var out lockedBuffer
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &out})
	return out.String(), err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// leftovers lists what still exists of a deleted RayCluster: pods, services, its own object.
func leftovers(ctx context.Context, ns, name string) []string {
	var left []string
	sel := client.MatchingLabels{"ray.io/cluster": name}
	var pods corev1.PodList
	if err := cl.List(ctx, &pods, client.InNamespace(ns), sel); err != nil {
		return []string{err.Error()}
	}
	for _, p := range pods.Items {
		left = append(left, "pod/"+p.Name)
	}
	var svcs corev1.ServiceList
	if err := cl.List(ctx, &svcs, client.InNamespace(ns), sel); err != nil {
		return []string{err.Error()}
	}
	for _, s := range svcs.Items {
		left = append(left, "service/"+s.Name)
	}
	rc := &rayv1.RayCluster{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rc); err == nil {
		left = append(left, "raycluster/"+name)
	}
	return left
}

// updateObject reads the object at key into obj, applies change and updates it, retrying on
// conflicts.
func updateObject[T client.Object](ctx context.Context, key client.ObjectKey, obj T, change func(T)) {
	gomega.Eventually(func(g gomega.Gomega) {
		g.Expect(cl.Get(ctx, key, obj)).To(gomega.Succeed())
		change(obj)
		g.Expect(cl.Update(ctx, obj)).To(gomega.Succeed())
	}).WithContext(ctx).Should(gomega.Succeed())
}

// newNamespace creates a namespace for one group of specs and deletes it, with everything in it,
// when the group ends (call it from BeforeAll).
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rayk8s-e2e-", Labels: map[string]string{"rayk8s.io/e2e": "true"}}}
	gomega.Expect(cl.Create(ctx, ns)).To(gomega.Succeed())
	ginkgo.DeferCleanup(func(ctx context.Context) {
		_ = k8s.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1DeleteBackground)
	})
	return ns.Name
}

// metav1DeleteBackground deletes dependents in the background (a namespace's contents).
var metav1DeleteBackground = metav1.DeleteOptions{PropagationPolicy: ptrTo(metav1.DeletePropagationBackground)}

func ptrTo[T any](v T) *T { return &v }
