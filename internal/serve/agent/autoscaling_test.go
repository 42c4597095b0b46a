package agent

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// fakeController stands in for the Serve controller's gRPC service: it
// records the metrics reports and streams no table (tests Apply one).
type fakeController struct {
	servev1.UnimplementedServeControllerServiceServer
	mu      sync.Mutex
	reports []*servev1.ReportMetricsRequest
}

func (f *fakeController) WatchRoutes(_ *servev1.WatchRoutesRequest, s grpc.ServerStreamingServer[servev1.RouteTable]) error {
	<-s.Context().Done()
	return nil
}

func (f *fakeController) ReportMetrics(_ context.Context, r *servev1.ReportMetricsRequest) (*servev1.ReportMetricsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, r)
	return &servev1.ReportMetricsResponse{}, nil
}

// latest returns the most recent sample of app/dep's routers and replicas
// in the reports so far.
func (f *fakeController) latest() (routers, replicas *servev1.LoadSample, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reports {
		for _, l := range r.Routers {
			if l.App == "app" && l.Deployment == "dep" && len(l.Samples) > 0 {
				routers = l.Samples[len(l.Samples)-1]
			}
		}
		for _, l := range r.Replicas {
			if l.App == "app" && l.Deployment == "dep" && len(l.Samples) > 0 {
				replicas = l.Samples[len(l.Samples)-1]
			}
		}
	}
	return routers, replicas, len(f.reports)
}

func serveFakeController(t *testing.T) (*fakeController, *grpc.ClientConn) {
	t.Helper()
	fc := &fakeController{}
	g := grpc.NewServer()
	servev1.RegisterServeControllerServiceServer(g, fc)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return fc, conn
}

func autoscaledTable(interval time.Duration, replicas ...*servev1.Replica) *servev1.RouteTable {
	return &servev1.RouteTable{
		ServeRunning: true, ProxyLocation: "EveryNode", Http: &servev1.HTTPOptions{Host: "127.0.0.1"},
		Routes: []*servev1.Route{{RoutePrefix: "/api", App: "app", Ingress: "dep"}},
		Deployments: []*servev1.Deployment{{App: "app", Name: "dep", Ingress: true, MaxOngoingRequests: 5, MaxQueuedRequests: -1,
			Replicas: replicas, AutoscalingMetricsIntervalMs: interval.Milliseconds()}},
	}
}

// A node reports, per autoscaled deployment, its routers' calls in flight
// and its replicas' calls processing.
func TestLoadReportsCarryRouterAndReplicaLoad(t *testing.T) {
	fc, conn := serveFakeController(t)
	a, dep, _, base, _ := startAgentWith(t, func(o *Options) {
		o.Conn = conn
		o.LoadSamplePeriod = 20 * time.Millisecond
	})
	a.Apply(autoscaledTable(50*time.Millisecond, &servev1.Replica{ReplicaId: testReplica, NodeId: "n1"}))
	done := make(chan int, 1)
	go func() { done <- call(t, "GET", base+"/api/block") }()
	<-dep.blocked
	g := gomega.NewWithT(t)
	g.Eventually(func() []float64 {
		r, p, _ := fc.latest()
		return []float64{r.GetOngoing(), r.GetQueued(), p.GetOngoing()}
	}).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).Should(gomega.Equal([]float64{1, 0, 1}), "router ongoing, queued, replica ongoing")
	close(dep.release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("the blocked call = %d", code)
	}
	g.Eventually(func() []float64 {
		r, p, _ := fc.latest()
		return []float64{r.GetOngoing(), r.GetQueued(), p.GetOngoing()}
	}).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).Should(gomega.Equal([]float64{0, 0, 0}), "idle after the call")

	// A fixed-size deployment is not reported.
	a.Apply(autoscaledTable(0, &servev1.Replica{ReplicaId: testReplica, NodeId: "n1"}))
	_, _, before := fc.latest()
	g.Consistently(func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		for _, r := range fc.reports[before:] {
			if len(r.Routers) > 0 {
				return false
			}
		}
		return true
	}).WithTimeout(200*time.Millisecond).WithPolling(20*time.Millisecond).Should(gomega.BeTrue(), "reports for a deployment that does not autoscale")
}

// Calls waiting for a deployment with no replica are reported at once, not
// after metrics_interval_s.
func TestQueuedCallsForADeploymentWithoutReplicasAreReportedAtOnce(t *testing.T) {
	fc, conn := serveFakeController(t)
	a, _, _, base, _ := startAgentWith(t, func(o *Options) {
		o.Conn = conn
		o.LoadSamplePeriod = 20 * time.Millisecond
	})
	// An interval no test waits for: only the cold start can trigger the report.
	a.Apply(autoscaledTable(time.Hour))
	g := gomega.NewWithT(t)
	// The first report goes at once; after it only the cold start can send another.
	g.Eventually(func() int { _, _, n := fc.latest(); return n }).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).
		Should(gomega.Equal(1), "the first report")
	if r, _, _ := fc.latest(); r.GetQueued() != 0 {
		t.Fatalf("queued %v before any call", r.GetQueued())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/ok", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	g.Eventually(func() float64 {
		r, _, _ := fc.latest()
		return r.GetQueued()
	}).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).Should(gomega.Equal(1.0), "queued calls reported")
}
