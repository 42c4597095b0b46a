package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rayk8s/rayk8s/internal/serve/builtin"
	"github.com/rayk8s/rayk8s/internal/serve/grpcproxy"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/proto/serve/rayapi"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// startGRPCAgent runs builtin echo, stream and sleep replicas (sleep: 30s,
// max_ongoing_requests 1, no queue) behind an agent whose table enables
// the gRPC proxy with a 1s request timeout.
func startGRPCAgent(t *testing.T, change ...func(*Options)) (*Agent, *grpc.ClientConn) {
	t.Helper()
	dir, err := os.MkdirTemp("", "rsg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	table := &servev1.RouteTable{
		ServeRunning:  true,
		ProxyLocation: "EveryNode",
		Http:          &servev1.HTTPOptions{Host: "127.0.0.1"},
		Grpc:          &servev1.GRPCOptions{ServicerFunctions: []string{"user_pb2_grpc.add_UserServicer_to_server"}, RequestTimeoutMs: 1000},
	}
	for _, b := range []struct {
		name, args string
		maxOngoing int32
	}{{"echo", "", 5}, {"stream", "", 5}, {"sleep", `{"sleep_s": 30}`, 1}} {
		id := b.name + "#" + b.name + "#r1"
		dep, err := builtin.New(b.name, builtin.Context{ReplicaID: id, App: b.name, Deployment: b.name, Args: json.RawMessage(b.args)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("unix", replica.SocketPath(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		srv := replica.NewServer(dep, replica.Options{ReplicaID: id, MaxOngoingRequests: int(b.maxOngoing), Logger: logr.Discard()})
		go func() { _ = srv.Serve(ctx, l) }()
		maxQueued := int32(-1)
		if b.name == "sleep" {
			maxQueued = 0
		}
		table.Routes = append(table.Routes, &servev1.Route{RoutePrefix: "/" + b.name, App: b.name, Ingress: b.name})
		table.Deployments = append(table.Deployments, &servev1.Deployment{App: b.name, Name: b.name, Ingress: true, MaxOngoingRequests: b.maxOngoing,
			MaxQueuedRequests: maxQueued, Replicas: []*servev1.Replica{{ReplicaId: id, NodeId: "n1"}}})
	}
	opts := Options{NodeID: "n1", IsHead: true, SocketDir: dir, Logger: logr.Discard()}
	for _, c := range change {
		c(&opts)
	}
	a := New(opts)
	agentCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(agentCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	a.Apply(table)
	addr := a.GRPCProxyAddress()
	if addr == "" {
		t.Fatal("the gRPC proxy did not start")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(grpcproxy.Codec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return a, conn
}

func withMD(kv ...string) context.Context {
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...))
}

func TestGRPCProxyUnaryAndRequestID(t *testing.T) {
	_, conn := startGRPCAgent(t)
	in, out := []byte("\x0a\x03Ada"), []byte(nil)
	var trailer metadata.MD
	err := conn.Invoke(withMD("application", "echo", "request_id", "req-7"), "/user.User/AnyMethod", &in, &out, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	if string(out) != string(in) {
		t.Fatalf("echo answered %q, want the request's bytes %q", out, in)
	}
	if got := trailer.Get("request_id"); len(got) != 1 || got[0] != "req-7" {
		t.Fatalf("trailing request_id = %v, want [req-7]", got)
	}
	// Without one, the proxy makes a request ID up and still returns it.
	trailer = nil
	if err := conn.Invoke(withMD("application", "echo"), "/user.User/AnyMethod", &in, &out, grpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	}
	if got := trailer.Get("request_id"); len(got) != 1 || len(got[0]) != 36 {
		t.Fatalf("trailing request_id = %v, want a generated UUID", got)
	}
}

func TestGRPCProxyServerStreaming(t *testing.T) {
	_, conn := startGRPCAgent(t)
	desc := &grpc.StreamDesc{ServerStreams: true}
	st, err := conn.NewStream(withMD("application", "stream"), desc, "/user.User/Tokens")
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("chunks=3&interval_s=0&chunk_size=32")
	if err := st.SendMsg(&req); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		var m []byte
		err := st.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		got = append(got, string(m))
	}
	if len(got) != 3 {
		t.Fatalf("got %d messages %q, want 3", len(got), got)
	}
	for i, m := range got {
		if len(m) != 32 || !strings.HasPrefix(m, string(rune('0'+i))+" ") {
			t.Errorf("message %d = %q, want chunk %d of 32 bytes", i, m, i)
		}
	}
}

func TestGRPCProxyClientCancelStopsTheReplica(t *testing.T) {
	_, conn := startGRPCAgent(t)
	ctx, cancel := context.WithCancel(withMD("application", "stream"))
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/user.User/Tokens")
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("chunks=1000&interval_s=0.05&chunk_size=16")
	_ = st.SendMsg(&req)
	_ = st.CloseSend()
	var m []byte
	if err := st.RecvMsg(&m); err != nil {
		t.Fatal(err)
	}
	cancel()
	stats := func() (cancelled int) {
		in, out := []byte("stats=1"), []byte(nil)
		if err := conn.Invoke(withMD("application", "stream"), "/user.User/Stats", &in, &out); err != nil {
			t.Fatal(err)
		}
		var s struct{ Cancelled int }
		_ = json.Unmarshal(out, &s)
		return s.Cancelled
	}
	gomega.NewWithT(t).Eventually(stats).WithTimeout(10*time.Second).WithPolling(20*time.Millisecond).
		Should(gomega.Equal(1), "the replica's stream cancelled after the client cancelled")
}

func TestGRPCProxyMetadataErrors(t *testing.T) {
	_, conn := startGRPCAgent(t)
	in, out := []byte("x"), []byte(nil)
	for _, c := range []struct {
		name     string
		ctx      context.Context
		method   string
		code     codes.Code
		mentions []string
	}{
		{"missing application with several", context.Background(), "/user.User/M", codes.NotFound, []string{"application", "echo, sleep, stream"}},
		{"unknown application", withMD("application", "nope"), "/user.User/M", codes.NotFound, []string{"'nope'"}},
		{"unknown built-in method", context.Background(), "/ray.serve.RayServeAPIService/Nope", codes.Unimplemented, []string{"Nope"}},
		{"malformed method", context.Background(), "/nomethod", codes.Unimplemented, []string{"/nomethod"}},
	} {
		err := conn.Invoke(c.ctx, c.method, &in, &out)
		s, _ := status.FromError(err)
		if s.Code() != c.code {
			t.Errorf("%s: code %s (%v), want %s", c.name, s.Code(), err, c.code)
			continue
		}
		for _, m := range c.mentions {
			if !strings.Contains(s.Message(), m) {
				t.Errorf("%s: message %q does not mention %q", c.name, s.Message(), m)
			}
		}
	}
}

func TestGRPCProxyRayServeAPIService(t *testing.T) {
	a, conn := startGRPCAgent(t)
	var apps rayapi.ListApplicationsResponse
	if err := conn.Invoke(context.Background(), "/ray.serve.RayServeAPIService/ListApplications", &rayapi.ListApplicationsRequest{}, &apps); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(apps.ApplicationNames, ","); got != "echo,sleep,stream" {
		t.Fatalf("ListApplications = %s, want echo,sleep,stream", got)
	}
	var h rayapi.HealthzResponse
	if err := conn.Invoke(context.Background(), "/ray.serve.RayServeAPIService/Healthz", &rayapi.HealthzRequest{}, &h); err != nil || h.Message != "success" {
		t.Fatalf("Healthz = %q, %v; want success", h.Message, err)
	}
	// Generated clients (the standard proto codec) work as well.
	std, err := grpc.NewClient(a.GRPCProxyAddress(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	got, err := rayapi.NewRayServeAPIServiceClient(std).Healthz(context.Background(), &rayapi.HealthzRequest{})
	if err != nil || got.Message != "success" {
		t.Fatalf("generated Healthz = %v, %v", got, err)
	}
}

func TestGRPCProxyTimeoutAndBackPressure(t *testing.T) {
	a, conn := startGRPCAgent(t)
	first := make(chan error, 1)
	go func() {
		in, out := []byte("x"), []byte(nil)
		first <- conn.Invoke(withMD("application", "sleep"), "/user.User/Sleep", &in, &out)
	}()
	// Once the only slot is taken, a second call finds no room and no queue.
	gomega.NewWithT(t).Eventually(func() bool {
		for _, s := range a.Handles().RouterStats() {
			if s.App == "sleep" && s.Ongoing == 1 {
				return true
			}
		}
		return false
	}).WithTimeout(10*time.Second).WithPolling(5*time.Millisecond).Should(gomega.BeTrue(), "the first sleep call to reach the replica")
	in, out := []byte("x"), []byte(nil)
	err := conn.Invoke(withMD("application", "sleep"), "/user.User/Sleep", &in, &out)
	if s, _ := status.FromError(err); s.Code() != codes.ResourceExhausted {
		t.Fatalf("second call: %v, want RESOURCE_EXHAUSTED", err)
	}
	// The sleeper takes 30s; request_timeout_s is 1s.
	err = <-first
	if s, _ := status.FromError(err); s.Code() != codes.DeadlineExceeded || !strings.Contains(s.Message(), "timed out after 1s") {
		t.Fatalf("first call: %v, want DEADLINE_EXCEEDED after 1s", err)
	}
}

// Draining, the proxy fails Healthz but still serves calls until the drain
// period ends; then it stops.
func TestGRPCProxyDrain(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(2000, 0))
	a, conn := startGRPCAgent(t, func(o *Options) { o.Clock, o.DrainPeriod = clk, 5*time.Second })
	drained := make(chan struct{})
	go func() { a.Drain(); close(drained) }()
	gomega.NewWithT(t).Eventually(clk.HasWaiters).WithTimeout(10*time.Second).WithPolling(time.Millisecond).
		Should(gomega.BeTrue(), "the drain to wait on the clock")
	var h rayapi.HealthzResponse
	err := conn.Invoke(context.Background(), "/ray.serve.RayServeAPIService/Healthz", &rayapi.HealthzRequest{}, &h)
	if s, _ := status.FromError(err); s.Code() != codes.Unavailable || s.Message() != "This node is being drained." {
		t.Fatalf("Healthz while draining: %v, want UNAVAILABLE naming the drain", err)
	}
	in, out := []byte("still"), []byte(nil)
	if err := conn.Invoke(withMD("application", "echo"), "/user.User/M", &in, &out); err != nil || string(out) != "still" {
		t.Fatalf("call while draining: %q, %v; want it served", out, err)
	}
	clk.Step(5 * time.Second)
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after DrainPeriod")
	}
	if addr := a.GRPCProxyAddress(); addr != "" {
		t.Fatalf("gRPC proxy still listening on %s after the drain", addr)
	}
}
