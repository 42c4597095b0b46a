// Package wire is the protocol between a node's Serve agent and its replica
// processes: length-prefixed frames, multiplexed by stream id over one Unix
// socket connection. The same frames travel, one call per HTTP/2 stream,
// between nodes (see Tunnel). python/rayk8s/serve/_wire.py is the Python
// side; keep the two in step.
//
// A frame is a 9-byte header — payload length (uint32, big endian), stream
// id (uint32), type (byte) — followed by the payload. The side that dials
// opens odd stream ids, the side that accepts opens even ones, so both can
// start calls (replicas call other deployments through handles).
//
// A call: the caller sends OPEN (JSON Meta), DATA* (request body), END. The
// replica answers ACCEPT (JSON Accept) first — a rejection ends the call,
// which is how max_ongoing_requests stays a hard cap — then HEAD (JSON
// Head), DATA* and END, or ERROR (JSON Error) at any point. CANCEL from the
// caller abandons the call.
//
// Flow control: a caller that sets Meta.Window lets the replica send at most
// that many bytes of response DATA ahead of what the caller consumed; the
// caller returns bytes with CREDIT frames (a uint32, big endian) as it
// consumes them, so a slow client slows the replica's generator instead of
// piling the answer up in a queue on the way.
package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rayk8s/rayk8s/internal/serve/rawsock"
)

// Frame types.
const (
	TypeOpen   byte = 1
	TypeData   byte = 2
	TypeEnd    byte = 3
	TypeAccept byte = 4
	TypeHead   byte = 5
	TypeCancel byte = 6
	TypeError  byte = 7
	TypeCredit byte = 8
)

// DefaultWindow is the flow-control window callers offer: enough for a
// few full DATA frames in flight per call.
const DefaultWindow = 4 * ChunkSize

// HeaderSize is the size of a frame header.
const HeaderSize = 9

// MaxPayload bounds one frame; bodies are sent in ChunkSize pieces.
const MaxPayload = 16 << 20

// ChunkSize is the largest DATA payload senders produce.
const ChunkSize = 64 << 10

// Call kinds in Meta.Kind.
const (
	KindHTTP        = "http"
	KindHandle      = "handle"
	KindHealth      = "health"
	KindReconfigure = "reconfigure"
	KindStats       = "stats"
	// KindGRPC is a call from the gRPC proxy: Method is the RPC's method
	// name (the replica method called), Path the full "/pkg.Service/Method",
	// Headers the request metadata, DATA the serialized request message.
	// The answer's DATA is a sequence of messages, each a uint32 (big
	// endian) length and the serialized message, so a message may span
	// frames; END may carry the gRPC status and trailing metadata (End.GRPC).
	KindGRPC = "grpc"
)

// Meta opens a stream.
type Meta struct {
	Kind      string `json:"kind"`
	RequestID string `json:"request_id,omitempty"`
	// App and Deployment name the target of a handle call a replica makes;
	// an empty Deployment means the application's ingress.
	App        string `json:"app,omitempty"`
	Deployment string `json:"deployment,omitempty"`
	// Method is the HTTP method of http calls and the method name of
	// handle calls.
	Method      string      `json:"method,omitempty"`
	Path        string      `json:"path,omitempty"`
	Query       string      `json:"query,omitempty"`
	RoutePrefix string      `json:"route_prefix,omitempty"`
	Headers     [][2]string `json:"headers,omitempty"`
	Client      string      `json:"client,omitempty"`
	// Encoding of a handle call's DATA: "json" or "pickle".
	Encoding           string `json:"encoding,omitempty"`
	MultiplexedModelID string `json:"multiplexed_model_id,omitempty"`
	// TimeoutMS bounds a handle call (0: none).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
	// Stream asks for a streamed handle call: each DATA frame of the answer
	// is one item the method yielded.
	Stream bool `json:"stream,omitempty"`
	// Window is the caller's flow-control window in bytes (0: none, the
	// replica sends without waiting).
	Window int `json:"window,omitempty"`
	// GRPCServicerFunctions are grpc_options.grpc_servicer_functions, sent
	// with gRPC calls so a Python replica can decode the request with the
	// user's generated classes.
	GRPCServicerFunctions []string `json:"grpc_servicer_functions,omitempty"`
}

// Accept is a replica's answer to OPEN.
type Accept struct {
	Accepted bool `json:"accepted"`
	Ongoing  int  `json:"ongoing"`
	// Models are the multiplexed model IDs the replica holds (nil: it
	// multiplexes none). END may carry the same report, as JSON End.
	Models []string `json:"models,omitempty"`
}

// End is the optional payload of a replica's END.
type End struct {
	Models []string `json:"models,omitempty"`
	// GRPC is the status a gRPC call ends with (nil: OK).
	GRPC *GRPCStatus `json:"grpc,omitempty"`
}

// GRPCStatus is what a replica's grpc_context set: a status code (Go's
// codes.Code numbering), details and trailing metadata.
type GRPCStatus struct {
	Code     int         `json:"code"`
	Details  string      `json:"details,omitempty"`
	Trailers [][2]string `json:"trailers,omitempty"`
}

// AppendMessage appends one length-prefixed message of a gRPC answer.
func AppendMessage(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// Messages splits a gRPC answer's DATA back into messages: feed it the
// chunks as they arrive and take the messages completed so far.
type Messages struct{ buf []byte }

// Feed adds a chunk and returns the messages it completed.
func (m *Messages) Feed(chunk []byte) ([][]byte, error) {
	m.buf = append(m.buf, chunk...)
	var out [][]byte
	for len(m.buf) >= 4 {
		n := binary.BigEndian.Uint32(m.buf[:4])
		if n > MaxPayload {
			return out, fmt.Errorf("gRPC message of %d bytes exceeds the %d byte limit", n, MaxPayload)
		}
		if len(m.buf) < 4+int(n) {
			break
		}
		out = append(out, m.buf[4:4+n:4+n])
		m.buf = m.buf[4+n:]
	}
	if len(m.buf) == 0 {
		m.buf = nil
	}
	return out, nil
}

// Pending reports whether a partial message is left (a cut answer).
func (m *Messages) Pending() bool { return len(m.buf) > 0 }

// Head starts a response.
type Head struct {
	Status  int         `json:"status"`
	Headers [][2]string `json:"headers,omitempty"`
}

// Error ends a call that failed. Kind tells callers how to map it: "user"
// (an exception in user code: 500 with Message, the traceback), "unavailable"
// (503), "backpressure" (503), "timeout" (408), "cancelled", "not_found".
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Error kinds.
const (
	ErrUser         = "user"
	ErrUnavailable  = "unavailable"
	ErrBackpressure = "backpressure"
	ErrTimeout      = "timeout"
	ErrCancelled    = "cancelled"
	ErrNotFound     = "not_found"
	ErrInternal     = "internal"
)

func (e *Error) Error() string { return e.Message }

// Reconfigure is the DATA of a reconfigure call.
type Reconfigure struct {
	UserConfig                json.RawMessage `json:"user_config"`
	MaxOngoingRequests        int             `json:"max_ongoing_requests"`
	GracefulShutdownWaitLoopS float64         `json:"graceful_shutdown_wait_loop_s"`
}

// Stats is the body of a stats call's answer.
type Stats struct {
	Ongoing int `json:"ongoing"`
}

// Credit encodes a CREDIT payload returning n bytes of window.
func Credit(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

// DecodeCredit decodes a CREDIT payload (a malformed one returns 0).
func DecodeCredit(p []byte) int {
	if len(p) != 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(p))
}

// Frame is one decoded frame.
type Frame struct {
	Stream  uint32
	Type    byte
	Payload []byte
}

// AppendFrame appends the encoding of a frame to b.
func AppendFrame(b []byte, stream uint32, typ byte, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, stream)
	b = append(b, typ)
	return append(b, payload...)
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (Frame, error) {
	return readFrame(r, nil)
}

// Small payloads are carved from slabs of slabSize bytes: a connection's
// ACCEPT, HEAD and OPEN payloads cost one allocation per slab instead of
// one each. A slab is never reused; it is freed once no payload cut from
// it is referenced.
const (
	slabSize   = 8 << 10
	slabMaxCut = 1 << 10
)

type slab struct{ free []byte }

func (s *slab) take(n int) []byte {
	if s == nil || n > slabMaxCut {
		return make([]byte, n)
	}
	if len(s.free) < n {
		s.free = make([]byte, slabSize)
	}
	p := s.free[:n:n]
	s.free = s.free[n:]
	return p
}

func readFrame(r io.Reader, sl *slab) (Frame, error) {
	var n uint32
	var f Frame
	if br, ok := r.(*bufio.Reader); ok {
		// The header is decoded in place: an array handed to
		// io.ReadFull would escape, one allocation per frame.
		h, err := br.Peek(HeaderSize)
		if err != nil {
			if len(h) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		n, f = decodeHeader(h)
		_, _ = br.Discard(HeaderSize)
	} else {
		h := make([]byte, HeaderSize)
		if _, err := io.ReadFull(r, h); err != nil {
			return Frame{}, err
		}
		n, f = decodeHeader(h)
	}
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("frame of %d bytes exceeds the %d byte limit", n, MaxPayload)
	}
	if n > 0 {
		f.Payload = sl.take(int(n))
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			return Frame{}, fmt.Errorf("reading frame payload: %w", err)
		}
	}
	return f, nil
}

func decodeHeader(h []byte) (uint32, Frame) {
	return binary.BigEndian.Uint32(h[:4]), Frame{Stream: binary.BigEndian.Uint32(h[4:8]), Type: h[8]}
}

// JSON encodes v for a frame payload; the types above always encode.
func JSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("wire: encoding %T: %v", v, err))
	}
	return b
}

// Stream is one call's frames in both directions.
type Stream interface {
	// Send writes frames of this stream, in order, at once. It does not
	// keep the payloads: callers may reuse them when it returns.
	Send(frames ...Out) error
	// Recv returns the next frame, or an error when the stream or its
	// connection ends, or ctx is done.
	Recv(ctx context.Context) (Frame, error)
	// Close releases the stream; frames that arrive later are dropped.
	Close()
}

// MetaOpener is implemented by streams that record what the OPEN frame
// they carry says (the agent's metering): a caller holding the Meta tells
// them, which spares them decoding the frame again.
type MetaOpener interface {
	OpenMeta(kind, routePrefix string)
}

// Out is a frame to send on a stream.
type Out struct {
	Type    byte
	Payload []byte
}

// ErrClosed is returned on streams of a closed connection.
var ErrClosed = errors.New("connection closed")

// Conn multiplexes streams over one connection.
type Conn struct {
	c      net.Conn
	onOpen func(*ConnStream)

	wmu sync.Mutex
	w   *bufio.Writer
	// hdr is the frame header being written (under wmu).
	hdr [HeaderSize]byte
	// waiting counts writers blocked on wmu (see write).
	waiting atomic.Int32
	// flushing is set while the flusher goroutine owes a flush; kick
	// wakes it.
	flushing bool
	kick     chan struct{}
	// later flushes what SendWithin buffered when nothing else has by
	// then; laterArmed says it is pending (both under wmu). One timer per
	// connection, not one per call.
	later      *time.Timer
	laterArmed bool
	// open counts the streams in the streams map (calls in progress).
	open atomic.Int32

	mu      sync.Mutex
	streams map[uint32]*ConnStream
	nextID  uint32
	err     error
	done    chan struct{}
}

// NewConn starts reading c. dialer says whether this side dialed (it then
// opens odd stream ids). onOpen, when set, receives streams the peer opens;
// it is called from the read loop and must not block.
func NewConn(c net.Conn, dialer bool, onOpen func(*ConnStream)) *Conn {
	c = rawsock.Wrap(c)
	cn := &Conn{c: c, onOpen: onOpen, w: bufio.NewWriterSize(c, 64<<10), streams: map[uint32]*ConnStream{}, done: make(chan struct{})}
	if dialer {
		cn.nextID = 1
	} else {
		cn.nextID = 2
	}
	cn.kick = make(chan struct{}, 1)
	go cn.readLoop()
	go cn.flushLoop()
	return cn
}

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (after Done).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection and every stream on it.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Open starts a new stream.
func (c *Conn) Open() (*ConnStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	s := newConnStream(c, c.nextID)
	c.nextID += 2
	c.streams[s.id] = s
	c.open.Store(int32(len(c.streams)))
	return s, nil
}

func (c *Conn) readLoop() {
	r := bufio.NewReaderSize(c.c, 64<<10)
	var sl slab
	for {
		f, err := readFrame(r, &sl)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = ErrClosed
			}
			c.fail(err)
			return
		}
		c.mu.Lock()
		s, ok := c.streams[f.Stream]
		if !ok && f.Type == TypeOpen && c.onOpen != nil && f.Stream%2 != c.nextID%2 {
			s = newConnStream(c, f.Stream)
			c.streams[f.Stream] = s
			c.open.Store(int32(len(c.streams)))
			c.mu.Unlock()
			s.push(f)
			c.onOpen(s)
			continue
		}
		c.mu.Unlock()
		if ok {
			s.push(f)
		}
	}
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	streams := c.streams
	c.streams = map[uint32]*ConnStream{}
	c.open.Store(0)
	c.mu.Unlock()
	_ = c.c.Close()
	for _, s := range streams {
		s.fail(err)
	}
	close(c.done)
}

// flushLoop flushes for writers that found other calls in progress: it
// yields first, so the frames of every goroutine ready to run join the
// same write.
func (c *Conn) flushLoop() {
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		runtime.Gosched()
		c.wmu.Lock()
		c.flushing = false
		if c.w.Buffered() > 0 {
			if err := c.w.Flush(); err != nil {
				c.fail(err)
			}
		}
		c.wmu.Unlock()
	}
}

// Flush sends what SendLater left buffered.
func (c *Conn) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w.Buffered() == 0 {
		return nil
	}
	if err := c.w.Flush(); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

func (c *Conn) write(id uint32, frames []Out, flush bool) error {
	for _, f := range frames {
		if len(f.Payload) > MaxPayload {
			return fmt.Errorf("frame of %d bytes exceeds the %d byte limit", len(f.Payload), MaxPayload)
		}
	}
	c.waiting.Add(1)
	c.wmu.Lock()
	c.waiting.Add(-1)
	defer c.wmu.Unlock()
	h := c.hdr[:]
	for _, f := range frames {
		binary.BigEndian.PutUint32(h[:4], uint32(len(f.Payload)))
		binary.BigEndian.PutUint32(h[4:8], id)
		h[8] = f.Type
		if _, err := c.w.Write(h[:]); err != nil {
			c.fail(err)
			return err
		}
		if _, err := c.w.Write(f.Payload); err != nil {
			c.fail(err)
			return err
		}
	}
	// Flush when idle: a writer that another one waits behind leaves its
	// frames in the buffer for the last of them to flush, so concurrent
	// calls share one syscall (and one wake-up of the peer) under load,
	// while a lone writer still sends at once.
	if !flush || c.waiting.Load() > 0 || c.flushing {
		return nil
	}
	if c.open.Load() > 1 {
		// Other calls are in progress, and their frames are about to
		// follow: the flusher sends them all in one write once the
		// goroutines ready to run have run.
		c.flushing = true
		select {
		case c.kick <- struct{}{}:
		default:
		}
		return nil
	}
	if err := c.w.Flush(); err != nil {
		c.fail(err)
		return err
	}
	return nil
}

// ConnStream is a stream of a Conn.
type ConnStream struct {
	frameQueue
	id   uint32
	conn *Conn
}

func newConnStream(c *Conn, id uint32) *ConnStream {
	return &ConnStream{id: id, conn: c, frameQueue: newFrameQueue()}
}

// ID is the stream id.
func (s *ConnStream) ID() uint32 { return s.id }

// Send implements Stream.
func (s *ConnStream) Send(frames ...Out) error {
	if err := s.failed(); err != nil {
		return err
	}
	return s.conn.write(s.id, frames, true)
}

// SendLater buffers frames without flushing them: the next Send on the
// connection, or Flush, sends them along. A replica sends its ACCEPT this
// way so that a quick answer's ACCEPT, HEAD and END share one write (and
// wake the caller once).
func (s *ConnStream) SendLater(frames ...Out) error {
	if err := s.failed(); err != nil {
		return err
	}
	return s.conn.write(s.id, frames, false)
}

// SendWithin buffers frames like SendLater and makes sure they leave
// within d: a replica's ACCEPT waits for the answer to share its write, but
// a slow handler's caller still learns of it soon.
func (s *ConnStream) SendWithin(d time.Duration, frames ...Out) error {
	if err := s.failed(); err != nil {
		return err
	}
	c := s.conn
	if err := c.write(s.id, frames, false); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.laterArmed || c.w.Buffered() == 0 {
		return nil
	}
	c.laterArmed = true
	if c.later == nil {
		c.later = time.AfterFunc(d, c.flushLater)
	} else {
		c.later.Reset(d)
	}
	return nil
}

func (c *Conn) flushLater() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.laterArmed = false
	if c.w.Buffered() > 0 {
		if err := c.w.Flush(); err != nil {
			c.fail(err)
		}
	}
}

// Flush sends what SendLater left buffered on the stream's connection.
func (s *ConnStream) Flush() error { return s.conn.Flush() }

// Close implements Stream.
func (s *ConnStream) Close() {
	s.conn.mu.Lock()
	delete(s.conn.streams, s.id)
	s.conn.open.Store(int32(len(s.conn.streams)))
	s.conn.mu.Unlock()
	s.fail(ErrClosed)
}

// frameQueue holds a stream's received frames. It is unbounded so that one
// slow reader never stalls the other streams of a connection.
type frameQueue struct {
	mu    sync.Mutex
	queue []Frame
	// inline holds the first frames: a call's answer (ACCEPT, HEAD, END)
	// fits without growing the queue.
	inline [4]Frame
	err    error
	signal chan struct{}
	// waiting is set while Recv waits for signal: a push signals only
	// then, not for every frame (a stream has one reader at a time).
	waiting bool
	// onControl, when set, takes CANCEL and CREDIT frames (see OnControl).
	onControl func(*Frame)
}

func newFrameQueue() frameQueue { return frameQueue{signal: make(chan struct{}, 1)} }

func (q *frameQueue) push(f Frame) {
	q.mu.Lock()
	if fn := q.onControl; fn != nil && (f.Type == TypeCancel || f.Type == TypeCredit) {
		q.mu.Unlock()
		// A copy, so only control frames (whose address fn gets) are
		// moved to the heap.
		c := f
		fn(&c)
		return
	}
	if len(q.queue) == 0 {
		q.queue = q.inline[:0]
	}
	q.queue = append(q.queue, f)
	waiting := q.waiting
	q.waiting = false
	q.mu.Unlock()
	if waiting {
		q.wake()
	}
}

// OnControl hands the stream's CANCEL and CREDIT frames to fn as they
// arrive — those already received first — instead of to Recv, and calls
// fn(nil) once when the stream fails or closes. A replica serving a call
// learns of cancellation and credit this way without a goroutine per call
// waiting in Recv. fn runs on the connection's read loop: it must not
// block.
func (q *frameQueue) OnControl(fn func(*Frame)) {
	q.mu.Lock()
	var control []Frame
	rest := q.queue[:0]
	for _, f := range q.queue {
		if f.Type == TypeCancel || f.Type == TypeCredit {
			control = append(control, f)
		} else {
			rest = append(rest, f)
		}
	}
	clear(q.queue[len(rest):])
	q.queue = rest
	q.onControl = fn
	failed := q.err != nil
	q.mu.Unlock()
	for i := range control {
		fn(&control[i])
	}
	if failed {
		fn(nil)
	}
}

func (q *frameQueue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *frameQueue) fail(err error) {
	q.mu.Lock()
	first := q.err == nil
	if first {
		q.err = err
	}
	fn := q.onControl
	q.mu.Unlock()
	q.wake()
	if first && fn != nil {
		fn(nil)
	}
}

func (q *frameQueue) failed() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// Recv implements Stream: queued frames first, then the failure.
func (q *frameQueue) Recv(ctx context.Context) (Frame, error) {
	for {
		q.mu.Lock()
		if len(q.queue) > 0 {
			f := q.queue[0]
			q.queue[0] = Frame{}
			q.queue = q.queue[1:]
			q.mu.Unlock()
			return f, nil
		}
		err := q.err
		q.waiting = err == nil
		q.mu.Unlock()
		if err != nil {
			return Frame{}, err
		}
		select {
		case <-q.signal:
		case <-ctx.Done():
			q.mu.Lock()
			q.waiting = false
			q.mu.Unlock()
			return Frame{}, ctx.Err()
		}
	}
}

// TryRecv returns the next received frame if one is waiting.
func (q *frameQueue) TryRecv() (Frame, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return Frame{}, false
	}
	f := q.queue[0]
	q.queue[0] = Frame{}
	q.queue = q.queue[1:]
	return f, true
}

// Buffered reports whether received frames are waiting to be read.
func (q *frameQueue) Buffered() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue) > 0
}
