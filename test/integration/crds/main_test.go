// Package crds tests the generated ray.io/v1 CRDs: schema compatibility with KubeRay (no API
// server needed), and, on a real kube-apiserver (envtest), that KubeRay's and our samples are
// stored without loss and that invalid specs are rejected with a message naming the field.
package crds

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

var (
	envOnce sync.Once
	env     *testenv.Env
	errEnv  error
)

// TestMain stops the API server if a test started it. Tests that need one call apiServer, so the
// schema tests run without the Kubernetes binaries.
func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// apiServer starts envtest (kube-apiserver + etcd from bin/, with config/crd/bases installed) on
// first use and returns it.
func apiServer(t *testing.T) *testenv.Env {
	t.Helper()
	envOnce.Do(func() { env, errEnv = testenv.Start() })
	if errEnv != nil {
		t.Fatalf("starting the API server: %v", errEnv)
	}
	return env
}

// newNamespace creates a namespace with a generated name for one test or case.
func newNamespace(ctx context.Context, t *testing.T, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// strictClient rejects unknown and duplicate fields instead of silently dropping them.
func strictClient(c client.Client) client.Client {
	return client.WithFieldValidation(c, metav1.FieldValidationStrict)
}

// fromYAML decodes one YAML document into an unstructured object.
func fromYAML(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("converting YAML to JSON: %v", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("decoding object: %v", err)
	}
	return u
}
