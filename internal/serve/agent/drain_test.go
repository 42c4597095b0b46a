package agent

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/gomega"
	clocktesting "k8s.io/utils/clock/testing"
)

// A draining proxy keeps serving, but fails health and sends kept-alive
// clients away (Connection: close) until DrainPeriod passes; then it stops.
func TestDrainServesUntilThePeriodEndsAndClosesKeptAliveConnections(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(2000, 0))
	a, _, _, base, _ := startAgentWith(t, func(o *Options) {
		o.Clock = clk
		o.DrainPeriod = 5 * time.Second
	})
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	for range 3 {
		if r := get("/api/ok"); r.StatusCode != 200 || r.Close {
			t.Fatalf("before the drain: status %d, close %v", r.StatusCode, r.Close)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections before the drain, want 1 kept alive", n)
	}

	drained := make(chan struct{})
	go func() { a.Drain(); close(drained) }()
	g := gomega.NewWithT(t)
	g.Eventually(func() int { return get("/-/healthz").StatusCode }).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).
		Should(gomega.Equal(http.StatusServiceUnavailable), "health while draining")
	// Still served, but every response ends its connection.
	before := dials.Load()
	for range 3 {
		if r := get("/api/ok"); r.StatusCode != 200 || !r.Close {
			t.Fatalf("while draining: status %d, close %v; want 200 and Connection: close", r.StatusCode, r.Close)
		}
	}
	if n := dials.Load() - before; n != 3 {
		t.Fatalf("%d new connections for 3 requests while draining, want 3 (none kept alive)", n)
	}
	select {
	case <-drained:
		t.Fatal("Drain returned before DrainPeriod passed")
	default:
	}

	// The drain waits on the fake clock; step it only once the wait is armed.
	g.Eventually(clk.HasWaiters).WithTimeout(10*time.Second).WithPolling(time.Millisecond).Should(gomega.BeTrue(), "the drain waiting for DrainPeriod")
	clk.Step(5 * time.Second)
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after DrainPeriod")
	}
	if addr := a.ProxyAddress(); addr != "" {
		t.Fatalf("proxy still listening on %s after the drain", addr)
	}
	if _, err := client.Get(base + "/api/ok"); err == nil {
		t.Fatal("the proxy accepted a request after the drain")
	}
	a.Drain() // idempotent
}
