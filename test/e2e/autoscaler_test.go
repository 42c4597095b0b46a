package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// autoscalerIdleTimeout is the sample's idleTimeoutSeconds, shortened from 60 so that scale-downs
// happen within a spec.
const autoscalerIdleTimeout = 15 * time.Second

// autoscalerWait bounds one scaling step: a round every 5 s, a pod to start, the idle timeout.
const autoscalerWait = 3 * time.Minute

// kuberayAutoscalerSample decodes KubeRay's ray-cluster.autoscaler.yaml (the RayCluster and the
// ConfigMap with the walkthrough's detached_actor.py and terminate_detached_actor.py). Nothing in
// it needs the internet; only idleTimeoutSeconds is shortened.
func kuberayAutoscalerSample() (*rayv1.RayCluster, *corev1.ConfigMap) {
	path := filepath.Join(kuberaySamplesDir(), "ray-cluster.autoscaler.yaml")
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		ginkgo.Skip(fmt.Sprintf("KubeRay's samples are not checked out at %s", kuberaySamplesDir()))
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	rc, cm := &rayv1.RayCluster{}, &corev1.ConfigMap{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta struct {
			Kind string `json:"kind"`
		}
		gomega.Expect(yaml.Unmarshal([]byte(doc), &meta)).To(gomega.Succeed())
		switch meta.Kind {
		case "RayCluster":
			gomega.Expect(yaml.UnmarshalStrict([]byte(doc), rc)).To(gomega.Succeed(), "decoding the RayCluster of %s", path)
		case "ConfigMap":
			gomega.Expect(yaml.UnmarshalStrict([]byte(doc), cm)).To(gomega.Succeed(), "decoding the ConfigMap of %s", path)
		}
	}
	gomega.Expect(rc.Spec.EnableInTreeAutoscaling).To(gomega.Equal(ptr.To(true)), "%s enables the autoscaler", path)
	gomega.Expect(rc.Spec.HeadGroupSpec.RayStartParams).To(gomega.HaveKeyWithValue("num-cpus", "0"), "the head offers no CPU, so work needs a worker")
	gomega.Expect(rc.Spec.WorkerGroupSpecs).To(gomega.HaveLen(1))
	gomega.Expect(rc.Spec.WorkerGroupSpecs[0].Replicas).To(gomega.Equal(ptr.To[int32](0)), "the sample starts with no workers")
	gomega.Expect(cm.Data).To(gomega.HaveKey("detached_actor.py"))
	rc.Spec.AutoscalerOptions.IdleTimeoutSeconds = ptr.To(int32(autoscalerIdleTimeout / time.Second))
	return rc, cm
}

// podHistory follows the cluster's pods from a watch: every worker pod ever seen, the worker pods
// that were deleted (first seen terminating or gone), in order, and anything wrong with the head
// pod (a container restart, Ready lost after it was reached).
type podHistory struct {
	mu         sync.Mutex
	seen       []string
	deleted    []string
	headReady  bool
	headFaults []string
	err        error
}

func (h *podHistory) record(typ watch.EventType, p *corev1.Pod) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch p.Labels[rayv1.RayNodeTypeLabelKey] {
	case string(rayv1.WorkerNode):
		if !slices.Contains(h.seen, p.Name) {
			h.seen = append(h.seen, p.Name)
		}
		if (typ == watch.Deleted || p.DeletionTimestamp != nil) && !slices.Contains(h.deleted, p.Name) {
			h.deleted = append(h.deleted, p.Name)
		}
	case string(rayv1.HeadNode):
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount > 0 {
				h.headFaults = append(h.headFaults, fmt.Sprintf("container %s restarted %d times", cs.Name, cs.RestartCount))
			}
		}
		ready := podReady(p)
		if h.headReady && !ready && typ != watch.Deleted && p.DeletionTimestamp == nil {
			h.headFaults = append(h.headFaults, "the head pod lost Ready")
		}
		h.headReady = h.headReady || ready
	}
}

func (h *podHistory) seenPods() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen)
}

// missingFrom lists pods of before that are neither recorded as deleted nor in listed.
func (h *podHistory) missingFrom(before, listed []string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range before {
		if !slices.Contains(h.deleted, p) && !slices.Contains(listed, p) {
			out = append(out, p)
		}
	}
	return out
}

func (h *podHistory) deletedPods() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.deleted)
}

func (h *podHistory) faults() ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.headFaults), h.err
}

// watchPods records the pods of cluster in ns until ctx ends, re-opening the watch from the last
// resourceVersion when the API server closes it, and listing again when that version has expired.
func watchPods(ctx context.Context, ns, cluster string) *podHistory {
	h := &podHistory{}
	sel := rayv1.RayClusterLabelKey + "=" + cluster
	var listed []string
	relist := func() (string, error) {
		list, err := k8s.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return "", fmt.Errorf("listing pods: %w", err)
		}
		listed = listed[:0]
		for i := range list.Items {
			h.record(watch.Added, &list.Items[i])
			listed = append(listed, list.Items[i].Name)
		}
		return list.ResourceVersion, nil
	}
	rv, err := relist()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	fail := func(err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if ctx.Err() == nil && h.err == nil {
			h.err = err
		}
	}
	go func() {
		for ctx.Err() == nil {
			w, err := k8s.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				fail(fmt.Errorf("watching pods: %w", err))
				return
			}
			expired := false
			for ev := range w.ResultChan() {
				switch p := ev.Object.(type) {
				case *corev1.Pod:
					rv = p.ResourceVersion
					if ev.Type != watch.Bookmark {
						h.record(ev.Type, p)
					}
				case *metav1.Status:
					// Typically 410 Gone: the version is too old to resume from.
					expired = true
				}
			}
			w.Stop()
			if expired {
				// Deletions between the expired version and the new list are missed by the watch;
				// a pod that vanished in that window shows as missing from the list. That is
				// rare enough in a spec's few minutes to report as a failure rather than guess.
				before := h.seenPods()
				if rv, err = relist(); err != nil {
					fail(err)
					return
				}
				if gone := h.missingFrom(before, listed); len(gone) > 0 {
					fail(fmt.Errorf("the pod watch expired and pods %v went unobserved", gone))
					return
				}
			}
		}
	}()
	return h
}

// autoscalerDashboard reaches the head's dashboard through the API server's service proxy.
func autoscalerDashboard(ns, cluster string) *dashboard.Client {
	hc, err := rest.HTTPClientFor(restCfg)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	base := strings.TrimRight(restCfg.Host, "/") + "/api/v1/namespaces/" + ns + "/services/" + cluster + "-head-svc:dashboard/proxy"
	c, err := dashboard.NewClient(base, dashboard.WithHTTPClient(hc))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return c
}

// workerPods lists the cluster's worker pods that are not terminating.
func workerPods(ctx context.Context, ns, cluster string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range rayPods(ctx, ns, cluster, "worker") {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// podWithIP finds, among the cluster's live worker pods, the one with IP ip.
func podWithIP(ctx context.Context, ns, cluster, ip string) string {
	for _, p := range workerPods(ctx, ns, cluster) {
		if p.Status.PodIP == ip {
			return p.Name
		}
	}
	return ""
}

// The in-tree autoscaler on KubeRay's autoscaler sample (head with num-cpus 0, one 1-CPU worker
// group from 0 replicas): work the head cannot hold brings workers up, idle workers go after the
// idle timeout, a busy one never does, and the head stays Ready without restarts throughout.
// Run alone with `make e2e` and --ginkgo.focus=Autoscaler (see docs/autoscaling.md).
var _ = ginkgo.Describe("Autoscaler", ginkgo.Ordered, func() {
	var (
		ns      string
		rc      *rayv1.RayCluster
		history *podHistory
		dash    *dashboard.Client
	)

	ginkgo.BeforeAll(func(ctx context.Context) {
		var cm *corev1.ConfigMap
		rc, cm = kuberayAutoscalerSample()
		ns = newNamespace(ctx)
		rc.Namespace, cm.Namespace = ns, ns
		gomega.Expect(cl.Create(ctx, cm)).To(gomega.Succeed(), "creating the sample's ConfigMap")
		gomega.Expect(cl.Create(ctx, rc)).To(gomega.Succeed(), "creating the sample's RayCluster")
		watchCtx, stop := context.WithCancel(context.Background())
		ginkgo.DeferCleanup(stop)
		history = watchPods(watchCtx, ns, rc.Name)
		gomega.Eventually(clusterUp(ctx, ns, rc.Name, 0)).WithContext(ctx).WithTimeout(timeout).Should(gomega.Succeed(), "the head up with no workers")
		dash = autoscalerDashboard(ns, rc.Name)
	})

	// submit submits entrypoint with entrypoint_num_cpus under the submission id id.
	submit := func(ctx context.Context, id, entrypoint string, cpus float64) {
		ginkgo.GinkgoHelper()
		_, err := dash.SubmitJob(ctx, &dashboard.JobSubmitRequest{SubmissionID: id, Entrypoint: entrypoint, EntrypointNumCPUs: cpus})
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "submitting %s", id)
	}
	jobStatus := func(ctx context.Context, id string) func() (dashboard.JobStatus, error) {
		return func() (dashboard.JobStatus, error) {
			d, err := dash.GetJob(ctx, id)
			if err != nil {
				return "", err
			}
			return d.Status, nil
		}
	}
	// driverPod is the worker pod the job's driver runs on.
	driverPod := func(ctx context.Context, id string) string {
		ginkgo.GinkgoHelper()
		d, err := dash.GetJob(ctx, id)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ip := ""
		if d.DriverInfo != nil {
			ip = d.DriverInfo.NodeIPAddress
		}
		if ip == "" && d.DriverAgentHTTPAddress != nil {
			// A driver that exits at once may never be reported running; where it was placed is known.
			if u, err := url.Parse(*d.DriverAgentHTTPAddress); err == nil {
				ip = u.Hostname()
			}
		}
		gomega.Expect(ip).NotTo(gomega.BeEmpty(), "job %s: no driver node address in %+v", id, d)
		// The worker's Ray node can run the driver before its pod's status shows the pod IP.
		var pod string
		gomega.Eventually(func() string {
			pod = podWithIP(ctx, ns, rc.Name, ip)
			return pod
		}).WithContext(ctx).WithTimeout(30*time.Second).ShouldNot(gomega.BeEmpty(), "job %s: a worker pod with the driver's node IP %s", id, ip)
		return pod
	}
	workerCount := func(ctx context.Context) func() int {
		return func() int { return len(workerPods(ctx, ns, rc.Name)) }
	}

	ginkgo.It("brings up a worker for a job needing a CPU the head does not offer, runs it there and removes the worker once idle", func(ctx context.Context) {
		before := len(history.deletedPods())
		submit(ctx, "needs-a-cpu", "echo ran with a CPU", 1)
		gomega.Eventually(jobStatus(ctx, "needs-a-cpu")).WithContext(ctx).WithTimeout(autoscalerWait).
			Should(gomega.Equal(dashboard.JobStatusSucceeded), "the job, placed once a worker joined")
		worker := driverPod(ctx, "needs-a-cpu")
		gomega.Expect(worker).NotTo(gomega.BeEmpty(), "the job's driver ran on a worker pod of the cluster")
		logs, err := dash.GetJobLogs(ctx, "needs-a-cpu")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(logs).To(gomega.ContainSubstring("ran with a CPU"))

		gomega.Eventually(workerCount(ctx)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.BeZero(), "workers after the idle timeout")
		gomega.Expect(history.deletedPods()[before:]).To(gomega.Equal([]string{worker}), "worker pods deleted, from the pod watch")
		// The next spec's jobs must not land on this worker's Ray node while its pod terminates.
		gomega.Eventually(func() ([]corev1.Pod, error) {
			var pods corev1.PodList
			err := cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"ray.io/cluster": rc.Name, "ray.io/node-type": "worker"})
			return pods.Items, err
		}).WithContext(ctx).WithTimeout(timeout).Should(gomega.BeEmpty(), "the deleted worker pod gone")
	})

	ginkgo.It("with two workers up and one holding work, only ever removes the idle one", func(ctx context.Context) {
		before := len(history.deletedPods())
		var err error
		submit(ctx, "holds", "sleep 3600", 1)
		gomega.Eventually(jobStatus(ctx, "holds")).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.Equal(dashboard.JobStatusRunning))
		busy := driverPod(ctx, "holds")
		gomega.Expect(busy).NotTo(gomega.BeEmpty(), "the holding job runs on a worker")

		// The busy worker's only CPU is taken: the next job needs a second worker.
		submit(ctx, "quick", "echo quick", 1)
		gomega.Eventually(jobStatus(ctx, "quick")).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.Equal(dashboard.JobStatusSucceeded))
		idle := driverPod(ctx, "quick")
		gomega.Expect(idle).NotTo(gomega.BeEmpty())
		gomega.Expect(idle).NotTo(gomega.Equal(busy), "the second job ran on a second worker")

		// The busy worker shows under Active by its group, once a round has reported it.
		head := rayPods(ctx, ns, rc.Name, "head")[0]
		gomega.Eventually(func() (string, error) {
			return execIn(ctx, &head, head.Spec.Containers[0].Name, "ray", "status")
		}).WithContext(ctx).WithTimeout(time.Minute).Should(gomega.MatchRegexp(`(?s)Active:\n.* 1 small-group\n.*Idle:`), "ray status on the head")

		gomega.Eventually(history.deletedPods).WithContext(ctx).WithTimeout(autoscalerWait).
			Should(gomega.HaveLen(before+1), "a worker pod deleted once the second job's worker went idle")
		gomega.Expect(history.deletedPods()[before:]).To(gomega.Equal([]string{idle}), "the deleted worker is the idle one")
		// Two more idle timeouts (and rounds) pass: the busy worker stays.
		gomega.Consistently(history.deletedPods).WithContext(ctx).WithTimeout(2*autoscalerIdleTimeout+10*time.Second).WithPolling(time.Second).
			Should(gomega.HaveLen(before+1), "worker pods deleted while the remaining one holds a job")
		gomega.Expect(jobStatus(ctx, "holds")()).To(gomega.Equal(dashboard.JobStatusRunning), "the holding job, untouched")

		_, err = dash.StopJob(ctx, "holds")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(workerCount(ctx)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.BeZero(), "workers once the holding job stopped")
		gomega.Expect(history.deletedPods()[before:]).To(gomega.Equal([]string{idle, busy}), "worker pods deleted, in order")
	})

	ginkgo.It("follows Ray's autoscaling walkthrough: detached actors needing a CPU each scale the group up, and removing them scales it down", func(ctx context.Context) {
		// The walkthrough runs the sample's scripts with `kubectl exec` in the head; here they run
		// as Ray jobs on the head (no entrypoint resources), which is the same driver on the same node.
		run := func(id, script, actor string) {
			ginkgo.GinkgoHelper()
			submit(ctx, id, "python /home/ray/samples/"+script+" "+actor, 0)
			gomega.Eventually(jobStatus(ctx, id)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.Equal(dashboard.JobStatusSucceeded), "job %s", id)
		}
		run("create-actor1", "detached_actor.py", "actor1")
		gomega.Eventually(workerCount(ctx)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.Equal(1), "workers for one 1-CPU actor")
		run("create-actor2", "detached_actor.py", "actor2")
		gomega.Eventually(workerCount(ctx)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.Equal(2), "workers for two 1-CPU actors")
		gomega.Eventually(clusterUp(ctx, ns, rc.Name, 2)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.Succeed(), "both workers Ready and alive in Ray")

		run("kill-actor1", "terminate_detached_actor.py", "actor1")
		gomega.Eventually(workerCount(ctx)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.Equal(1), "workers once one actor is gone")
		run("kill-actor2", "terminate_detached_actor.py", "actor2")
		gomega.Eventually(workerCount(ctx)).WithContext(ctx).WithTimeout(autoscalerWait).Should(gomega.BeZero(), "workers once both actors are gone")
	})

	ginkgo.It("kept the head pod Ready with no restarts throughout", func(ctx context.Context) {
		faults, err := history.faults()
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "the pod watch")
		gomega.Expect(faults).To(gomega.BeEmpty(), "head pod faults seen by the watch")
		heads := rayPods(ctx, ns, rc.Name, "head")
		gomega.Expect(heads).To(gomega.HaveLen(1))
		gomega.Expect(podReady(&heads[0])).To(gomega.BeTrue(), "head pod Ready")
		for _, cs := range heads[0].Status.ContainerStatuses {
			gomega.Expect(cs.RestartCount).To(gomega.BeZero(), "restarts of the head's %s container", cs.Name)
		}
		names := []string{}
		for _, c := range heads[0].Spec.Containers {
			names = append(names, c.Name)
		}
		gomega.Expect(names).To(gomega.ContainElement("autoscaler"), "the head pod runs the autoscaler sidecar")
	})
})
