package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/router"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

func TestMatchUsesLongestPrefixOnSlashBoundaries(t *testing.T) {
	routes := []Route{{"/", "root"}, {"/a", "a"}, {"/a/b", "ab"}}
	p := New(nil, logr.Discard(), nil)
	p.SetState(State{Routes: routes})
	routes = p.state.Load().Routes
	cases := map[string]string{"/": "root", "/a": "a", "/a/": "a", "/a/c": "a", "/abc": "root", "/a/b": "ab", "/a/b/c": "ab", "/a/bc": "a"}
	for path, want := range cases {
		if got, ok := Match(routes, path); !ok || got.App != want {
			t.Errorf("Match(%q) = %q, want %q", path, got.App, want)
		}
	}
	if _, ok := Match([]Route{{"/a", "a"}}, "/b"); ok {
		t.Error("/b matched /a")
	}
}

// fakeInvoker fails every call with err, or waits for ctx.
type fakeInvoker struct {
	err  error
	call handle.Call
}

func (f *fakeInvoker) Invoke(ctx context.Context, c handle.Call) (*handle.Response, error) {
	f.call = c
	if f.err != nil {
		return nil, f.err
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func serve(p *Proxy, method, path, body string, hdr ...string) *http.Response {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, req)
	return w.Result()
}

func text(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestHealthAndRoutes(t *testing.T) {
	p := New(&fakeInvoker{}, logr.Discard(), nil)
	for _, path := range []string{"/-/healthz", "/-/routes"} {
		if r := serve(p, "GET", path, ""); r.StatusCode != 503 || text(r) != MsgNoRoutes {
			t.Errorf("%s before routes = %d", path, r.StatusCode)
		}
	}
	p.SetState(State{Routes: []Route{{"/a", "app"}}})
	if r := serve(p, "GET", "/-/healthz", ""); r.StatusCode != 200 || text(r) != "success" {
		t.Errorf("healthz = %d", r.StatusCode)
	}
	if r := serve(p, "GET", "/-/routes", ""); text(r) != `{"/a":"app"}` {
		t.Errorf("routes = %s", text(serve(p, "GET", "/-/routes", "")))
	}
	p.SetState(State{Routes: []Route{{"/a", "app"}}, Unhealthy: MsgDraining})
	if r := serve(p, "GET", "/-/healthz", ""); r.StatusCode != 503 || text(r) != MsgDraining {
		t.Errorf("draining healthz = %d", r.StatusCode)
	}
}

func TestErrorsAsRaySendsThem(t *testing.T) {
	inv := &fakeInvoker{}
	p := New(inv, logr.Discard(), nil)
	p.SetState(State{Routes: []Route{{"/a", "app"}}, RootPath: "/root"})

	r := serve(p, "GET", "/root/zzz", "")
	if r.StatusCode != 404 || text(r) != "Path '/root/zzz' not found. Ping http://.../-/routes for available routes." {
		t.Errorf("404 = %d %q", r.StatusCode, text(r))
	}
	cases := []struct {
		err  error
		code int
		body string
	}{
		{&router.BackPressureError{Queued: 2, MaxQueued: 2}, 503, "max_queued_requests=2"},
		{&router.UnavailableError{Message: "gone"}, 503, "gone"},
		{&wire.Error{Kind: wire.ErrUser, Message: "Traceback ...ValueError"}, 500, "ValueError"},
	}
	for _, tc := range cases {
		inv.err = tc.err
		r := serve(p, "POST", "/root/a/x?y=1", "body", "X-Request-ID", "rid")
		if r.StatusCode != tc.code || !strings.Contains(text(r), tc.body) {
			t.Errorf("%v → %d", tc.err, r.StatusCode)
		}
		if r.Header.Get(RequestIDHeader) != "rid" {
			t.Errorf("x-request-id = %q", r.Header.Get(RequestIDHeader))
		}
	}
	m := inv.call.Meta
	if inv.call.App != "app" || m.Path != "/a/x" || m.Query != "y=1" || m.RoutePrefix != "/root/a" || string(inv.call.Body) != "body" || m.RequestID != "rid" {
		t.Errorf("call = %+v", inv.call)
	}

	inv.err = nil
	p.SetState(State{Routes: []Route{{"/", "app"}}, RequestTimeout: 50 * time.Millisecond})
	r = serve(p, "GET", "/slow", "")
	if r.StatusCode != 408 || !strings.HasSuffix(text(r), "timed out after 0.05s.") {
		t.Errorf("timeout = %d %q", r.StatusCode, text(r))
	}
	if id := r.Header.Get(RequestIDHeader); len(id) != 36 {
		t.Errorf("generated request id %q", id)
	}
}
