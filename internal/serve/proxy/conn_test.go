package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// echo is a replica deployment for the connection loop's tests: /echo
// answers with what it received, /stream streams three chunks, /block
// waits until its call is cancelled and reports it, /empty answers 204,
// /big answers 10 KiB.
type echo struct {
	started, cancelled chan string
}

func (e *echo) Handle(ctx context.Context, req *replica.Request) (*replica.Response, error) {
	m := req.Meta
	switch m.Path {
	case "/block":
		e.started <- m.RequestID
		<-ctx.Done()
		e.cancelled <- m.RequestID
		return nil, ctx.Err()
	case "/empty":
		return &replica.Response{Status: http.StatusNoContent}, nil
	case "/big":
		return &replica.Response{Status: http.StatusOK, Body: []byte(strings.Repeat("x", 10<<10))}, nil
	}
	var host, foo string
	for _, kv := range m.Headers {
		switch kv[0] {
		case "host":
			host = kv[1]
		case "x-foo":
			foo = kv[1]
		}
	}
	body := fmt.Sprintf("%s %s?%s host=%s foo=%s body=%s", m.Method, m.Path, m.Query, host, foo, req.Body)
	return &replica.Response{Status: http.StatusOK, Headers: [][2]string{{"content-type", "text/plain"}}, Body: []byte(body)}, nil
}

// streamer is echo that streams its answers.
type streamer struct{ echo }

func (e *streamer) HandleStream(ctx context.Context, req *replica.Request, w *replica.ResponseStream) error {
	if req.Meta.Path != "/stream" {
		resp, err := e.Handle(ctx, req)
		if err != nil {
			return err
		}
		if err := w.WriteHead(resp.Status, resp.Headers); err != nil {
			return err
		}
		if len(resp.Body) == 0 {
			return nil
		}
		return w.Write(ctx, resp.Body)
	}
	for _, c := range []string{"a", "bb", "ccc"} {
		if err := w.Write(ctx, []byte(c)); err != nil {
			return err
		}
	}
	return nil
}

func (e *echo) Reconfigure(json.RawMessage) error { return nil }
func (e *echo) CheckHealth(context.Context) error { return nil }

// startLoop runs a Server (the loop, net/http behind it) in front of a
// real replica server over a Unix socket; it returns the proxy's address.
func startLoop(t testing.TB, dep replica.Deployment) (*Server, string) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "r.sock"))
	if err != nil {
		t.Fatal(err)
	}
	rs := replica.NewServer(dep, replica.Options{ReplicaID: "r1", MaxOngoingRequests: 100, Logger: logr.Discard()})
	go func() { _ = rs.Serve(t.Context(), l) }()
	rc, err := replica.Dial(t.Context(), l.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	m := metrics.New(nil, metrics.Sources{})
	h := handle.New(handle.Options{LocalNodeID: "n1", Dialer: socketDialer{rc}, Metrics: m, Logger: logr.Discard()})
	h.Update(&servev1.RouteTable{Deployments: []*servev1.Deployment{{
		App: "app", Name: "Echo", Ingress: true, MaxOngoingRequests: 100, MaxQueuedRequests: -1,
		Replicas: []*servev1.Replica{{ReplicaId: "r1", NodeId: "n1"}},
	}}})
	p := New(h, logr.Discard(), m)
	p.SetState(State{Routes: []Route{{Prefix: "/", App: "app"}}})
	srv := NewServer(p, time.Minute)
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(pl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, pl.Addr().String()
}

// rawConn is a client that writes bytes as given and reads answers.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	return dialRawOn(t, "tcp", addr)
}

// dialRawOn is dialRaw over network ("tcp", "unix").
func dialRawOn(t testing.TB, network, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	// Bounds a test that would otherwise hang on a missing answer.
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads one answer to a request of the given method, whole.
func (c *rawConn) answer(method string) (*http.Response, string) {
	c.t.Helper()
	r, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading an answer: %v", err)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		c.t.Fatalf("reading an answer's body: %v", err)
	}
	return r, string(b)
}

// closed reports whether the server closed the connection.
func (c *rawConn) closed() bool {
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

func TestLoopServesKeepAliveRequestsOnOneConnection(t *testing.T) {
	_, addr := startLoop(t, &echo{})
	c := dialRaw(t, addr)
	for i := range 3 {
		c.send(fmt.Sprintf("GET /echo?i=%d HTTP/1.1\r\nHost: example.com\r\nX-Foo: bar\r\n\r\n", i))
		r, body := c.answer("GET")
		if r.StatusCode != 200 || body != fmt.Sprintf("GET /echo?i=%d host=example.com foo=bar body=", i) {
			t.Fatalf("answer %d: %d %q", i, r.StatusCode, body)
		}
		if r.ContentLength != int64(len(body)) || r.Close || len(r.TransferEncoding) != 0 {
			t.Errorf("answer %d framing: length %d, close %v, transfer %v", i, r.ContentLength, r.Close, r.TransferEncoding)
		}
		if r.Header.Get("Date") == "" || r.Header.Get("Content-Type") != "text/plain" || len(r.Header.Get(RequestIDHeader)) != 36 {
			t.Errorf("answer %d header: %v", i, r.Header)
		}
	}
	c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Request-Id: mine\r\n\r\nhello")
	r, body := c.answer("POST")
	if r.StatusCode != 200 || body != "POST /echo? host=h foo= body=hello" || r.Header.Get(RequestIDHeader) != "mine" {
		t.Errorf("POST: %d %q %v", r.StatusCode, body, r.Header)
	}
}

func TestLoopAnswersPipelinedRequestsInOrder(t *testing.T) {
	_, addr := startLoop(t, &echo{})
	c := dialRaw(t, addr)
	var all strings.Builder
	for i := range 5 {
		fmt.Fprintf(&all, "POST /echo?i=%d HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n%d", i, i)
	}
	c.send(all.String())
	for i := range 5 {
		r, body := c.answer("POST")
		if want := fmt.Sprintf("POST /echo?i=%d host=h foo= body=%d", i, i); r.StatusCode != 200 || body != want {
			t.Errorf("answer %d: %d %q, want %q", i, r.StatusCode, body, want)
		}
	}
	// A request split across writes is read whole.
	c.send("GET /echo?split HTTP/1.1\r\nHo")
	c.send("st: h\r\n\r\n")
	if r, body := c.answer("GET"); r.StatusCode != 200 || body != "GET /echo?split host=h foo= body=" {
		t.Errorf("split request: %d %q", r.StatusCode, body)
	}
}

func TestLoopFramesStreamedBigAndEmptyAnswers(t *testing.T) {
	_, addr := startLoop(t, &streamer{})
	c := dialRaw(t, addr)
	c.send("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
	r, body := c.answer("GET")
	if r.StatusCode != 200 || body != "abbccc" {
		t.Errorf("stream: %d %q", r.StatusCode, body)
	}
	c.send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	r, body = c.answer("GET")
	if r.StatusCode != 200 || len(body) != 10<<10 || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
		t.Errorf("big: %d, %d bytes, %v %v", r.StatusCode, len(body), r.Header, r.TransferEncoding)
	}
	c.send("GET /empty HTTP/1.1\r\nHost: h\r\n\r\n")
	r, body = c.answer("GET")
	if r.StatusCode != 204 || body != "" || r.Header.Get("Content-Length") != "" || len(r.TransferEncoding) != 0 {
		t.Errorf("empty: %d %q %v", r.StatusCode, body, r.Header)
	}
	// The connection is still in step after all three.
	c.send("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
	if r, _ := c.answer("GET"); r.StatusCode != 200 {
		t.Errorf("after: %d", r.StatusCode)
	}
}

// Requests the loop does not serve itself are answered by net/http as
// before: the loop hands the connection over with what it read.
func TestLoopHandsOtherRequestsToNetHTTP(t *testing.T) {
	_, addr := startLoop(t, &echo{})
	cases := []struct {
		name, req, method string
		status            int
		body              string // a prefix of the answer's body
		closes            bool
	}{
		{"chunked body", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "POST", 200, "POST /echo? host=h foo= body=abcde", false},
		{"HTTP/1.0", "GET /echo HTTP/1.0\r\nHost: h\r\n\r\n", "GET", 200, "GET /echo? host=h", true},
		{"Connection: close", "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET", 200, "GET /echo? host=h", true},
		{"bare LF", "GET /echo HTTP/1.1\nHost: h\n\n", "GET", 200, "GET /echo? host=h", false},
		{"header larger than the loop's buffer", "GET /echo HTTP/1.1\r\nHost: h\r\nX-Foo: " + strings.Repeat("f", readBufSize) + "\r\n\r\n", "GET", 200, "GET /echo? host=h foo=fff", false},
		{"body larger than the loop's buffer", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 9000\r\n\r\n" + strings.Repeat("b", 9000), "POST", 200, "POST /echo? host=h foo= body=bbb", false},
		{"HEAD", "HEAD /echo HTTP/1.1\r\nHost: h\r\n\r\n", "HEAD", 200, "", false},
		{"missing Host", "GET /echo HTTP/1.1\r\n\r\n", "GET", 400, "400 Bad Request: missing required Host header", true},
		{"two Hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET", 400, "400 Bad Request", true},
		{"space before colon", "GET /echo HTTP/1.1\r\nHost: h\r\nX-Foo : x\r\n\r\n", "GET", 400, "400 Bad Request", true},
		{"header over net/http's limit", "GET /echo HTTP/1.1\r\nHost: h\r\nX-Foo: " + strings.Repeat("f", 1<<20+8192) + "\r\n\r\n", "GET", 431, "431 Request Header Fields Too Large", true},
		{"garbage", "HELLO\r\n\r\n", "GET", 400, "400 Bad Request", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.send(tc.req)
			r, body := c.answer(tc.method)
			if r.StatusCode != tc.status || !strings.HasPrefix(body, tc.body) {
				t.Fatalf("answer: %d %.80q, want %d %q", r.StatusCode, body, tc.status, tc.body)
			}
			if tc.closes {
				if !c.closed() {
					t.Error("the connection stayed open")
				}
				return
			}
			// net/http goes on serving the connection.
			c.send("GET /echo?next HTTP/1.1\r\nHost: h\r\n\r\n")
			if r, body := c.answer("GET"); r.StatusCode != 200 || body != "GET /echo?next host=h foo= body=" {
				t.Errorf("next answer: %d %q", r.StatusCode, body)
			}
		})
	}
}

func TestLoopAnswersExpectContinue(t *testing.T) {
	_, addr := startLoop(t, &echo{})
	c := dialRaw(t, addr)
	c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim answer %q, %v", line, err)
	}
	if _, err := c.br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	c.send("abc")
	if r, body := c.answer("POST"); r.StatusCode != 200 || body != "POST /echo? host=h foo= body=abc" {
		t.Errorf("answer: %d %q", r.StatusCode, body)
	}
}

func TestLoopCancelsTheCallWhenTheClientGoesAway(t *testing.T) {
	dep := &echo{started: make(chan string, 1), cancelled: make(chan string, 1)}
	_, addr := startLoop(t, dep)
	c := dialRaw(t, addr)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\nX-Request-Id: gone\r\n\r\n")
	wantCancelledWhenClientLeaves(t, dep, c, "gone")
}

// wantCancelledWhenClientLeaves waits until dep runs the call c sent, closes
// c's side once it does, and fails t unless dep sees the call with request
// ID id cancelled.
func wantCancelledWhenClientLeaves(t *testing.T, dep *echo, c *rawConn, id string) {
	t.Helper()
	select {
	case <-dep.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not reach the replica")
	}
	_ = c.nc.(interface{ CloseWrite() error }).CloseWrite()
	select {
	case got := <-dep.cancelled:
		if got != id {
			t.Errorf("cancelled %q, want %q", got, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the call was not cancelled after the client closed its side")
	}
}

func TestLoopDrainClosesKeptAliveConnections(t *testing.T) {
	srv, addr := startLoop(t, &echo{})
	idle := dialRaw(t, addr)
	idle.send("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
	if r, _ := idle.answer("GET"); r.StatusCode != 200 || r.Close {
		t.Fatalf("before draining: %d, close %v", r.StatusCode, r.Close)
	}
	srv.Drain()
	if !idle.closed() {
		t.Error("an idle connection stayed open after Drain")
	}
	// New connections are still served, one request each.
	fresh := dialRaw(t, addr)
	fresh.send("GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
	if r, _ := fresh.answer("GET"); r.StatusCode != 200 || !r.Close {
		t.Errorf("while draining: %d, close %v", r.StatusCode, r.Close)
	}
	if !fresh.closed() {
		t.Error("the connection stayed open after Connection: close")
	}
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		name, in string
		err      error
	}{
		{"plain", "GET /a?b=c HTTP/1.1\r\nHost: h:80\r\nAccept: */*\r\n\r\n", nil},
		{"incomplete header", "GET /a HTTP/1.1\r\nHost: h\r\n", errIncomplete},
		{"incomplete body", "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab", errIncomplete},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", errUnhandled},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", errUnhandled},
		{"absolute target", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", errUnhandled},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", errUnhandled},
		{"control character", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", errUnhandled},
		{"two lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", errUnhandled},
		{"signed length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na", errUnhandled},
		{"upgrade", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", errUnhandled},
		{"pragma", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", errUnhandled},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", errUnhandled},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", errUnhandled},
		{"lone CR", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", errUnhandled},
	}
	for _, tc := range cases {
		h := http.Header{}
		pr, n, err := parseRequest([]byte(tc.in), h)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err == nil && (n != len(tc.in) || pr.method != "GET" || pr.url.Path != "/a" || pr.url.RawQuery != "b=c" || pr.host != "h:80" || h.Get("Accept") != "*/*" || h.Get("Host") != "") {
			t.Errorf("%s: %+v %d %v", tc.name, pr, n, h)
		}
	}
	h := http.Header{}
	in := "POST /p%20q HTTP/1.1\r\nhost: h\r\nx-a: 1\r\nX-A:  2 \r\ncontent-length: 3\r\n\r\nabcGET"
	pr, n, err := parseRequest([]byte(in), h)
	if err != nil || n != len(in)-3 || string(pr.body) != "abc" || pr.url.Path != "/p q" || pr.target != "/p%20q" {
		t.Fatalf("%+v %d %v", pr, n, err)
	}
	if got := h["X-A"]; len(got) != 2 || got[0] != "1" || got[1] != "2" || h.Get("Content-Length") != "3" {
		t.Errorf("header %v", h)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	in := []byte("GET /noop?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		if _, _, err := parseRequest(in, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopCall is one request through the connection loop over TCP
// to a real replica server: what the proxy does per request, with the
// client's side in the same process.
func BenchmarkLoopCall(b *testing.B) {
	_, addr := startLoop(b, &echo{})
	c := dialRaw(b, addr)
	req := "GET /empty HTTP/1.1\r\nHost: h\r\nUser-Agent: bench\r\n\r\n"
	b.ReportAllocs()
	for b.Loop() {
		_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
		c.send(req)
		if r, _ := c.answer("GET"); r.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", r.StatusCode)
		}
	}
}

// request_timeout_s holds on the loop, and a request in flight when
// Shutdown starts is answered, not cut, before Shutdown returns.
func TestLoopTimesOutAndShutdownFinishesRequestsInFlight(t *testing.T) {
	dep := &echo{started: make(chan string, 1), cancelled: make(chan string, 1)}
	srv, addr := startLoop(t, dep)
	srv.proxy.SetState(State{Routes: []Route{{Prefix: "/", App: "app"}}, RequestTimeout: 200 * time.Millisecond})
	c := dialRaw(t, addr)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\nX-Request-Id: slow\r\n\r\n")
	select {
	case <-dep.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not reach the replica")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	r, body := c.answer("GET")
	if r.StatusCode != http.StatusRequestTimeout || body != "Request slow timed out after 0.2s." {
		t.Errorf("answer: %d %q", r.StatusCode, body)
	}
	if id := <-dep.cancelled; id != "slow" {
		t.Errorf("cancelled %q", id)
	}
	<-done
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the proxy still accepts connections after Shutdown")
	}
}
