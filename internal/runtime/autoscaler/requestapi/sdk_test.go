package requestapi_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rayk8s/rayk8s/internal/runtime/node"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// python is the system interpreter the image's SDK targets.
const python = "/usr/bin/python3"

// TestPythonSDKAgainstHead calls ray.autoscaler.sdk.request_resources from the image's Python
// package against a real head started in-process and reads the standing requests back from the
// head's control service, as the autoscaler does.
func TestPythonSDKAgainstHead(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s: %v (the Python SDK's tests need the system python3)", python, err)
	}
	n, err := node.Start(t.Context(), node.Config{Head: true, IncludeDashboard: true, TempDir: t.TempDir(),
		Resources: map[string]float64{"CPU": 1}, HeartbeatPeriod: 100 * time.Millisecond, FailureThreshold: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	conn, err := grpc.NewClient(n.GCSAddress(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	requested := func() []map[string]float64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		st, err := gcsv1.NewAutoscalerStateServiceClient(conn).GetClusterState(ctx, &gcsv1.GetClusterStateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		out := []map[string]float64{}
		for _, b := range st.Requested {
			out = append(out, b.GetResources())
		}
		return out
	}
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	call := func(args string, env ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), python, filepath.Join("testdata", "request.py"), args)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(repo, "python"), "PYTHONDONTWRITEBYTECODE=1",
			"RAY_ADDRESS=", "RAY_API_SERVER_ADDRESS=")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("request.py %s: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	byURL := "RAY_API_SERVER_ADDRESS=" + n.DashboardURL()

	if got := call(`{"num_cpus": 2, "bundles": [{"GPU": 1}]}`, byURL); got != "ok" {
		t.Fatalf("request_resources said %q", got)
	}
	if diff := cmp.Diff([]map[string]float64{{"CPU": 1}, {"CPU": 1}, {"GPU": 1}}, requested()); diff != "" {
		t.Errorf("standing requests (-want +got):\n%s", diff)
	}

	// Arguments Ray refuses are refused before any call, naming the argument.
	for args, want := range map[string]string{
		`{"num_cpus": 1.5}`:                 "TypeError: num_cpus should be of type int",
		`{"num_cpus": -1}`:                  "ValueError: num_cpus should not be negative",
		`{"bundles": {"CPU": 1}}`:           "TypeError: bundles should be of type list",
		`{"bundles": [{"CPU": 1}, 2]}`:      "TypeError: bundles[1] should be a dict",
		`{"bundles": [{"CPU": "x"}]}`:       "TypeError: bundles[0]['CPU'] should be a number",
		`{"bundles": [{"GPU": -2}]}`:        "ValueError: bundles[0]['GPU'] should not be negative",
		`{"num_cpus": 20000}`:               "ValueError: request_resources refused: num_cpus: 20000 is more than",
		`{"bundles": [{"CPU": 1}], "x": 1}`: "TypeError: request_resources() got an unexpected keyword argument 'x'",
	} {
		if got := call(args, byURL); !strings.HasPrefix(got, want) {
			t.Errorf("request_resources(%s) said %q, want it to start with %q", args, got, want)
		}
	}
	if diff := cmp.Diff([]map[string]float64{{"CPU": 1}, {"CPU": 1}, {"GPU": 1}}, requested()); diff != "" {
		t.Errorf("standing requests after refused calls (-want +got):\n%s", diff)
	}

	// No arguments withdraw the requests.
	if got := call(`{}`, "RAY_ADDRESS="+n.DashboardURL()); got != "ok" {
		t.Fatalf("withdrawing said %q", got)
	}
	if got := requested(); len(got) != 0 {
		t.Errorf("standing requests after withdrawing = %v", got)
	}
}
