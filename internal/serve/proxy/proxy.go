// Package proxy is Serve's HTTP proxy (docs/serve.md): it matches a
// request to an application by the longest route prefix, hands it to the
// application's ingress deployment through the caller-side router, and
// streams the answer back, with Ray's /-/healthz and /-/routes endpoints,
// x-request-id, request_timeout_s and Ray's error bodies.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/router"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// Messages of the health endpoints, as Ray words them.
const (
	MsgDraining     = "This node is being drained."
	MsgNoRoutes     = "Route table is not populated yet."
	MsgNoReplicas   = "No replicas are available yet."
	RequestIDHeader = "X-Request-Id"
	healthyBody     = "success"
)

// Route maps a prefix to an application.
type Route struct {
	Prefix string
	App    string
}

// State is what the proxy serves at one moment.
type State struct {
	// Routes in any order; the proxy matches the longest prefix first.
	Routes         []Route
	RootPath       string
	RequestTimeout time.Duration
	// Unhealthy, when set, is the 503 body of /-/healthz and /-/routes.
	Unhealthy string
}

// Invoker sends calls to deployments; *handle.Handles is one.
type Invoker interface {
	Invoke(ctx context.Context, c handle.Call) (*handle.Response, error)
}

// ingressLookup names an application's ingress deployment, for the
// per-deployment error metric; *handle.Handles is one.
type ingressLookup interface {
	Ingress(app string) (string, bool)
}

// Proxy is the HTTP handler of one node's proxy.
type Proxy struct {
	invoker Invoker
	log     logr.Logger
	metrics *metrics.Metrics
	state   atomic.Pointer[State]
	// idSources are ChaCha8 generators seeded from crypto/rand, for
	// request IDs: as unpredictable, without a getrandom call per request.
	idSources sync.Pool
}

// New returns a Proxy with no routes (unhealthy until SetState). m records
// the request metrics (nil: none).
func New(invoker Invoker, log logr.Logger, m *metrics.Metrics) *Proxy {
	p := &Proxy{invoker: invoker, log: log, metrics: m}
	p.idSources.New = func() any {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		return mrand.NewChaCha8(seed)
	}
	p.SetState(State{Unhealthy: MsgNoRoutes})
	return p
}

// SetState installs new routes and health.
func (p *Proxy) SetState(s State) {
	routes := append([]Route(nil), s.Routes...)
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].Prefix) > len(routes[j].Prefix) })
	s.Routes = routes
	p.state.Store(&s)
}

// Match returns the application whose route prefix matches path: the
// longest prefix that equals the path, is "/", or is followed by "/".
func Match(routes []Route, path string) (Route, bool) {
	for _, r := range routes {
		if !strings.HasPrefix(path, r.Prefix) {
			continue
		}
		if r.Prefix == "/" || len(path) == len(r.Prefix) || path[len(r.Prefix)] == '/' {
			return r, true
		}
	}
	return Route{}, false
}

// request is what the metrics of one request are labelled with.
type request struct {
	app, route string
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.metrics == nil {
		p.serve(w, r, &request{})
		return
	}
	start := p.metrics.Now()
	p.metrics.HTTPStarted()
	// One allocation for both: they escape through the handler's interfaces.
	both := &struct {
		sw  statusWriter
		req request
	}{sw: statusWriter{ResponseWriter: w}}
	sw, req := &both.sw, &both.req
	// Deferred so a response cut short (http.ErrAbortHandler) counts too.
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
			if r.Context().Err() != nil {
				// The client went away before an answer: Ray records 499.
				status = 499
			}
		}
		var deployment string
		if il, ok := p.invoker.(ingressLookup); ok && req.app != "" && status >= 400 {
			deployment, _ = il.Ingress(req.app)
		}
		p.metrics.HTTPDone(req.app, req.route, deployment, r.Method, status, start)
	}()
	p.serve(sw, r, req)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, req *request) {
	st := p.state.Load()
	path := r.URL.Path
	if st.RootPath != "" {
		if path != st.RootPath && !strings.HasPrefix(path, st.RootPath+"/") {
			p.notFound(w, r.URL.Path)
			return
		}
		path = strings.TrimPrefix(path, st.RootPath)
		if path == "" {
			path = "/"
		}
	}
	switch path {
	case "/-/healthz", "/-/routes":
		req.route = path
	}
	switch path {
	case "/-/healthz":
		if st.Unhealthy != "" {
			dashboard.WriteText(w, http.StatusServiceUnavailable, st.Unhealthy)
			return
		}
		dashboard.WriteText(w, http.StatusOK, healthyBody)
		return
	case "/-/routes":
		if st.Unhealthy != "" {
			dashboard.WriteText(w, http.StatusServiceUnavailable, st.Unhealthy)
			return
		}
		routes := map[string]string{}
		for _, rt := range st.Routes {
			routes[rt.Prefix] = rt.App
		}
		raw, _ := json.Marshal(routes)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(raw)
		return
	}
	route, ok := Match(st.Routes, path)
	if !ok {
		p.notFound(w, r.URL.Path)
		return
	}
	req.app, req.route = route.App, route.Prefix
	p.forward(w, r, st, route, path)
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streamed answers streaming.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *Proxy) notFound(w http.ResponseWriter, path string) {
	dashboard.WriteText(w, http.StatusNotFound, fmt.Sprintf("Path '%s' not found. Ping http://.../-/routes for available routes.", path))
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *State, route Route, path string) {
	reqID := r.Header.Get(RequestIDHeader)
	if reqID == "" {
		reqID = p.newRequestID()
	}
	// RequestIDHeader is in canonical form: set without Header.Set's
	// canonicalization, one slice for both writes.
	reqIDs := []string{reqID}
	w.Header()[RequestIDHeader] = reqIDs
	ctx := r.Context()
	if st.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, st.RequestTimeout, errTimeout)
		defer cancel()
	}
	headers := make([][2]string, 0, len(r.Header)+1)
	for k, vs := range r.Header {
		lk := lowerHeader(k)
		for _, v := range vs {
			headers = append(headers, [2]string{lk, v})
		}
	}
	if r.Host != "" {
		headers = append(headers, [2]string{"host", r.Host})
	}
	prefix := route.Prefix
	if prefix == "/" {
		prefix = ""
	}
	call := handle.Call{
		App: route.App,
		Meta: wire.Meta{
			Kind:               wire.KindHTTP,
			RequestID:          reqID,
			Method:             r.Method,
			Path:               path,
			Query:              r.URL.RawQuery,
			RoutePrefix:        st.RootPath + prefix,
			Headers:            headers,
			Client:             r.RemoteAddr,
			MultiplexedModelID: headerValue(r.Header, modelIDHeader),
		},
	}
	body, rest, err := readSmallBody(r)
	if err != nil {
		dashboard.WriteText(w, http.StatusBadRequest, fmt.Sprintf("Reading the request body failed: %v", err))
		return
	}
	call.Body, call.BodyStream = body, rest

	resp, err := p.invoker.Invoke(ctx, call)
	if err != nil {
		p.writeError(w, r, st, reqID, err)
		return
	}
	defer resp.Close()
	h := w.Header()
	for _, kv := range resp.Head.Headers {
		h.Add(kv[0], kv[1])
	}
	h[RequestIDHeader] = reqIDs[:1:1]
	w.WriteHeader(resp.Head.Status)
	flusher, _ := w.(http.Flusher)
	for {
		chunk, err := resp.Next(ctx)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The response has started: all that is left is to cut it.
			p.log.V(1).Info("Response ended early", "requestID", reqID, "reason", err.Error())
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if flusher != nil && !resp.Buffered() {
			flusher.Flush()
		}
	}
}

var errTimeout = errors.New("request timed out")

// modelIDHeader is serve_multiplexed_model_id in net/http's canonical
// form, which Header.Get would compute (a new string) on every request.
const modelIDHeader = "Serve_multiplexed_model_id"

// headerValue is h.Get(k) for a key k already in canonical form.
func headerValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (p *Proxy) writeError(w http.ResponseWriter, r *http.Request, st *State, reqID string, err error) {
	var bp *router.BackPressureError
	var we *wire.Error
	var died *handle.ReplicaDiedError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		if r.Context().Err() != nil {
			// Client went away (Ray records 499); nobody reads an answer.
			return
		}
		dashboard.WriteText(w, http.StatusRequestTimeout, fmt.Sprintf("Request %s timed out after %ss.", reqID, strconv.FormatFloat(st.RequestTimeout.Seconds(), 'f', -1, 64)))
	case errors.As(err, &bp):
		dashboard.WriteText(w, http.StatusServiceUnavailable, bp.Error())
	case errors.Is(err, router.ErrUnavailable):
		dashboard.WriteText(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, handle.ErrNotFound):
		p.notFound(w, r.URL.Path)
	case errors.As(err, &we):
		switch we.Kind {
		case wire.ErrUnavailable, wire.ErrBackpressure:
			dashboard.WriteText(w, http.StatusServiceUnavailable, we.Message)
		case wire.ErrTimeout:
			dashboard.WriteText(w, http.StatusRequestTimeout, we.Message)
		default:
			dashboard.WriteText(w, http.StatusInternalServerError, we.Message)
		}
	case errors.As(err, &died):
		dashboard.WriteText(w, http.StatusInternalServerError, died.Error())
	default:
		dashboard.WriteText(w, http.StatusInternalServerError, err.Error())
	}
}

// readSmallBody reads bodies up to the inline limit whole; a larger one is
// returned as the part read plus the rest of the stream.
func readSmallBody(r *http.Request) ([]byte, io.Reader, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil, nil
	}
	limit := int64(handle.InlineBodyLimit)
	if r.ContentLength > limit {
		return nil, r.Body, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(buf)) <= limit {
		return buf, nil, nil
	}
	return buf, r.Body, nil
}

// newRequestID returns a random (version 4) UUID, as Ray's request IDs are.
func (p *Proxy) newRequestID() string {
	var b [16]byte
	src := p.idSources.Get().(*mrand.ChaCha8)
	_, _ = src.Read(b[:])
	p.idSources.Put(src)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// lowerHeader is k in lower case; the headers most requests carry come
// from a table instead of a new string each.
func lowerHeader(k string) string {
	if l, ok := commonHeaders[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, h := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control", "Connection",
		"Content-Length", "Content-Type", "Cookie", "Origin", "Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "Traceparent", "Serve_multiplexed_model_id"} {
		m[h] = strings.ToLower(h)
	}
	return m
}()
