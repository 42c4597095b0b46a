package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// responseWriter is the loop's http.ResponseWriter. It frames an answer
// as net/http's server does for an HTTP/1.1 keep-alive request that is
// not HEAD and whose body was read whole (the only requests the loop
// serves): an answer the handler finishes within answerBufSize gets a
// Content-Length and leaves with its header in one write; a longer or
// flushed one is chunked unless the handler set a Content-Length; a Date
// header, a sniffed Content-Type, Connection: close when draining, and
// the status line and sorted, sanitised header fields are net/http's.
// Header keys below are written in canonical form, so they are looked up
// and deleted directly: Header.Get and Del would canonicalize each again.
type responseWriter struct {
	c      *conn
	req    *http.Request
	header http.Header

	wroteHeader bool // the status is decided
	headerSent  bool // the status line and header are in the write buffer
	status      int
	chunking    bool
	// contentLength is the declared length, -1 when unknown.
	contentLength int64
	written       int64
	// held is the start of the body, kept until the header is sent.
	held       []byte
	closeAfter bool
	done       bool
}

func (w *responseWriter) reset(r *http.Request) {
	held := w.held[:0]
	h := w.header
	if h == nil {
		h = http.Header{}
	} else {
		clear(h)
	}
	*w = responseWriter{c: w.c, req: r, header: h, held: held, contentLength: -1}
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		w.c.srv.log.V(1).Info("Superfluous WriteHeader call", "code", code)
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// An informational answer leaves at once; the final one follows.
		writeStatusLine(w.c, code)
		_ = w.header.WriteSubset(w.c.bw, noBodyHeaders)
		_, _ = w.c.bw.Write(crlf)
		_ = w.c.bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := headerValue(w.header, "Content-Length"); cl != "" {
		v, err := strconv.ParseInt(cl, 10, 64)
		if err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.srv.log.V(1).Info("Invalid Content-Length in an answer", "value", cl)
			delete(w.header, "Content-Length")
		}
	}
}

var noBodyHeaders = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.headerSent {
		if len(w.held)+len(p) <= answerBufSize {
			w.held = append(w.held, p...)
			return len(p), nil
		}
		w.sendHeader(p)
	}
	return w.writeBody(p)
}

// Flush sends what the handler wrote so far: the answer streams.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.sendHeader(nil)
	}
	_ = w.c.bw.Flush()
}

// finish completes the answer after the handler returned; the buffered
// writes go out when the connection has nothing more to read.
func (w *responseWriter) finish() {
	w.done = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headerSent {
		w.sendHeader(nil)
	}
	if w.chunking {
		_, _ = w.c.bw.WriteString("0\r\n\r\n")
	}
	if w.contentLength != -1 && bodyAllowedForStatus(w.status) && w.written != w.contentLength {
		// Fewer bytes than declared: the client cannot find the next answer.
		w.closeAfter = true
	}
}

func (w *responseWriter) writeBody(p []byte) (int, error) {
	if w.c.werr != nil {
		return 0, w.c.werr
	}
	bw := w.c.bw
	if w.chunking {
		var hex [16]byte
		_, _ = bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		_, _ = bw.Write(crlf)
		n, err := bw.Write(p)
		_, _ = bw.Write(crlf)
		if w.c.werr != nil {
			return n, w.c.werr
		}
		return n, err
	}
	return bw.Write(p)
}

// sendHeader writes the status line and header, deciding the framing as
// net/http does, then the held start of the body. next is what the
// handler is writing now, sniffed for a Content-Type when nothing is held.
func (w *responseWriter) sendHeader(next []byte) {
	w.headerSent = true
	h := w.header
	held := w.held
	bodyOK := bodyAllowedForStatus(w.status)

	trailers := false
	var exclude map[string]bool
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			if exclude == nil {
				exclude = map[string]bool{}
			}
			exclude[k] = true
			trailers = true
		}
	}
	if _, ok := h["Trailer"]; ok {
		trailers = true
	}
	te := headerValue(h, "Transfer-Encoding")
	hasTE := te != ""

	var clen []byte
	var lenBuf [20]byte
	if w.done && !trailers && !hasTE && bodyOK && !has(h, "Content-Length") {
		w.contentLength = int64(len(held))
		clen = strconv.AppendInt(lenBuf[:0], int64(len(held)), 10)
	}
	if headerValue(h, "Connection") == "close" || w.c.srv.draining.Load() {
		w.closeAfter = true
	}
	var ctype string
	if bodyOK {
		_, haveType := h["Content-Type"]
		sniff := held
		if len(sniff) == 0 {
			sniff = next
		}
		if headerValue(h, "Content-Encoding") == "" && !haveType && !hasTE && len(sniff) > 0 {
			ctype = http.DetectContentType(sniff)
		}
	} else {
		for _, k := range suppressedHeaders(w.status) {
			delete(h, k)
		}
	}
	hasCL := w.contentLength != -1
	if hasCL && hasTE && te != "identity" {
		w.c.srv.log.V(1).Info("Answer with both Transfer-Encoding and Content-Length", "transferEncoding", te)
		delete(h, "Content-Length")
		clen = nil
		w.contentLength = -1
		hasCL = false
	}
	var setTE bool
	switch {
	case !bodyOK:
		delete(h, "Transfer-Encoding")
	case hasCL:
		delete(h, "Transfer-Encoding")
	case hasTE && te == "identity":
		w.closeAfter = true
		delete(h, "Transfer-Encoding")
	default:
		w.chunking = true
		setTE = true
		if hasTE && te == "chunked" {
			delete(h, "Transfer-Encoding")
		}
	}
	if w.chunking {
		delete(h, "Content-Length")
	}
	setConnClose := false
	if w.closeAfter && (w.c.srv.draining.Load() || !hasToken(headerValue(h, "Connection"), "close")) {
		delete(h, "Connection")
		setConnClose = true
	}

	bw := w.c.bw
	writeStatusLine(w.c, w.status)
	writeHeader(bw, h, exclude)
	if clen != nil {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(clen)
		_, _ = bw.Write(crlf)
	}
	if ctype != "" {
		_, _ = bw.WriteString("Content-Type: ")
		_, _ = bw.WriteString(ctype)
		_, _ = bw.Write(crlf)
	}
	if !has(h, "Date") {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(w.c.httpDate())
		_, _ = bw.Write(crlf)
	}
	if setTE {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if setConnClose {
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, _ = bw.Write(crlf)
	if len(held) > 0 {
		_, _ = w.writeBody(held)
	}
	w.held = held[:0]
}

// writeHeader writes h but for the keys in exclude as Header.WriteSubset
// does (keys sorted, invalid names dropped, CR and LF in values turned
// into spaces, values trimmed), without its sorter and replacer for the
// few keys an answer has.
func writeHeader(bw *bufio.Writer, h http.Header, exclude map[string]bool) {
	var arr [16]string
	keys := arr[:0]
	for k := range h {
		if exclude[k] {
			continue
		}
		if len(keys) == len(arr) {
			_ = h.WriteSubset(bw, exclude)
			return
		}
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	for _, k := range keys {
		if !validFieldName(k) {
			continue
		}
		for _, v := range h[k] {
			if strings.ContainsAny(v, "\r\n") {
				b := []byte(v)
				for i, c := range b {
					if c == '\r' || c == '\n' {
						b[i] = ' '
					}
				}
				v = string(b)
			}
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(textproto.TrimString(v))
			_, _ = bw.Write(crlf)
		}
	}
}

// validFieldName is what net/http accepts as a header field name: a
// non-empty token.
func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return false
		}
	}
	return true
}

func has(h http.Header, k string) bool {
	_, ok := h[k]
	return ok
}

func writeStatusLine(c *conn, code int) {
	bw := c.bw
	if code >= 200 && code < 200+len(statusLines2xx) && statusLines2xx[code-200] != "" {
		_, _ = bw.WriteString(statusLines2xx[code-200])
		return
	}
	if text := http.StatusText(code); text != "" {
		_, _ = bw.WriteString("HTTP/1.1 ")
		var b [3]byte
		_, _ = bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
		_ = bw.WriteByte(' ')
		_, _ = bw.WriteString(text)
		_, _ = bw.Write(crlf)
		return
	}
	_, _ = fmt.Fprintf(bw, "HTTP/1.1 %03d status code %d\r\n", code, code)
}

// statusLines2xx are the status lines of the 2xx answers, written whole.
var statusLines2xx = func() (lines [7]string) {
	for i := range lines {
		if text := http.StatusText(200 + i); text != "" {
			lines[i] = "HTTP/1.1 " + strconv.Itoa(200+i) + " " + text + "\r\n"
		}
	}
	return lines
}()

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199, status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

func suppressedHeaders(status int) []string {
	if status == http.StatusNotModified {
		return []string{"Content-Type", "Content-Length", "Transfer-Encoding"}
	}
	return []string{"Content-Length", "Transfer-Encoding"}
}

// hasToken reports whether the comma-separated list v holds token,
// ignoring case.
func hasToken(v, token string) bool {
	for _, f := range strings.Split(v, ",") {
		if asciiEqualFold(strings.TrimSpace(f), token) {
			return true
		}
	}
	return false
}
