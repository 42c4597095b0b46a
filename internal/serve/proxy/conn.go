package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sizes of a connection's buffers. A request whose header and body do not
// fit in readBufSize goes to net/http; an answer the handler finishes
// within answerBufSize gets a Content-Length and leaves in one write.
const (
	readBufSize   = 8 << 10
	writeBufSize  = 4 << 10
	answerBufSize = 4 << 10
	// watchDelay: a request still running this long gets a read watching
	// for the client going away. A quicker one is answered before a
	// disconnect could cancel anything, so it pays for no read.
	watchDelay = 20 * time.Millisecond
)

// Connection states, for Drain and Shutdown.
const (
	stateNew int32 = iota
	stateActive
	stateIdle
	stateClosed
)

// conn is one client connection served by the loop.
type conn struct {
	srv     *Server
	nc      net.Conn
	remote  string
	created time.Time
	state   atomic.Int32

	rbuf      []byte // rbuf[rpos:] is read and not yet consumed
	rpos      int
	bw        *bufio.Writer
	werr      error
	cancelReq context.CancelFunc
	header    http.Header
	// ctx and req are the connection's, reused by its requests while ctx
	// is not cancelled: a request's context is cancelled only when its
	// connection fails (the client went away, a write failed), which ends
	// the connection too, so one context serves them all. The handler is
	// the Proxy, which keeps neither past ServeHTTP.
	ctx        context.Context
	req        *http.Request
	scratch    parseScratch
	body       bodyReader
	w          responseWriter
	date       []byte
	dateSec    int64
	watchTimer *time.Timer
	watchDone  chan struct{}
	watchMu    sync.Mutex
	watchOff   bool
	watchN     int
	watchErr   error
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String(), created: time.Now(),
		rbuf: make([]byte, 0, readBufSize), header: http.Header{}, watchDone: make(chan struct{}, 1)}
	c.bw = bufio.NewWriterSize(connErrorWriter{c}, writeBufSize)
	c.w.c = c
	return c
}

// connErrorWriter remembers the first write error: the connection is not
// reused after one, and the request in flight is cancelled, as net/http
// does.
type connErrorWriter struct{ c *conn }

func (w connErrorWriter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	if err != nil && w.c.werr == nil {
		w.c.werr = err
		if w.c.cancelReq != nil {
			w.c.cancelReq()
		}
	}
	return n, err
}

var errHandedOver = errors.New("connection handed to net/http")

func (c *conn) serve() {
	handedOver := false
	defer func() {
		if c.cancelReq != nil {
			c.cancelReq()
		}
		c.srv.forget(c)
		if !handedOver {
			c.state.Store(stateClosed)
			_ = c.bw.Flush()
			_ = c.nc.Close()
		}
	}()
	first := true
	for {
		req, n, err := c.readRequest(first)
		first = false
		if errors.Is(err, errHandedOver) {
			handedOver = c.handOver()
			return
		}
		if err != nil {
			return
		}
		if !c.serveRequest(req, n) {
			return
		}
	}
}

// readRequest waits for the next request and parses it. It returns
// errHandedOver for one the loop does not handle (net/http will), any
// other error when the connection is done.
func (c *conn) readRequest(first bool) (parsedRequest, int, error) {
	if len(c.rbuf) == c.rpos {
		if err := c.bw.Flush(); err != nil {
			return parsedRequest{}, 0, err
		}
		c.rbuf, c.rpos = c.rbuf[:0], 0
		// Waiting for a request: idle (Drain closes it) and, between
		// requests, under the keep-alive timeout.
		var deadline time.Time
		if first {
			deadline = time.Now().Add(headerTimeout)
		} else if c.srv.keepAlive > 0 {
			deadline = time.Now().Add(c.srv.keepAlive)
		}
		if err := c.nc.SetReadDeadline(deadline); err != nil {
			return parsedRequest{}, 0, err
		}
		if !first {
			if !c.state.CompareAndSwap(stateActive, stateIdle) {
				return parsedRequest{}, 0, net.ErrClosed
			}
			if c.srv.draining.Load() {
				return parsedRequest{}, 0, net.ErrClosed
			}
		}
		if err := c.fill(); err != nil {
			return parsedRequest{}, 0, err
		}
	}
	if !c.state.CompareAndSwap(stateIdle, stateActive) && !c.state.CompareAndSwap(stateNew, stateActive) && c.state.Load() != stateActive {
		return parsedRequest{}, 0, net.ErrClosed
	}
	deadlineSet := false
	for {
		req, n, err := parseRequestScratch(c.rbuf[c.rpos:], c.header, &c.scratch)
		if err == nil {
			return req, n, nil
		}
		if !errors.Is(err, errIncomplete) {
			return parsedRequest{}, 0, errHandedOver
		}
		if c.rpos > 0 {
			c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[c.rpos:])]
			c.rpos = 0
		}
		if len(c.rbuf) == cap(c.rbuf) {
			return parsedRequest{}, 0, errHandedOver
		}
		if c.bw.Buffered() > 0 {
			// Answers to pipelined requests leave before waiting.
			if err := c.bw.Flush(); err != nil {
				return parsedRequest{}, 0, err
			}
		}
		if !deadlineSet {
			deadlineSet = true
			if err := c.nc.SetReadDeadline(time.Now().Add(headerTimeout)); err != nil {
				return parsedRequest{}, 0, err
			}
		}
		if err := c.fill(); err != nil {
			return parsedRequest{}, 0, err
		}
	}
}

// fill reads once into the free end of rbuf.
func (c *conn) fill() error {
	n, err := c.nc.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
	c.rbuf = c.rbuf[:len(c.rbuf)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// handOver gives the connection, with what was read of it and not yet
// answered, to net/http.
func (c *conn) handOver() bool {
	if c.bw.Flush() != nil || c.nc.SetReadDeadline(time.Time{}) != nil {
		return false
	}
	if !c.state.CompareAndSwap(stateActive, stateClosed) && !c.state.CompareAndSwap(stateNew, stateClosed) {
		return false
	}
	rc := &replayConn{Conn: c.nc, pending: append([]byte(nil), c.rbuf[c.rpos:]...)}
	return c.srv.handoff.give(rc)
}

// serveRequest answers one parsed request of n bytes; it reports whether
// the connection goes on.
func (c *conn) serveRequest(pr parsedRequest, n int) (keep bool) {
	if c.ctx == nil || c.ctx.Err() != nil {
		if c.cancelReq != nil {
			c.cancelReq()
		}
		c.ctx, c.cancelReq = context.WithCancel(context.Background())
		c.req = (&http.Request{}).WithContext(c.ctx)
	}
	// Every exported field is set, so nothing of the last request stays
	// (but the deprecated Cancel, and the unexported context and
	// ServeMux's path values, which the Proxy does not set).
	r := c.req
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = pr.method, pr.url, "HTTP/1.1", 1, 1
	r.Header, r.Body, r.GetBody, r.ContentLength, r.TransferEncoding, r.Close = c.header, http.NoBody, nil, int64(len(pr.body)), nil, false
	r.Host, r.Form, r.PostForm, r.MultipartForm, r.Trailer = pr.host, nil, nil, nil, nil
	r.RemoteAddr, r.RequestURI, r.TLS, r.Response, r.Pattern = c.remote, pr.target, nil, nil, ""
	if len(pr.body) > 0 {
		c.body = bodyReader{b: pr.body}
		r.Body = &c.body
	}
	c.w.reset(r)
	c.startWatch(n)
	defer func() {
		clear(c.header)
		c.body = bodyReader{}
		if p := recover(); p != nil {
			if err, ok := p.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
				c.srv.log.Error(fmt.Errorf("%v", p), "Panic serving a request", "remote", c.remote, "path", pr.target)
			}
			c.stopWatch()
			keep = false
		}
	}()
	c.srv.proxy.ServeHTTP(&c.w, r)
	disconnected := c.stopWatch()
	c.w.finish()
	c.rpos += n
	if c.watchN > 0 {
		// The watch read the start of the next request (pipelining).
		c.rbuf = c.rbuf[:len(c.rbuf)+c.watchN]
		c.watchN = 0
	}
	return !disconnected && !c.w.closeAfter && c.werr == nil
}

// startWatch arms the read that notices the client going away, for a
// request still running after watchDelay. It reads into the free end of
// rbuf, past the request of n bytes and anything pipelined behind it.
func (c *conn) startWatch(n int) {
	if len(c.rbuf) == cap(c.rbuf) {
		return
	}
	c.watchMu.Lock()
	c.watchOff = false
	c.watchMu.Unlock()
	if c.watchTimer == nil {
		c.watchTimer = time.AfterFunc(watchDelay, c.watch)
		return
	}
	c.watchTimer.Reset(watchDelay)
}

func (c *conn) watch() {
	c.watchMu.Lock()
	if c.watchOff {
		c.watchMu.Unlock()
		c.watchDone <- struct{}{}
		return
	}
	// A call may outlast the header and keep-alive deadlines.
	_ = c.nc.SetReadDeadline(time.Time{})
	c.watchMu.Unlock()
	c.watchN, c.watchErr = c.nc.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
	if c.watchN == 0 && !isTimeout(c.watchErr) {
		// The client is gone: cancel the call, as net/http does.
		c.cancelReq()
	}
	c.watchDone <- struct{}{}
}

// stopWatch ends the watch; it reports whether the client went away.
func (c *conn) stopWatch() bool {
	if c.watchTimer == nil || c.watchTimer.Stop() {
		return false
	}
	// The watch runs or ran: cut its read short and wait for it.
	c.watchMu.Lock()
	c.watchOff = true
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	c.watchMu.Unlock()
	<-c.watchDone
	_ = c.nc.SetReadDeadline(time.Time{})
	err := c.watchErr
	c.watchErr = nil
	return c.watchN == 0 && err != nil && !isTimeout(err)
}

var aLongTimeAgo = time.Unix(1, 0)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bodyReader reads a request body the loop read whole.
type bodyReader struct {
	b      []byte
	closed bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (r *bodyReader) Close() error {
	r.closed = true
	return nil
}

// httpDate is the Date header's value, formatted once a second.
func (c *conn) httpDate() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != c.dateSec || c.date == nil {
		c.dateSec = sec
		c.date = now.UTC().AppendFormat(c.date[:0], http.TimeFormat)
	}
	return c.date
}

// parsedRequest is what the loop takes from a request.
type parsedRequest struct {
	method, target, host string
	url                  *url.URL
	body                 []byte
}

var (
	errIncomplete = errors.New("incomplete request")
	errUnhandled  = errors.New("request the loop leaves to net/http")
)

// parseRequest parses one HTTP/1.1 request at the start of b into pr and
// h (which must be empty); n is its length with the body. errIncomplete
// means more bytes are needed; errUnhandled that net/http must take it:
// everything outside the plain keep-alive shape, valid or not, so that
// net/http's answer (400, 431, 100-continue, chunked bodies, …) stays
// what it was.
func parseRequest(b []byte, h http.Header) (pr parsedRequest, n int, err error) {
	return parseRequestScratch(b, h, nil)
}

// parseScratch is what a connection's requests reuse: the URL and the
// slice behind the header's values. Both are free again once the request
// was answered (the header map is cleared then).
type parseScratch struct {
	url  url.URL
	vals []string
}

// parseRequestScratch is parseRequest into sc's URL and values slice
// (nil: fresh ones).
func parseRequestScratch(b []byte, h http.Header, sc *parseScratch) (pr parsedRequest, n int, err error) {
	end := bytes.Index(b, crlfcrlf)
	scan := b
	if end >= 0 {
		scan = b[:end+2]
	}
	for i, c := range scan {
		if c == '\n' && (i == 0 || scan[i-1] != '\r') {
			return parsedRequest{}, 0, errUnhandled // bare LF line endings
		}
	}
	if end < 0 {
		return parsedRequest{}, 0, errIncomplete
	}
	head := b[:end+2]
	line := bytes.IndexByte(head, '\n')
	if line < 1 || head[line-1] != '\r' {
		return parsedRequest{}, 0, errUnhandled
	}
	method, target, ok := parseRequestLine(head[:line-1])
	if !ok {
		return parsedRequest{}, 0, errUnhandled
	}
	// One string for every header value, values are substrings of it; one
	// slice backs every key's values.
	fields := string(head[line+1:])
	var vals []string
	if sc != nil {
		vals = sc.vals[:0]
		defer func() { sc.vals = vals }()
	} else {
		vals = make([]string, 0, bytes.Count(head, crlf)-1)
	}
	var host string
	hosts := 0
	contentLength := 0
	haveCL := false
	for len(fields) > 0 {
		eol := indexCRLF(fields)
		if eol < 0 {
			return parsedRequest{}, 0, errUnhandled
		}
		f := fields[:eol]
		fields = fields[eol+2:]
		colon := -1
		for i := 0; i < len(f); i++ {
			if f[i] == ':' {
				colon = i
				break
			}
			if !isTokenChar(f[i]) {
				return parsedRequest{}, 0, errUnhandled
			}
		}
		if colon < 1 {
			return parsedRequest{}, 0, errUnhandled
		}
		v := trimOWS(f[colon+1:])
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return parsedRequest{}, 0, errUnhandled
			}
		}
		k := canonicalKey(f[:colon])
		switch k {
		case "Host":
			hosts++
			host = v
			continue
		case "Content-Length":
			if haveCL {
				return parsedRequest{}, 0, errUnhandled
			}
			haveCL = true
			cl, ok := parseContentLength(v)
			if !ok {
				return parsedRequest{}, 0, errUnhandled
			}
			contentLength = cl
		case "Connection":
			if !asciiEqualFold(v, "keep-alive") {
				return parsedRequest{}, 0, errUnhandled
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Pragma", "Trailer", "Te":
			return parsedRequest{}, 0, errUnhandled
		}
		if prev, ok := h[k]; ok {
			h[k] = append(prev, v)
			continue
		}
		if len(vals) == cap(vals) {
			// A new array: the values already in h keep theirs.
			vals = make([]string, 0, max(8, bytes.Count(head, crlf)-1))
		}
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if hosts != 1 || !validHost(host) {
		return parsedRequest{}, 0, errUnhandled
	}
	total := end + 4 + contentLength
	if total > readBufSize {
		return parsedRequest{}, 0, errUnhandled
	}
	if len(b) < total {
		// Nothing must stay in h for the next try.
		clear(h)
		return parsedRequest{}, 0, errIncomplete
	}
	var u *url.URL
	if sc != nil && setPlainURL(&sc.url, target) {
		u = &sc.url
	} else if u, err = url.ParseRequestURI(target); err != nil {
		return parsedRequest{}, 0, errUnhandled
	}
	pr.method, pr.target, pr.host, pr.url = method, target, host, u
	if contentLength > 0 {
		pr.body = b[end+4 : total]
	}
	return pr, total, nil
}

// setPlainURL sets u to what url.ParseRequestURI makes of target when
// its path holds only characters that need no escaping (no '%', so the
// path is itself unescaped and RawPath stays empty), and reports whether
// it did; any other target goes to url.ParseRequestURI.
func setPlainURL(u *url.URL, target string) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == '~', c == '/', c == '$', c == '&', c == '+', c == ',', c == ':', c == ';', c == '=', c == '@':
		default:
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query}
	if hasQuery && query == "" {
		u.ForceQuery = true
	}
	return true
}

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
)

// parseRequestLine splits "METHOD /target HTTP/1.1"; HEAD, CONNECT,
// OPTIONS *, absolute targets and other versions are not the loop's.
func parseRequestLine(l []byte) (method, target string, ok bool) {
	sp1 := bytes.IndexByte(l, ' ')
	if sp1 < 1 {
		return "", "", false
	}
	rest := l[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 < 1 || string(rest[sp2+1:]) != "HTTP/1.1" {
		return "", "", false
	}
	m, t := l[:sp1], rest[:sp2]
	for _, c := range m {
		if !isTokenChar(c) {
			return "", "", false
		}
	}
	if t[0] != '/' {
		return "", "", false
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f {
			return "", "", false
		}
	}
	method = methodString(m)
	switch method {
	case http.MethodHead, http.MethodConnect, "PRI":
		return "", "", false
	}
	return method, string(t), true
}

func methodString(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodOptions:
		return http.MethodOptions
	}
	return string(m)
}

func indexCRLF(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\n' {
			return -1 // bare LF
		}
		if s[i] == '\r' {
			if s[i+1] != '\n' {
				return -1
			}
			return i
		}
	}
	return -1
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func parseContentLength(v string) (int, bool) {
	if v == "" || len(v) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, true
}

// validHost accepts the host[:port] forms clients send; anything else
// goes to net/http, which judges it.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isTokenChar: the characters of an HTTP token (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// canonicalKey is k in net/http's canonical form; common names come from
// a table instead of a new string each.
func canonicalKey(k string) string {
	if c, ok := canonicalHeaders[k]; ok {
		return c
	}
	return http.CanonicalHeaderKey(k)
}

var canonicalHeaders = func() map[string]string {
	m := map[string]string{}
	for _, h := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control", "Connection",
		"Content-Length", "Content-Type", "Cookie", "Host", "Origin", "Referer", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Real-Ip", "X-Request-Id", "Traceparent", "Serve_multiplexed_model_id", "Transfer-Encoding", "Expect", "Upgrade", "Pragma",
		"Trailer", "Te"} {
		for _, k := range []string{h, http.CanonicalHeaderKey(h), toLowerASCII(h)} {
			m[k] = http.CanonicalHeaderKey(h)
		}
	}
	return m
}()

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
