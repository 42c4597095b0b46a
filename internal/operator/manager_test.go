package operator

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/freeport"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

var env *testenv.Env

func TestManager(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Operator manager suite")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
})

func freeAddr() string {
	GinkgoHelper()
	port, err := freeport.Pick()
	Expect(err).NotTo(HaveOccurred())
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// response is what a GET returned.
type response struct {
	Code int
	Body string
}

func get(url string) (response, error) {
	resp, err := http.Get(url) //nolint:gosec // test URL built from a local listener
	if err != nil {
		return response{}, err
	}
	b, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return response{Code: resp.StatusCode, Body: string(b)}, err
}

// configFile writes a KubeRay operator Configuration with body and returns its path.
func configFile(body string) string {
	GinkgoHelper()
	p := filepath.Join(GinkgoT().TempDir(), "config.yaml")
	Expect(os.WriteFile(p, []byte("apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"+body), 0o600)).To(Succeed())
	return p
}

// The real manager against envtest: it becomes healthy and ready, serves metrics, takes the leader
// Lease, and returns cleanly when its context ends — configured by flags, and by a KubeRay config
// file. The leader Lease is released on each clean shutdown, so the second run can take it.
var _ = Describe("The manager", Ordered, func() {
	// Controller names are unique per process, so only the first manager runs the controllers.
	withControllers := true
	DescribeTable("serves probes and metrics, takes the leader Lease and shuts down cleanly",
		func(args func() []string) {
			opts, err := parse(args()...)
			Expect(err).NotTo(HaveOccurred())
			var setups []Setup
			if withControllers {
				setups = Controllers()
				withControllers = false
			}
			mgr, err := NewManager(env.Config, NewScheme(), opts, setups...)
			Expect(err).NotTo(HaveOccurred())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- mgr.Start(ctx) }()

			probes := "http://" + opts.ProbeAddr
			Eventually(func(g Gomega) {
				for _, p := range []string{"/healthz", "/readyz"} {
					r, err := get(probes + p)
					g.Expect(err).NotTo(HaveOccurred(), p)
					g.Expect(r.Code).To(Equal(http.StatusOK), "%s: %s", p, r.Body)
				}
			}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "healthz and readyz to answer 200")
			// The metrics server is a runnable of its own: ready probes do not say it listens yet.
			Eventually(func() (response, error) { return get("http://" + opts.MetricsAddr + "/metrics") }).
				WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(And(
				HaveField("Code", http.StatusOK),
				HaveField("Body", ContainSubstring("rest_client_requests_total")),
				HaveField("Body", ContainSubstring("rest_client_rate_limiter_duration_seconds"))), "metrics lack client-go metrics")
			Eventually(func() error {
				var lease coordinationv1.Lease
				return env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: LeaderElectionID}, &lease)
			}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "the leader Lease")

			cancel()
			var stopErr error
			Eventually(done).WithTimeout(30*time.Second).Should(Receive(&stopErr), "manager did not stop within 30s of its context ending")
			Expect(stopErr).NotTo(HaveOccurred(), "manager returned an error on shutdown")
		},
		Entry("from flags", func() []string {
			// The gate adds the RayCronJob controller to the controllers this first manager runs.
			return []string{"--metrics-addr=" + freeAddr(), "--health-probe-bind-address=" + freeAddr(),
				"--leader-election-namespace=default", "--graceful-shutdown-timeout=5s", "--feature-gates=RayCronJob=true"}
		}),
		Entry("from a --config file", func() []string {
			path := configFile(fmt.Sprintf("metricsAddr: %q\nprobeAddr: %q\nleaderElectionNamespace: default\n", freeAddr(), freeAddr()))
			return []string{"--config=" + path, "--graceful-shutdown-timeout=5s"}
		}),
	)
})

// The cache holds only the operator's objects: a pod without ray.io/cluster, and a Secret or a
// Service without the created-by label, stay out of it, and what it holds has no managed fields.
var _ = Describe("The manager's cache", func() {
	It("holds only the operator's pods, Secrets and Services, without managed fields", func(ctx context.Context) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cache-"}}
		Expect(env.Client.Create(ctx, ns)).To(Succeed())
		pod := func(name string, labels map[string]string) *corev1.Pod {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name, Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
		}
		secret := func(name string, labels map[string]string) *corev1.Secret {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name, Labels: labels}}
		}
		service := func(name string, labels map[string]string) *corev1.Service {
			return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name, Labels: labels},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		}
		ours := map[string]string{rayv1.KubernetesCreatedByLabelKey: rayv1.ComponentName}
		for _, o := range []client.Object{
			pod("ray", map[string]string{rayv1.RayClusterLabelKey: "c"}),
			pod("other", map[string]string{"app": "web"}),
			secret("ours", ours),
			secret("users", nil),
			service("ours", ours),
			service("users", map[string]string{"app": "web"}),
		} {
			Expect(env.Client.Create(ctx, o)).To(Succeed(), "creating %s", o.GetName())
		}

		opts, err := parse("--metrics-addr=0", "--health-probe-bind-address=0", "--enable-leader-election=false", "--watch-namespace="+ns.Name)
		Expect(err).NotTo(HaveOccurred())
		mgr, err := NewManager(env.Config, NewScheme(), opts)
		Expect(err).NotTo(HaveOccurred())
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- mgr.Start(mctx) }()
		DeferCleanup(func() { cancel(); Eventually(done).WithTimeout(30 * time.Second).Should(Receive(BeNil())) })

		var pods corev1.PodList
		// The cache answers once the manager started it.
		Eventually(func() error { return mgr.GetCache().List(ctx, &pods, client.InNamespace(ns.Name)) }).Should(Succeed())
		Expect(pods.Items).To(HaveLen(1), "cached pods")
		Expect(pods.Items[0].Name).To(Equal("ray"))
		Expect(pods.Items[0].ManagedFields).To(BeEmpty(), "managed fields of a cached pod")
		var secrets metav1.PartialObjectMetadataList
		secrets.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
		Expect(mgr.GetCache().List(ctx, &secrets, client.InNamespace(ns.Name))).To(Succeed())
		Expect(secrets.Items).To(HaveLen(1), "cached Secrets")
		Expect(secrets.Items[0].Name).To(Equal("ours"))
		var services corev1.ServiceList
		Expect(mgr.GetCache().List(ctx, &services, client.InNamespace(ns.Name))).To(Succeed())
		Expect(services.Items).To(ConsistOf(HaveField("Name", "ours")), "cached Services")
		// What the cache leaves out is still readable directly.
		var users corev1.Secret
		Expect(mgr.GetAPIReader().Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "users"}, &users)).To(Succeed())
	})
})
