package reconcilekit_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// The toolkit's API-facing parts (apply, finalizers, index lookups, events) run against a real
// kube-apiserver and etcd, started once for the package.

var (
	env *testenv.Env
	k8s client.Client
)

func TestReconcileKit(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "reconcilekit")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
})

var _ = AfterSuite(func() {
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// newNamespace creates a namespace for one spec.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kit-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}
