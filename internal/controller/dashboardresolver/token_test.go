package dashboardresolver

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// SecretToken reads the token of token-auth clusters from their Secret in a real API server.
func TestSecretToken(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()
	ns := testenv.NewNamespace(t, env.Client, "tok-")
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: ns},
		Data: map[string][]byte{"auth_token": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	token := SecretToken(env.Client)
	rc := func(name string, auth *rayv1.AuthOptions) *rayv1.RayCluster {
		return &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: rayv1.RayClusterSpec{AuthOptions: auth}}
	}
	tokenMode := &rayv1.AuthOptions{Mode: rayv1.AuthModeToken}

	if got, err := token(ctx, rc("rc", tokenMode)); err != nil || got != "s3cret" {
		t.Errorf("token auth: %q, %v; want the Secret's auth_token", got, err)
	}
	if got, err := token(ctx, rc("rc", nil)); err != nil || got != "" {
		t.Errorf("no auth: %q, %v; want no token and no Secret read", got, err)
	}
	k8sAuth := &rayv1.AuthOptions{Mode: rayv1.AuthModeToken, EnableK8sTokenAuth: ptr.To(true)}
	if got, err := token(ctx, rc("other", k8sAuth)); err != nil || got != "" {
		t.Errorf("Kubernetes token auth: %q, %v; want no Secret token", got, err)
	}
	_, err = token(ctx, rc("missing", tokenMode))
	if err == nil || !strings.Contains(err.Error(), "Secret missing") {
		t.Errorf("missing Secret: err = %v, want one naming Secret missing", err)
	}
}
