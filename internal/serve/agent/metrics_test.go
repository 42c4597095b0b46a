package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// testDeployment answers by path: /ok 200 after the metrics clock moved
// 30ms, /missing the user's own 404, /fail a user exception, /block waits
// for release.
type testDeployment struct {
	clock   *clocktesting.FakePassiveClock
	blocked chan struct{}
	release chan struct{}
}

func (d *testDeployment) Handle(ctx context.Context, req *replica.Request) (*replica.Response, error) {
	switch strings.TrimPrefix(req.Meta.Path, req.Meta.RoutePrefix) {
	case "/ok":
		d.clock.SetTime(d.clock.Now().Add(30 * time.Millisecond))
		return &replica.Response{Status: 200, Body: []byte("ok")}, nil
	case "/missing":
		return &replica.Response{Status: 404, Body: []byte("no such fruit")}, nil
	case "/block":
		d.blocked <- struct{}{}
		select {
		case <-d.release:
		case <-ctx.Done():
		}
		return &replica.Response{Status: 200}, nil
	}
	return nil, errors.New("Traceback: boom")
}

func (d *testDeployment) Reconfigure(json.RawMessage) error { return nil }
func (d *testDeployment) CheckHealth(context.Context) error { return nil }

const testReplica = "app#dep#r1"

// startAgent runs an agent with one local replica of app/dep (ingress at
// /api) and its proxy, recording into the returned registry.
func startAgent(t *testing.T) (*Agent, *testDeployment, *prometheus.Registry, string, context.CancelFunc) {
	t.Helper()
	return startAgentWith(t, nil)
}

// startAgentWith is startAgent with changed Options.
func startAgentWith(t *testing.T, change func(*Options)) (*Agent, *testDeployment, *prometheus.Registry, string, context.CancelFunc) {
	t.Helper()
	dir, err := os.MkdirTemp("", "rsm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	clk := clocktesting.NewFakePassiveClock(time.Unix(1000, 0))
	dep := &testDeployment{clock: clk, blocked: make(chan struct{}, 1), release: make(chan struct{})}
	l, err := net.Listen("unix", replica.SocketPath(dir, testReplica))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		_ = replica.NewServer(dep, replica.Options{ReplicaID: testReplica, Logger: logr.Discard()}).Serve(ctx, l)
	}()

	var a *Agent
	m := metrics.New(clk, metrics.Sources{Routers: func() []metrics.RouterStat { return a.Handles().RouterStats() }})
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	opts := Options{NodeID: "n1", IsHead: true, SocketDir: dir, Metrics: m, Logger: logr.Discard()}
	if change != nil {
		change(&opts)
	}
	a = New(opts)
	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() { _ = a.Run(agentCtx); close(agentDone) }()
	stop := func() { stopAgent(); <-agentDone }
	t.Cleanup(stop)
	a.Apply(&servev1.RouteTable{
		ServeRunning:  true,
		ProxyLocation: "EveryNode",
		Http:          &servev1.HTTPOptions{Host: "127.0.0.1"},
		Routes:        []*servev1.Route{{RoutePrefix: "/api", App: "app", Ingress: "dep"}},
		Deployments: []*servev1.Deployment{{App: "app", Name: "dep", Ingress: true, MaxOngoingRequests: 5, MaxQueuedRequests: -1,
			Replicas: []*servev1.Replica{{ReplicaId: testReplica, NodeId: "n1"}}}},
	})
	addr := a.ProxyAddress()
	if addr == "" {
		t.Fatal("the proxy did not start")
	}
	return a, dep, reg, "http://" + addr, stop
}

func call(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// histogram returns the sample count and sum of the series of name whose
// labels include want.
func histogram(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				if !hasLabel(m, k, v) {
					continue series
				}
			}
			return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
		}
	}
	return 0, 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

func TestMetricsAfterRequestsThroughTheProxy(t *testing.T) {
	_, dep, reg, url, stop := startAgent(t)
	for range 3 {
		if code := call(t, "GET", url+"/api/ok"); code != 200 {
			t.Fatalf("/api/ok = %d", code)
		}
	}
	if code := call(t, "POST", url+"/api/fail"); code != 500 {
		t.Fatalf("/api/fail = %d", code)
	}
	if code := call(t, "GET", url+"/api/missing"); code != 404 {
		t.Fatalf("/api/missing = %d", code)
	}
	if code := call(t, "GET", url+"/nowhere/"+strings.Repeat("x", 10)); code != 404 {
		t.Fatalf("/nowhere = %d", code)
	}
	if code := call(t, "BREW", url+"/api/ok"); code != 200 {
		t.Fatalf("BREW /api/ok = %d", code)
	}
	if code := call(t, "GET", url+"/-/healthz"); code != 200 {
		t.Fatalf("/-/healthz = %d", code)
	}

	want := `
# HELP ray_serve_num_http_requests_total HTTP requests the proxy answered (labels: application, route, method, status_code).
# TYPE ray_serve_num_http_requests_total counter
ray_serve_num_http_requests_total{application="",method="GET",route="",status_code="404"} 1
ray_serve_num_http_requests_total{application="",method="GET",route="/-/healthz",status_code="200"} 1
ray_serve_num_http_requests_total{application="app",method="GET",route="/api",status_code="200"} 3
ray_serve_num_http_requests_total{application="app",method="GET",route="/api",status_code="404"} 1
ray_serve_num_http_requests_total{application="app",method="OTHER",route="/api",status_code="200"} 1
ray_serve_num_http_requests_total{application="app",method="POST",route="/api",status_code="500"} 1
# HELP ray_serve_num_http_error_requests_total HTTP requests the proxy answered with a status >= 400 (labels: application, route, method, error_code).
# TYPE ray_serve_num_http_error_requests_total counter
ray_serve_num_http_error_requests_total{application="",error_code="404",method="GET",route=""} 1
ray_serve_num_http_error_requests_total{application="app",error_code="404",method="GET",route="/api"} 1
ray_serve_num_http_error_requests_total{application="app",error_code="500",method="POST",route="/api"} 1
# HELP ray_serve_num_deployment_http_error_requests_total HTTP error requests by ingress deployment (labels: application, deployment, route, method, error_code).
# TYPE ray_serve_num_deployment_http_error_requests_total counter
ray_serve_num_deployment_http_error_requests_total{application="app",deployment="dep",error_code="404",method="GET",route="/api"} 1
ray_serve_num_deployment_http_error_requests_total{application="app",deployment="dep",error_code="500",method="POST",route="/api"} 1
# HELP ray_serve_num_router_requests_total Calls this node's routers received (labels: application, deployment, route).
# TYPE ray_serve_num_router_requests_total counter
ray_serve_num_router_requests_total{application="app",deployment="dep",route="/api"} 6
# HELP ray_serve_deployment_request_counter_total Calls this node's replicas processed (labels: application, deployment, replica, route).
# TYPE ray_serve_deployment_request_counter_total counter
ray_serve_deployment_request_counter_total{application="app",deployment="dep",replica="app#dep#r1",route="/api"} 6
# HELP ray_serve_deployment_error_counter_total Calls this node's replicas failed (labels: application, deployment, replica, route).
# TYPE ray_serve_deployment_error_counter_total counter
ray_serve_deployment_error_counter_total{application="app",deployment="dep",replica="app#dep#r1",route="/api"} 1
# HELP ray_serve_replica_processing_queries Calls this node's replicas are processing (labels: application, deployment, replica).
# TYPE ray_serve_replica_processing_queries gauge
ray_serve_replica_processing_queries{application="app",deployment="dep",replica="app#dep#r1"} 0
# HELP ray_serve_num_ongoing_http_requests HTTP requests the proxy is handling.
# TYPE ray_serve_num_ongoing_http_requests gauge
ray_serve_num_ongoing_http_requests 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ray_serve_num_http_requests_total", "ray_serve_num_http_error_requests_total",
		"ray_serve_num_deployment_http_error_requests_total", "ray_serve_num_router_requests_total",
		"ray_serve_deployment_request_counter_total", "ray_serve_deployment_error_counter_total",
		"ray_serve_replica_processing_queries", "ray_serve_num_ongoing_http_requests"); err != nil {
		t.Error(err)
	}

	// The fake clock moved 30ms inside each /ok call and stood still
	// otherwise: latencies are exact.
	if n, sum := histogram(t, reg, "ray_serve_http_request_latency_ms", map[string]string{"application": "app", "method": "GET", "status_code": "200"}); n != 3 || sum != 90 {
		t.Errorf("proxy latency of GET 200 = %d samples, %vms in all; want 3, 90ms", n, sum)
	}
	if n, sum := histogram(t, reg, "ray_serve_deployment_processing_latency_ms", map[string]string{"replica": testReplica}); n != 6 || sum != 120 {
		t.Errorf("replica processing latency = %d samples, %vms in all; want 6, 120ms", n, sum)
	}

	// A call in flight shows at the replica and in the router.
	done := make(chan int, 1)
	go func() { done <- call(t, "GET", url+"/api/block") }()
	<-dep.blocked
	want = `
# HELP ray_serve_replica_processing_queries Calls this node's replicas are processing (labels: application, deployment, replica).
# TYPE ray_serve_replica_processing_queries gauge
ray_serve_replica_processing_queries{application="app",deployment="dep",replica="app#dep#r1"} 1
# HELP ray_serve_num_ongoing_requests_at_replicas Calls this node's router has in flight at replicas (labels: application, deployment).
# TYPE ray_serve_num_ongoing_requests_at_replicas gauge
ray_serve_num_ongoing_requests_at_replicas{application="app",deployment="dep"} 1
# HELP ray_serve_deployment_queued_queries Calls waiting in this node's router for a replica (labels: application, deployment).
# TYPE ray_serve_deployment_queued_queries gauge
ray_serve_deployment_queued_queries{application="app",deployment="dep"} 0
# HELP ray_serve_num_ongoing_http_requests HTTP requests the proxy is handling.
# TYPE ray_serve_num_ongoing_http_requests gauge
ray_serve_num_ongoing_http_requests 1
`
	// The replica's ACCEPT reaches the agent after the handler started.
	// A miss is reported without stopping the test, so the blocked call is still released.
	softly := gomega.NewGomega(func(msg string, _ ...int) { t.Error(msg) })
	softly.Eventually(func() error {
		return testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_serve_replica_processing_queries",
			"ray_serve_num_ongoing_requests_at_replicas", "ray_serve_deployment_queued_queries", "ray_serve_num_ongoing_http_requests")
	}).WithTimeout(5*time.Second).WithPolling(10*time.Millisecond).Should(gomega.Succeed(), "the in-flight call's gauges")
	close(dep.release)
	if code := <-done; code != 200 {
		t.Errorf("/api/block = %d", code)
	}

	// Once the replica's connection is gone, so are its series: at once, or when the agent has
	// recorded the end of the call whose answer the client already has.
	stop()
	for _, name := range []string{"ray_serve_deployment_request_counter_total", "ray_serve_deployment_processing_latency_ms", "ray_serve_replica_processing_queries"} {
		softly.Eventually(func() (int, error) { return testutil.GatherAndCount(reg, name) }).
			WithTimeout(5*time.Second).WithPolling(10*time.Millisecond).Should(gomega.BeZero(), "%s after the replica left", name)
	}
}

// Control calls (health checks through the tunnel) are not requests.
func TestHealthChecksDoNotCount(t *testing.T) {
	a, _, reg, _, _ := startAgent(t)
	target, _ := a.Handles().Target(testReplica)
	for range 3 {
		s, err := a.Open(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wire.Call(context.Background(), s, wire.Meta{Kind: wire.KindHealth}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := testutil.GatherAndCount(reg, "ray_serve_deployment_request_counter_total"); n != 0 {
		t.Errorf("health checks made %d request series", n)
	}
}
