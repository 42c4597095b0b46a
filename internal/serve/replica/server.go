// Package replica is the replica side of the wire protocol for Go
// deployments (the built-ins): it accepts the node agent's connection on a
// Unix socket, enforces max_ongoing_requests by rejecting calls beyond it,
// runs calls concurrently, answers health checks and reconfigure calls, and
// drains gracefully. `ray serve-replica` runs one as a child process of the
// node agent.
package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// Request is one call as a deployment sees it.
type Request struct {
	Meta wire.Meta
	Body []byte
}

// Response is a deployment's answer.
type Response struct {
	Status  int
	Headers [][2]string
	Body    []byte
}

// Deployment is user code in Go.
type Deployment interface {
	Handle(ctx context.Context, req *Request) (*Response, error)
	// Reconfigure receives the user_config (nil when there is none).
	Reconfigure(userConfig json.RawMessage) error
	CheckHealth(ctx context.Context) error
}

// Streamer is implemented by deployments that stream their answers chunk
// by chunk; the server then calls HandleStream instead of Handle.
type Streamer interface {
	HandleStream(ctx context.Context, req *Request, w *ResponseStream) error
}

// ResponseStream sends a streamed answer: a head, then chunks, each sent
// as soon as the caller's flow-control window allows.
type ResponseStream struct {
	st       wire.Stream
	window   *wire.Window
	headSent bool
	// grpc: each Write is one gRPC message, sent length-prefixed.
	grpc bool
}

// WriteHead starts the answer (status 0 means 200). Write calls it with
// 200 when the deployment did not.
func (w *ResponseStream) WriteHead(status int, headers [][2]string) error {
	if w.headSent {
		return errors.New("the response head was already sent")
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.headSent = true
	return w.st.Send(wire.Out{Type: wire.TypeHead, Payload: wire.EncodeHead(wire.Head{Status: status, Headers: headers})})
}

// Write sends one chunk (split into frames of at most wire.ChunkSize),
// waiting while the caller has not consumed enough of what came before.
// In a gRPC call each chunk is one response message.
func (w *ResponseStream) Write(ctx context.Context, chunk []byte) error {
	if !w.headSent {
		if err := w.WriteHead(http.StatusOK, nil); err != nil {
			return err
		}
	}
	if w.grpc {
		chunk = wire.AppendMessage(nil, chunk)
	}
	for len(chunk) > 0 {
		n := min(len(chunk), wire.ChunkSize)
		if err := w.window.Take(ctx, n); err != nil {
			return err
		}
		if err := w.st.Send(wire.Out{Type: wire.TypeData, Payload: chunk[:n]}); err != nil {
			return err
		}
		chunk = chunk[n:]
	}
	return nil
}

// Options configures a Server.
type Options struct {
	ReplicaID          string
	MaxOngoingRequests int
	// WaitLoop is graceful_shutdown_wait_loop_s.
	WaitLoop time.Duration
	Logger   logr.Logger
}

// Server serves one replica.
type Server struct {
	dep  Deployment
	opts Options

	mu       sync.Mutex
	ongoing  int
	maxOng   int
	draining bool
	idle     chan struct{}
	conns    map[*wire.Conn]struct{}

	// work hands a call to an idle worker; idleWorkers counts them.
	work        chan *wire.ConnStream
	idleWorkers atomic.Int32
}

// maxIdleWorkers bounds the goroutines kept waiting for calls.
const maxIdleWorkers = 256

// dispatch serves a call on an idle worker, or on a new one: a worker
// that served a call before has its stack grown already, and no
// goroutine is created and torn down per call.
func (s *Server) dispatch(ctx context.Context, st *wire.ConnStream) {
	select {
	case s.work <- st:
	default:
		go s.worker(ctx, st)
	}
}

func (s *Server) worker(ctx context.Context, st *wire.ConnStream) {
	for {
		s.serveStream(ctx, st)
		if s.idleWorkers.Add(1) > maxIdleWorkers {
			s.idleWorkers.Add(-1)
			return
		}
		select {
		case st = <-s.work:
			s.idleWorkers.Add(-1)
		case <-ctx.Done():
			s.idleWorkers.Add(-1)
			return
		}
	}
}

// NewServer returns a Server for dep.
func NewServer(dep Deployment, opts Options) *Server {
	if opts.MaxOngoingRequests <= 0 {
		opts.MaxOngoingRequests = 5
	}
	return &Server{dep: dep, opts: opts, maxOng: opts.MaxOngoingRequests, idle: make(chan struct{}, 1), conns: map[*wire.Conn]struct{}{}, work: make(chan *wire.ConnStream)}
}

// Ongoing is the number of calls admitted and not finished.
func (s *Server) Ongoing() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ongoing
}

// Serve accepts agent connections on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting agent connections: %w", err)
		}
		conn := wire.NewConn(c, false, func(st *wire.ConnStream) {
			s.dispatch(ctx, st)
		})
		s.mu.Lock()
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		go func() {
			<-conn.Done()
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}

// Drain rejects new calls, waits WaitLoop, then until no call is ongoing or
// ctx ends (the agent's SIGKILL after graceful_shutdown_timeout_s).
func (s *Server) Drain(ctx context.Context) {
	s.mu.Lock()
	s.draining = true
	wait := s.opts.WaitLoop
	s.mu.Unlock()
	s.opts.Logger.Info("Draining replica", "replicaID", s.opts.ReplicaID, "ongoing", s.Ongoing())
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	for s.Ongoing() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-s.idle:
		case <-time.After(max(wait, 10*time.Millisecond)):
		}
	}
}

func (s *Server) admit() (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining || s.ongoing >= s.maxOng {
		return false, s.ongoing
	}
	s.ongoing++
	return true, s.ongoing
}

func (s *Server) release() {
	s.mu.Lock()
	s.ongoing--
	n := s.ongoing
	s.mu.Unlock()
	if n == 0 {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

func (s *Server) serveStream(ctx context.Context, st *wire.ConnStream) {
	defer st.Close()
	f, err := st.Recv(ctx)
	if err != nil || f.Type != wire.TypeOpen {
		return
	}
	meta, err := wire.DecodeMeta(f.Payload)
	if err != nil {
		_ = st.Send(wire.Out{Type: wire.TypeError, Payload: wire.JSON(wire.Error{Kind: wire.ErrInternal, Message: "malformed OPEN: " + err.Error()})})
		return
	}
	switch meta.Kind {
	case wire.KindHealth, wire.KindReconfigure, wire.KindStats:
		s.control(ctx, st, meta)
		return
	}
	ok, n := s.admit()
	if !ok {
		_ = st.Send(wire.Out{Type: wire.TypeAccept, Payload: wire.EncodeAccept(wire.Accept{Accepted: false, Ongoing: n})})
		return
	}
	defer s.release()
	// The ACCEPT waits in the connection's buffer: a quick answer takes it
	// along in the same write. A caller streaming its body waits for it,
	// so it goes at once when the body is not all here; a slow handler's
	// goes after acceptFlushDelay.
	if err := st.SendWithin(acceptFlushDelay, wire.Out{Type: wire.TypeAccept, Payload: wire.EncodeAccept(wire.Accept{Accepted: true, Ongoing: n})}); err != nil {
		return
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := readBody(callCtx, st)
	if err != nil {
		return
	}
	window := wire.NewWindow(meta.Window)
	// A CANCEL after the body (or the connection ending) cancels the
	// handler; CREDIT frames open the window of a streamed answer.
	st.OnControl(func(f *wire.Frame) {
		if f == nil || f.Type == wire.TypeCancel {
			cancel()
			return
		}
		window.Give(wire.DecodeCredit(f.Payload))
	})
	if sd, ok := s.dep.(Streamer); ok {
		s.stream(callCtx, st, sd, &Request{Meta: meta, Body: body}, window)
		return
	}
	resp, err := s.dep.Handle(callCtx, &Request{Meta: meta, Body: body})
	if err != nil {
		if callCtx.Err() != nil {
			return
		}
		_ = st.Send(wire.Out{Type: wire.TypeError, Payload: wire.JSON(wire.Error{Kind: wire.ErrUser, Message: err.Error()})})
		return
	}
	if meta.Kind == wire.KindGRPC {
		// A unary gRPC answer is one message.
		resp = &Response{Status: resp.Status, Headers: resp.Headers, Body: wire.AppendMessage(nil, resp.Body)}
	}
	_ = st.Send(responseFrames(resp)...)
}

func (s *Server) stream(ctx context.Context, st wire.Stream, sd Streamer, req *Request, window *wire.Window) {
	w := &ResponseStream{st: st, window: window, grpc: req.Meta.Kind == wire.KindGRPC}
	err := sd.HandleStream(ctx, req, w)
	if ctx.Err() != nil {
		// The caller cancelled: nobody reads the rest.
		return
	}
	if err != nil {
		_ = st.Send(wire.Out{Type: wire.TypeError, Payload: wire.JSON(wire.Error{Kind: wire.ErrUser, Message: err.Error()})})
		return
	}
	if !w.headSent {
		if w.WriteHead(http.StatusOK, nil) != nil {
			return
		}
	}
	_ = st.Send(wire.Out{Type: wire.TypeEnd})
}

// responseFrames encodes a whole response.
func responseFrames(resp *Response) []wire.Out {
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	out := []wire.Out{{Type: wire.TypeHead, Payload: wire.EncodeHead(wire.Head{Status: status, Headers: resp.Headers})}}
	for b := resp.Body; len(b) > 0; {
		n := min(len(b), wire.ChunkSize)
		out = append(out, wire.Out{Type: wire.TypeData, Payload: b[:n]})
		b = b[n:]
	}
	return append(out, wire.Out{Type: wire.TypeEnd})
}

// acceptFlushDelay bounds how long an ACCEPT waits for the answer to
// share its write.
const acceptFlushDelay = 200 * time.Microsecond

// readBody collects DATA frames until END. Before waiting for frames it
// flushes what the stream left buffered (the ACCEPT the caller may be
// waiting for to send the rest).
func readBody(ctx context.Context, st *wire.ConnStream) ([]byte, error) {
	var body []byte
	for {
		f, ok := st.TryRecv()
		if !ok {
			if err := st.Flush(); err != nil {
				return nil, err
			}
			var err error
			if f, err = st.Recv(ctx); err != nil {
				return nil, err
			}
		}
		switch f.Type {
		case wire.TypeData:
			body = append(body, f.Payload...)
		case wire.TypeEnd:
			return body, nil
		case wire.TypeCancel:
			return nil, context.Canceled
		}
	}
}

func (s *Server) control(ctx context.Context, st *wire.ConnStream, meta wire.Meta) {
	_ = st.Send(wire.Out{Type: wire.TypeAccept, Payload: wire.EncodeAccept(wire.Accept{Accepted: true, Ongoing: s.Ongoing()})})
	body, err := readBody(ctx, st)
	if err != nil {
		return
	}
	var cerr error
	var answer []byte
	switch meta.Kind {
	case wire.KindHealth:
		cerr = s.dep.CheckHealth(ctx)
	case wire.KindReconfigure:
		var rc wire.Reconfigure
		if cerr = json.Unmarshal(body, &rc); cerr == nil {
			cerr = s.reconfigure(rc)
		}
	case wire.KindStats:
		answer = wire.JSON(wire.Stats{Ongoing: s.Ongoing()})
	}
	if cerr != nil {
		_ = st.Send(wire.Out{Type: wire.TypeError, Payload: wire.JSON(wire.Error{Kind: wire.ErrUser, Message: cerr.Error()})})
		return
	}
	_ = st.Send(responseFrames(&Response{Status: http.StatusOK, Body: answer})...)
}

func (s *Server) reconfigure(rc wire.Reconfigure) error {
	s.mu.Lock()
	if rc.MaxOngoingRequests > 0 {
		s.maxOng = rc.MaxOngoingRequests
	}
	if rc.GracefulShutdownWaitLoopS >= 0 {
		s.opts.WaitLoop = time.Duration(rc.GracefulShutdownWaitLoopS * float64(time.Second))
	}
	s.mu.Unlock()
	if err := s.dep.Reconfigure(rc.UserConfig); err != nil {
		return fmt.Errorf("reconfigure failed: %w", err)
	}
	return nil
}

// ErrUnhealthy is what built-ins return from CheckHealth when told to fail.
var ErrUnhealthy = errors.New("replica is unhealthy")
