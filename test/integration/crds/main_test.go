// Package crds tests the generated ray.io/v1 CRDs: schema compatibility with KubeRay (no API
// server needed), and, on a real kube-apiserver (envtest), that KubeRay's and our samples are
// stored without loss and that invalid specs are rejected with a message naming the field.
package crds

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// env is the API server of the Ginkgo suite; the schema tests run without it (and without the
// Kubernetes binaries) as plain tests.
var env *testenv.Env

func TestAPIServer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "CRDs on a real API server")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred(), "starting the API server")
	DeferCleanup(env.Stop)
})

// newNamespace creates a namespace with a generated name for one spec or case.
func newNamespace(ctx context.Context, c client.Client, prefix string) string {
	GinkgoHelper()
	ns, err := testenv.CreateNamespace(ctx, c, prefix+"-")
	Expect(err).NotTo(HaveOccurred())
	return ns
}

// strictClient rejects unknown and duplicate fields instead of silently dropping them.
func strictClient(c client.Client) client.Client {
	return client.WithFieldValidation(c, metav1.FieldValidationStrict)
}

// fromYAML decodes one YAML document into an unstructured object.
func fromYAML(doc string) *unstructured.Unstructured {
	GinkgoHelper()
	j, err := yaml.YAMLToJSON([]byte(doc))
	Expect(err).NotTo(HaveOccurred(), "converting YAML to JSON")
	u := &unstructured.Unstructured{}
	Expect(u.UnmarshalJSON(j)).To(Succeed(), "decoding object")
	return u
}
