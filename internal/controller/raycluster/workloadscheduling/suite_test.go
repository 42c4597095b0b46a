// Package workloadscheduling_test runs the RayCluster controller with the KubernetesWAS gate on
// against an API server that serves scheduling.k8s.io/v1alpha3 (GenericWorkload gate and runtime
// config on), which the shared test environment does not start.
package workloadscheduling_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/operator/features"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

var k8s client.Client

func TestWorkloadScheduling(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "RayCluster KubernetesWAS suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	root, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	scheme := testenv.NewScheme()
	Expect(schedulingv1alpha3.AddToScheme(scheme)).To(Succeed())
	te := &envtest.Environment{
		BinaryAssetsDirectory:    filepath.Join(root, "bin"),
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: 2 * time.Minute},
	}
	args := te.ControlPlane.GetAPIServer().Configure()
	args.Append("feature-gates", "GenericWorkload=true")
	args.Append("runtime-config", "scheduling.k8s.io/v1alpha3=true")
	cfg, err := te.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(te.Stop)
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	log.SetLogger(logr.Discard())
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	rc := raycluster.DefaultConfig()
	gates := features.New()
	Expect(gates.SetFromMap(map[string]bool{string(features.KubernetesWAS): true})).To(Succeed())
	rc.FeatureGates = gates
	r, err := raycluster.New(mgr.GetClient(), rc, reconcilekit.Deps{Recorder: mgr.GetEventRecorder(raycluster.ControllerName), Registerer: prometheus.NewRegistry()})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Expect(<-done).To(Succeed())
	})
})

func workloadOf(key types.NamespacedName) func() (*schedulingv1alpha3.Workload, error) {
	return func() (*schedulingv1alpha3.Workload, error) {
		var w schedulingv1alpha3.Workload
		err := k8s.Get(context.Background(), key, &w)
		return &w, err
	}
}

func podGroupOf(key types.NamespacedName) func() (*schedulingv1alpha3.PodGroup, error) {
	return func() (*schedulingv1alpha3.PodGroup, error) {
		var p schedulingv1alpha3.PodGroup
		err := k8s.Get(context.Background(), key, &p)
		return &p, err
	}
}

func podsOf(ns string) func() ([]corev1.Pod, error) {
	return func() ([]corev1.Pod, error) {
		var list corev1.PodList
		err := k8s.List(context.Background(), &list, client.InNamespace(ns))
		return list.Items, err
	}
}

func update(key types.NamespacedName, mutate func(*rayv1.RayCluster)) {
	GinkgoHelper()
	Eventually(func() error {
		var c rayv1.RayCluster
		if err := k8s.Get(context.Background(), key, &c); err != nil {
			return err
		}
		mutate(&c)
		return k8s.Update(context.Background(), &c)
	}).Should(Succeed())
}

func gangMinCount(policy schedulingv1alpha3.PodGroupSchedulingPolicy) int32 {
	if policy.Gang == nil {
		return -1
	}
	return policy.Gang.MinCount
}

var _ = Describe("RayCluster workload-aware scheduling (KubernetesWAS)", func() {
	ctx := context.Background()

	It("gang-schedules a cluster that asks for it with a Workload and a PodGroup, replaced when it is resized and removed when it stops asking", func() {
		ns, err := testenv.CreateNamespace(ctx, k8s, "was-")
		Expect(err).NotTo(HaveOccurred())
		c := builders.RayCluster(ns, "gang").WorkerGroup("small", 2, 0, 10).Obj()
		c.Labels = map[string]string{rayv1.RayGangSchedulingEnabledLabelKey: "true"}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		key := client.ObjectKeyFromObject(c)
		pgKey := types.NamespacedName{Namespace: ns, Name: "gang-cluster"}

		Eventually(workloadOf(key)).Should(And(BeControlledBy(c),
			HaveField("Labels", HaveKeyWithValue(rayv1.RayClusterLabelKey, "gang")),
			HaveField("Spec.ControllerRef", Equal(&schedulingv1alpha3.TypedLocalObjectReference{APIGroup: "ray.io", Kind: "RayCluster", Name: "gang"})),
			HaveField("Spec.PodGroupTemplates", HaveExactElements(And(HaveField("Name", "cluster"),
				WithTransform(func(t schedulingv1alpha3.PodGroupTemplate) int32 { return gangMinCount(t.SchedulingPolicy) }, Equal(int32(3))))))))
		Eventually(podGroupOf(pgKey)).Should(And(BeControlledBy(c),
			HaveField("Spec.WorkloadRef", Equal(&schedulingv1alpha3.WorkloadReference{WorkloadName: "gang", TemplateName: "cluster"})),
			WithTransform(func(p *schedulingv1alpha3.PodGroup) int32 { return gangMinCount(p.Spec.SchedulingPolicy) }, Equal(int32(3)))))
		Eventually(podsOf(ns)).Should(And(HaveLen(3), HaveEach(And(
			HaveField("Spec.SchedulerName", corev1.DefaultSchedulerName),
			HaveField("Spec.SchedulingGroup", Equal(&corev1.PodSchedulingGroup{PodGroupName: ptr.To("gang-cluster")}))))),
			"head and workers name the PodGroup")

		By("resizing the cluster replaces both")
		oldPG, err := podGroupOf(pgKey)()
		Expect(err).NotTo(HaveOccurred())
		update(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To(int32(3)) })
		Eventually(workloadOf(key)).Should(WithTransform(func(w *schedulingv1alpha3.Workload) int32 {
			return gangMinCount(w.Spec.PodGroupTemplates[0].SchedulingPolicy)
		}, Equal(int32(4))))
		Eventually(podGroupOf(pgKey)).Should(And(
			WithTransform(func(p *schedulingv1alpha3.PodGroup) int32 { return gangMinCount(p.Spec.SchedulingPolicy) }, Equal(int32(4))),
			WithTransform(func(p *schedulingv1alpha3.PodGroup) types.UID { return p.UID }, Not(Equal(oldPG.UID)))))

		By("removing the label removes both")
		update(key, func(c *rayv1.RayCluster) { delete(c.Labels, rayv1.RayGangSchedulingEnabledLabelKey) })
		Eventually(func() error { _, err := podGroupOf(pgKey)(); return err }).Should(WithTransform(isNotFound, BeTrue()))
		Eventually(func() error { _, err := workloadOf(key)(); return err }).Should(WithTransform(isNotFound, BeTrue()))
	})

	It("leaves clusters without the label, or with the autoscaler, alone", func() {
		ns, err := testenv.CreateNamespace(ctx, k8s, "was-")
		Expect(err).NotTo(HaveOccurred())
		plain := builders.RayCluster(ns, "plain").WorkerGroup("small", 1, 0, 10).Obj()
		Expect(k8s.Create(ctx, plain)).To(Succeed())
		scaled := builders.RayCluster(ns, "scaled").WorkerGroup("small", 1, 0, 10).Obj()
		scaled.Labels = map[string]string{rayv1.RayGangSchedulingEnabledLabelKey: "true"}
		scaled.Spec.EnableInTreeAutoscaling = ptr.To(true)
		Expect(k8s.Create(ctx, scaled)).To(Succeed())
		Eventually(podsOf(ns)).Should(HaveLen(4), "both clusters' pods")
		Expect(podsOf(ns)()).To(HaveEach(HaveField("Spec.SchedulingGroup", BeNil())))
		var wls schedulingv1alpha3.WorkloadList
		Expect(k8s.List(ctx, &wls, client.InNamespace(ns))).To(Succeed())
		Expect(wls.Items).To(BeEmpty())
	})
})

func isNotFound(err error) bool { return client.IgnoreNotFound(err) == nil && err != nil }
