package dashboardresolver

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

var env *testenv.Env

func TestDashboardResolver(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Dashboard resolver suite")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
})

// SecretToken reads the token of token-auth clusters from their Secret in a real API server.
var _ = Describe("SecretToken", func() {
	var (
		ctx   context.Context
		ns    string
		token func(context.Context, *rayv1.RayCluster) (string, error)
	)
	rc := func(name string, auth *rayv1.AuthOptions) *rayv1.RayCluster {
		return &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: rayv1.RayClusterSpec{AuthOptions: auth}}
	}
	tokenMode := &rayv1.AuthOptions{Mode: rayv1.AuthModeToken}

	BeforeEach(func() {
		ctx = context.Background()
		var err error
		ns, err = testenv.CreateNamespace(ctx, env.Client, "tok-")
		Expect(err).NotTo(HaveOccurred())
		Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: ns},
			Data: map[string][]byte{"auth_token": []byte("s3cret")}})).To(Succeed())
		token = SecretToken(env.Client)
	})

	It("reads the Secret's auth_token under token auth", func() {
		Expect(token(ctx, rc("rc", tokenMode))).To(Equal("s3cret"))
	})
	It("reads no Secret without auth", func() {
		Expect(token(ctx, rc("rc", nil))).To(BeEmpty())
	})
	It("reads no Secret under Kubernetes token auth", func() {
		k8sAuth := &rayv1.AuthOptions{Mode: rayv1.AuthModeToken, EnableK8sTokenAuth: ptr.To(true)}
		Expect(token(ctx, rc("other", k8sAuth))).To(BeEmpty())
	})
	It("names the missing Secret", func() {
		_, err := token(ctx, rc("missing", tokenMode))
		Expect(err).To(MatchError(ContainSubstring("Secret missing")))
	})
})
