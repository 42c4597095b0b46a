// Package e2e is the end-to-end suite: it drives a real cluster with the operator installed by
// Helm (charts/rayk8s-operator) and checks what users see. It runs against any cluster:
//
//	E2E_KUBECONFIG=/path/to/kubeconfig go test ./test/e2e -count=1 -timeout 45m -v
//
// `make e2e` (hack/e2e.sh) brings up the local cluster, installs the chart and runs it;
// hack/e2e-kind.sh does the same on kind. Without E2E_KUBECONFIG the suite skips, so
// `go test ./...` stays a unit-test run while the suite is still compiled, vetted and linted.
//
// Other settings: E2E_SAMPLE (the RayCluster manifest, default
// config/samples/ray-cluster.sample.yaml), E2E_TIMEOUT (how long to wait for any one state,
// default 5m).
package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// EnvKubeconfig names the cluster the suite runs against.
const EnvKubeconfig = "E2E_KUBECONFIG"

var (
	restCfg *rest.Config
	k8s     kubernetes.Interface
	cl      client.Client
	timeout = 5 * time.Minute
)

func TestE2E(t *testing.T) {
	kc := os.Getenv(EnvKubeconfig)
	if kc == "" {
		t.Skipf("end-to-end suite: set %s to the kubeconfig of a cluster with the operator installed by Helm (`make e2e` does it all)", EnvKubeconfig)
	}
	if v := os.Getenv("E2E_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("E2E_TIMEOUT=%q: want a positive duration such as 5m", v)
		}
		timeout = d
	}
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "rayk8s e2e")
}

var _ = ginkgo.BeforeSuite(func() {
	var err error
	restCfg, err = clientcmd.BuildConfigFromFlags("", os.Getenv(EnvKubeconfig))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	restCfg.QPS, restCfg.Burst = 50, 100
	k8s, err = kubernetes.NewForConfig(restCfg)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	scheme := runtime.NewScheme()
	gomega.Expect(clientgoscheme.AddToScheme(scheme)).To(gomega.Succeed())
	gomega.Expect(rayv1.AddToScheme(scheme)).To(gomega.Succeed())
	cl, err = client.New(restCfg, client.Options{Scheme: scheme})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.SetDefaultEventuallyTimeout(timeout)
	gomega.SetDefaultEventuallyPollingInterval(time.Second)
	// Specs pass their context to Eventually; without this, a context means no timeout at all.
	gomega.EnforceDefaultTimeoutsWhenUsingContexts()
})
