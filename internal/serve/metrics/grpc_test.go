package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestGRPCStatusNamesArePythons(t *testing.T) {
	for code, want := range map[codes.Code]string{
		codes.OK: "StatusCode.OK", codes.Canceled: "StatusCode.CANCELLED", codes.Unauthenticated: "StatusCode.UNAUTHENTICATED",
		codes.Code(99): "StatusCode.UNKNOWN",
	} {
		if got := GRPCStatus(code); got != want {
			t.Errorf("GRPCStatus(%v) = %q, want %q", code, got, want)
		}
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if _, ok := grpcStatusNames[c]; !ok {
			t.Errorf("no name for %v", c)
		}
	}
}

// A call's count, latency and (when not OK) error land in one series each,
// labelled with the application as route; the ongoing gauge returns to 0.
func TestGRPCCallsAreRecorded(t *testing.T) {
	var nilMetrics *Metrics
	nilMetrics.GRPCStarted()
	nilMetrics.GRPCDone("a", "/s/M", codes.OK, nilMetrics.Now())

	clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
	m := New(clk, Sources{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	start := m.Now()
	m.GRPCStarted()
	m.GRPCStarted()
	if got := testutil.ToFloat64(m.grpc.ongoing); got != 2 {
		t.Fatalf("ongoing = %v, want 2", got)
	}
	clk.SetTime(start.Add(30 * time.Millisecond))
	m.GRPCDone("app", "/pkg.Svc/Call", codes.OK, start)
	m.GRPCDone("app", "/pkg.Svc/Call", codes.ResourceExhausted, start)
	want := `
# HELP ray_serve_num_grpc_error_requests_total gRPC calls the proxy answered with a status other than OK (labels: application, route, method, error_code).
# TYPE ray_serve_num_grpc_error_requests_total counter
ray_serve_num_grpc_error_requests_total{application="app",error_code="StatusCode.RESOURCE_EXHAUSTED",method="/pkg.Svc/Call",route="app"} 1
# HELP ray_serve_num_grpc_requests_total gRPC calls the proxy answered (labels: application, route, method, status_code).
# TYPE ray_serve_num_grpc_requests_total counter
ray_serve_num_grpc_requests_total{application="app",method="/pkg.Svc/Call",route="app",status_code="StatusCode.OK"} 1
ray_serve_num_grpc_requests_total{application="app",method="/pkg.Svc/Call",route="app",status_code="StatusCode.RESOURCE_EXHAUSTED"} 1
# HELP ray_serve_num_ongoing_grpc_requests gRPC calls the proxy is handling.
# TYPE ray_serve_num_ongoing_grpc_requests gauge
ray_serve_num_ongoing_grpc_requests 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_serve_num_grpc_requests_total",
		"ray_serve_num_grpc_error_requests_total", "ray_serve_num_ongoing_grpc_requests"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.grpc.latency); n != 2 {
		t.Errorf("latency series = %d, want 2", n)
	}
}
