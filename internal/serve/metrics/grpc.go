package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// grpcVecs are the gRPC proxy's metrics, under Ray Serve's names and labels
// (https://docs.ray.io/en/latest/serve/monitoring.html): route is the
// application, as in Ray's gRPC proxy; method the full RPC name; status and
// error codes Python's grpc.StatusCode names ("StatusCode.OK").
type grpcVecs struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	ongoing  prometheus.Gauge
}

func newGRPCVecs() grpcVecs {
	labels := []string{"application", "route", "method", "status_code"}
	return grpcVecs{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_num_grpc_requests_total",
			Help: "gRPC calls the proxy answered (labels: application, route, method, status_code).",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_num_grpc_error_requests_total",
			Help: "gRPC calls the proxy answered with a status other than OK (labels: application, route, method, error_code).",
		}, []string{"application", "route", "method", "error_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ray_serve_grpc_request_latency_ms",
			Help:    "End-to-end latency of gRPC calls at the proxy in milliseconds (labels: application, route, method, status_code).",
			Buckets: LatencyBucketsMS,
		}, labels),
		ongoing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ray_serve_num_ongoing_grpc_requests",
			Help: "gRPC calls the proxy is handling.",
		}),
	}
}

func (g grpcVecs) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.requests, g.errors, g.latency, g.ongoing}
}

// GRPCStarted counts a call the gRPC proxy is handling; call GRPCDone when
// it ends.
func (m *Metrics) GRPCStarted() {
	if m != nil {
		m.grpc.ongoing.Inc()
	}
}

// GRPCDone records a call the gRPC proxy answered with code. app is empty
// for calls that named no deployed application, method for methods nobody
// serves, so clients cannot grow the label sets.
func (m *Metrics) GRPCDone(app, method string, code codes.Code, start time.Time) {
	if m == nil {
		return
	}
	m.grpc.ongoing.Dec()
	c := GRPCStatus(code)
	m.grpc.requests.WithLabelValues(app, app, method, c).Inc()
	m.grpc.latency.WithLabelValues(app, app, method, c).Observe(m.sinceMS(start))
	if code != codes.OK {
		m.grpc.errors.WithLabelValues(app, app, method, c).Inc()
	}
}

// grpcStatusNames are Python's grpc.StatusCode member names, which Ray's
// labels carry; Go's codes.Code spells some differently (Canceled).
var grpcStatusNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

// GRPCStatus is the status label of code, as Python's str(grpc.StatusCode.X).
func GRPCStatus(code codes.Code) string {
	if n, ok := grpcStatusNames[code]; ok {
		return "StatusCode." + n
	}
	return "StatusCode.UNKNOWN"
}
