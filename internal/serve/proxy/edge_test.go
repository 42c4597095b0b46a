package proxy

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// A request that arrives while the one before it is served, after the
// loop read the socket empty, is still read (a loop that waited for the
// poller instead of reading after each answer could lose its readiness).
func TestLoopReadsARequestThatArrivedDuringTheLastOne(t *testing.T) {
	dep := &echo{started: make(chan string, 1), cancelled: make(chan string, 1)}
	srv, addr := startLoop(t, dep)
	srv.proxy.SetState(State{Routes: []Route{{Prefix: "/", App: "app"}}, RequestTimeout: 300 * time.Millisecond})
	c := dialRaw(t, addr)
	c.send("GET /block HTTP/1.1\r\nHost: h\r\nX-Request-Id: slow\r\n\r\n")
	select {
	case <-dep.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not reach the replica")
	}
	c.send("GET /echo?next HTTP/1.1\r\nHost: h\r\n\r\n")
	if r, _ := c.answer("GET"); r.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("first answer: %d", r.StatusCode)
	}
	<-dep.cancelled
	if r, body := c.answer("GET"); r.StatusCode != 200 || body != "GET /echo?next host=h foo= body=" {
		t.Errorf("second answer: %d %q", r.StatusCode, body)
	}
}

// A connection that is not TCP (here a Unix socket) gets the same
// answers, pipelining and disconnect cancellation.
func TestLoopServesConnectionsOtherThanTCP(t *testing.T) {
	dep := &echo{started: make(chan string, 1), cancelled: make(chan string, 1)}
	srv, _ := startLoop(t, dep)
	ul, err := net.Listen("unix", filepath.Join(t.TempDir(), "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ul) }()
	c := dialRawOn(t, "unix", ul.Addr().String())
	c.send("GET /echo?a HTTP/1.1\r\nHost: h\r\n\r\nGET /echo?b HTTP/1.1\r\nHost: h\r\n\r\n")
	for _, q := range []string{"a", "b"} {
		if r, body := c.answer("GET"); r.StatusCode != 200 || body != "GET /echo?"+q+" host=h foo= body=" {
			t.Errorf("answer %s: %d %q", q, r.StatusCode, body)
		}
	}
	c.send("GET /echo?split HTTP/1.1\r\nHo")
	c.send("st: h\r\n\r\n")
	if r, body := c.answer("GET"); r.StatusCode != 200 || body != "GET /echo?split host=h foo= body=" {
		t.Errorf("split request: %d %q", r.StatusCode, body)
	}
	g := dialRawOn(t, "unix", ul.Addr().String())
	g.send("GET /block HTTP/1.1\r\nHost: h\r\nX-Request-Id: gone\r\n\r\n")
	wantCancelledWhenClientLeaves(t, dep, g, "gone")
}

// A client that half-closes its side right after its requests (the FIN
// may come with their bytes) still gets every answer.
func TestLoopAnswersAClientThatHalfClosedAfterSending(t *testing.T) {
	_, addr := startLoop(t, &echo{})
	c := dialRaw(t, addr)
	c.send("GET /echo?a HTTP/1.1\r\nHost: h\r\n\r\nGET /echo?b HTTP/1.1\r\nHost: h\r\n\r\n")
	_ = c.nc.(*net.TCPConn).CloseWrite()
	for _, q := range []string{"a", "b"} {
		if r, body := c.answer("GET"); r.StatusCode != 200 || body != "GET /echo?"+q+" host=h foo= body=" {
			t.Errorf("answer %s: %d %q", q, r.StatusCode, body)
		}
	}
}
