package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// kuberaySamplesDir is KubeRay's samples folder checked out next to the repository.
func kuberaySamplesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "kuberay", "samples")
}

// kuberayRayJobSample decodes KubeRay's ray-job.sample.yaml (a RayJob and the ConfigMap holding
// sample_code.py) with only what needs the internet taken out: the runtime env's pip list and the
// last line of the script, which asserts the requests version pip would have installed.
func kuberayRayJobSample() (*rayv1.RayJob, *corev1.ConfigMap) {
	path := filepath.Join(kuberaySamplesDir(), "ray-job.sample.yaml")
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		ginkgo.Skip(fmt.Sprintf("KubeRay's samples are not checked out at %s", kuberaySamplesDir()))
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	rj, cm := &rayv1.RayJob{}, &corev1.ConfigMap{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta struct {
			Kind string `json:"kind"`
		}
		gomega.Expect(yaml.Unmarshal([]byte(doc), &meta)).To(gomega.Succeed())
		switch meta.Kind {
		case "RayJob":
			gomega.Expect(yaml.UnmarshalStrict([]byte(doc), rj)).To(gomega.Succeed(), "decoding the RayJob of %s", path)
		case "ConfigMap":
			gomega.Expect(yaml.UnmarshalStrict([]byte(doc), cm)).To(gomega.Succeed(), "decoding the ConfigMap of %s", path)
		}
	}
	gomega.Expect(rj.Name).NotTo(gomega.BeEmpty(), "%s has a RayJob", path)
	gomega.Expect(cm.Data).To(gomega.HaveKey("sample_code.py"), "%s has the sample's code", path)

	var env map[string]any
	gomega.Expect(yaml.Unmarshal([]byte(rj.Spec.RuntimeEnvYAML), &env)).To(gomega.Succeed())
	gomega.Expect(env).To(gomega.HaveKey("pip"), "the sample's runtime env lists pip packages")
	delete(env, "pip")
	out, err := yaml.Marshal(env)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	rj.Spec.RuntimeEnvYAML = string(out)

	code := strings.TrimRight(cm.Data["sample_code.py"], "\n")
	last := strings.LastIndex(code, "\n")
	gomega.Expect(strings.TrimSpace(code[last+1:])).To(gomega.HavePrefix("assert requests.__version__"), "the script's last line")
	cm.Data["sample_code.py"] = code[:last+1]
	return rj, cm
}

// Ray core on our runtime, as the KubeRay quickstarts use it: KubeRay's RayJob sample runs its
// Counter actor, and `ray.init()` in the RayCluster sample's head sees the cluster.
var _ = ginkgo.Describe("Ray core", func() {
	ginkgo.It("runs KubeRay's RayJob sample to SUCCEEDED with the counter's output", func(ctx context.Context) {
		rj, cm := kuberayRayJobSample()
		ns := newNamespace(ctx)
		cm.Namespace, rj.Namespace = ns, ns
		gomega.Expect(cl.Create(ctx, cm)).To(gomega.Succeed(), "creating the sample's ConfigMap")
		gomega.Expect(cl.Create(ctx, rj)).To(gomega.Succeed(), "creating the sample's RayJob")

		done := finishedRayJob(ctx, ns, rj.Name)
		gomega.Expect(done.Status.JobStatus).To(gomega.Equal(rayv1.JobStatusSucceeded), "message %q", done.Status.Message)
		gomega.Expect(done.Status.JobDeploymentStatus).To(gomega.Equal(rayv1.JobDeploymentStatusComplete))

		job := &batchv1.Job{}
		gomega.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: rj.Name}, job)).To(gomega.Succeed(), "submitter Job")
		pods := submitterPods(ctx, gomega.Default, job)
		gomega.Expect(pods).NotTo(gomega.BeEmpty(), "submitter pods")
		var logs strings.Builder
		for i := range pods {
			l, err := podLog(ctx, &pods[i], pods[i].Spec.Containers[0].Name)
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "log of submitter pod %s", pods[i].Name)
			logs.WriteString(l)
		}
		for n := 1; n <= 5; n++ {
			gomega.Expect(logs.String()).To(gomega.ContainSubstring(fmt.Sprintf("test_counter got %d\n", n)), "the submitter's logs")
		}
	})

	// KubeRay's head container has RAY_ADDRESS=127.0.0.1:6379 while the node records its pod IP;
	// ray.init() must take the loopback address as this node's.
	ginkgo.It("prints the cluster's resources from `python -c` in the RayCluster sample's head", func(ctx context.Context) {
		ns := newNamespace(ctx)
		rc := loadSample()
		rc.Namespace = ns
		gomega.Expect(cl.Create(ctx, rc)).To(gomega.Succeed())
		n := int(ptr.Deref(rc.Spec.WorkerGroupSpecs[0].Replicas, 1))
		gomega.Eventually(clusterUp(ctx, ns, rc.Name, n)).WithContext(ctx).Should(gomega.Succeed())
		head := rayPods(ctx, ns, rc.Name, "head")[0]
		out, err := execIn(ctx, &head, head.Spec.Containers[0].Name,
			"python", "-c", "import ray; ray.init(); print(ray.cluster_resources())")
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "output:\n%s", out)
		gomega.Expect(out).To(gomega.MatchRegexp(`\{.*'CPU': \d+(\.\d+)?`), "the printed cluster resources")
	})
})
