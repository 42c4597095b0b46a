package operator

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url) //nolint:gosec // test URL built from a local listener
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return resp.StatusCode, string(b), err
}

// TestManagerServesAndShutsDown runs the real manager against envtest: it becomes healthy and ready,
// serves metrics, takes the leader Lease, and returns cleanly when its context ends.
func TestManagerServesAndShutsDown(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	}()

	// The same manager from flags and from a KubeRay config file; the leader Lease is released on
	// each clean shutdown, so the second run can take it.
	configPath := writeConfig(t, fmt.Sprintf("metricsAddr: %q\nprobeAddr: %q\nleaderElectionNamespace: default\n", freeAddr(t), freeAddr(t)))
	// Controller names are unique per process, so only the first manager runs the controllers.
	t.Run("flags", func(t *testing.T) {
		runManager(t, env, []string{"--metrics-addr=" + freeAddr(t), "--health-probe-bind-address=" + freeAddr(t),
			"--leader-election-namespace=default", "--graceful-shutdown-timeout=5s"}, Controllers()...)
	})
	t.Run("config", func(t *testing.T) {
		runManager(t, env, []string{"--config=" + configPath, "--graceful-shutdown-timeout=5s"})
	})
}

// runManager starts the manager with args and setups against env, checks probes, metrics and
// the Lease, and stops it.
func runManager(t *testing.T, env *testenv.Env, args []string, setups ...Setup) {
	opts, err := parse(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := NewManager(env.Config, NewScheme(), opts, setups...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()

	probes := "http://" + opts.ProbeAddr
	waitFor(t, "healthz and readyz to answer 200", func() error {
		for _, p := range []string{"/healthz", "/readyz"} {
			code, body, err := get(probes + p)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("%s: %d %s", p, code, body)
			}
		}
		return nil
	})
	code, body, err := get("http://" + opts.MetricsAddr + "/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "rest_client_requests_total") {
		t.Errorf("metrics: code %d err %v; body lacks client-go metrics", code, err)
	}
	waitFor(t, "the leader Lease", func() error {
		var lease coordinationv1.Lease
		return env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: LeaderElectionID}, &lease)
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("manager returned %v on shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("manager did not stop within 30s of its context ending")
	}
}

func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for i := 0; i < 300; i++ {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waiting for %s: %v", what, err)
}
