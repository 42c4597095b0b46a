// Package corewire is the protocol between a node agent and the Python
// processes of Ray core on its node (drivers, task workers, actors), over a
// Unix socket. python/ray/_private/wire.py is the Python side; keep the two
// in step.
//
// A message is an 8-byte prefix — header length and body length, both
// uint32 big endian — then a JSON header, then the body: the concatenation
// of the message's binary parts (pickled values), whose sizes the header
// lists. Either side may send requests (ID > 0, Reply false); the other
// answers each with a message of the same ID and Reply true, whose Error,
// when set, is a one-line reason. Requests are answered in any order.
package corewire

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// MaxHeader bounds a header; MaxBody bounds one message's binary parts.
const (
	MaxHeader = 16 << 20
	MaxBody   = 1 << 31
)

// Header is a message's JSON header.
type Header struct {
	ID    uint64 `json:"id,omitempty"`
	Op    string `json:"op,omitempty"`
	Reply bool   `json:"reply,omitempty"`
	Error string `json:"error,omitempty"`
	// ErrorType names a Python exception class for errors the caller raises
	// as that type ("GetTimeoutError", "ValueError", ...).
	ErrorType string          `json:"error_type,omitempty"`
	Sizes     []int           `json:"b,omitempty"`
	Body      json.RawMessage `json:"body,omitempty"`
}

// Message is one header with its binary parts.
type Message struct {
	Header
	Parts [][]byte
}

// Decode unmarshals the header's body into v.
func (m *Message) Decode(v any) error {
	if len(m.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(m.Body, v); err != nil {
		return fmt.Errorf("decoding %s body: %w", m.Op, err)
	}
	return nil
}

// Read reads one message.
func Read(r *bufio.Reader) (*Message, error) {
	var prefix [8]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	hl, bl := binary.BigEndian.Uint32(prefix[:4]), binary.BigEndian.Uint32(prefix[4:])
	if hl > MaxHeader || uint64(bl) > MaxBody {
		return nil, fmt.Errorf("message too large: header %d bytes, body %d bytes", hl, bl)
	}
	raw := make([]byte, hl)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	m := &Message{}
	if err := json.Unmarshal(raw, &m.Header); err != nil {
		return nil, fmt.Errorf("decoding message header: %w", err)
	}
	body := make([]byte, bl)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	total := 0
	for _, n := range m.Sizes {
		if n < 0 || total+n > len(body) {
			return nil, errors.New("message part sizes exceed its body")
		}
		m.Parts = append(m.Parts, body[total:total+n:total+n])
		total += n
	}
	return m, nil
}

// Write writes one message; Sizes is filled from Parts.
func Write(w io.Writer, m *Message) error {
	m.Sizes = m.Sizes[:0]
	bl := 0
	for _, p := range m.Parts {
		m.Sizes = append(m.Sizes, len(p))
		bl += len(p)
	}
	raw, err := json.Marshal(&m.Header)
	if err != nil {
		return fmt.Errorf("encoding message header: %w", err)
	}
	if uint64(bl) > MaxBody {
		return fmt.Errorf("message body of %d bytes exceeds %d", bl, uint64(MaxBody))
	}
	var prefix [8]byte
	binary.BigEndian.PutUint32(prefix[:4], uint32(len(raw)))
	binary.BigEndian.PutUint32(prefix[4:], uint32(bl))
	bufs := net.Buffers{prefix[:], raw}
	for _, p := range m.Parts {
		bufs = append(bufs, p)
	}
	_, err = bufs.WriteTo(w)
	return err
}

// RemoteError is an error reply.
type RemoteError struct {
	Type    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Handler answers a request; the returned message (may be nil) becomes the
// reply. Errors become error replies: a *RemoteError keeps its type.
type Handler func(c *Conn, req *Message) (*Message, error)

// Conn is one connection that both sends and serves requests.
type Conn struct {
	nc      net.Conn
	handler Handler
	wmu     sync.Mutex
	w       *bufio.Writer

	mu      sync.Mutex
	nextID  uint64
	calls   map[uint64]pending
	closed  bool
	closeCh chan struct{}

	// Value is for the owner to attach state (who is on the other end).
	Value any

	inline map[string]bool
}

// pending is a request waiting for its reply: a channel for Start, a
// callback for StartFunc.
type pending struct {
	ch chan *Message
	fn func(*Message, error)
}

// Inline makes messages of these ops run on the reading goroutine, one
// after the other: they keep the order the peer sent them in, and a later
// request on the connection sees their effect, with no goroutine started
// per message. Their handlers must be quick and never block: a request
// whose answer must wait is answered later, from elsewhere, by returning
// ErrLater and calling Answer. Call it before Serve.
func (c *Conn) Inline(ops ...string) {
	if c.inline == nil {
		c.inline = map[string]bool{}
	}
	for _, op := range ops {
		c.inline[op] = true
	}
}

// NewConn wraps nc; call Serve to start reading.
func NewConn(nc net.Conn, handler Handler) *Conn {
	return &Conn{nc: nc, handler: handler, w: bufio.NewWriterSize(nc, 64<<10), calls: map[uint64]pending{}, closeCh: make(chan struct{})}
}

// Done is closed when the connection ended.
func (c *Conn) Done() <-chan struct{} { return c.closeCh }

// Serve reads messages until the connection ends; requests run in their
// own goroutines so that a slow one never blocks replies.
func (c *Conn) Serve() error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	defer c.Close()
	for {
		m, err := Read(r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if m.Reply {
			c.mu.Lock()
			p, ok := c.calls[m.ID]
			delete(c.calls, m.ID)
			c.mu.Unlock()
			switch {
			case !ok:
			case p.fn != nil:
				p.fn(m, replyError(m))
			default:
				p.ch <- m
			}
			continue
		}
		if c.inline[m.Op] {
			c.answer(m)
			continue
		}
		go c.answer(m)
	}
}

// ErrLater is what a handler returns for a request it answers later with
// Answer.
var ErrLater = errors.New("corewire: the request is answered later")

func (c *Conn) answer(req *Message) {
	resp, err := c.handler(c, req)
	if errors.Is(err, ErrLater) {
		return
	}
	c.Answer(req, resp, err)
}

// Answer sends the reply to req: resp (may be nil), or err as an error
// reply, where a *RemoteError keeps its type. It does nothing for a
// notification, which nobody waits for.
func (c *Conn) Answer(req *Message, resp *Message, err error) {
	if req.ID == 0 {
		return
	}
	if resp == nil {
		resp = &Message{}
	}
	resp.ID, resp.Reply, resp.Op = req.ID, true, ""
	if err != nil {
		resp.Error = err.Error()
		var re *RemoteError
		if errors.As(err, &re) {
			resp.ErrorType = re.Type
		}
		resp.Parts = nil
	}
	_ = c.Send(resp)
}

// Notify sends a request that gets no reply (ID 0).
func (c *Conn) Notify(op string, body any) error {
	return c.Send(&Message{Header: Header{Op: op, Body: JSON(body)}})
}

// Send writes m.
func (c *Conn) Send(m *Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := Write(c.w, m); err != nil {
		return err
	}
	return c.w.Flush()
}

// ErrClosed is returned by Call once the connection ended.
var ErrClosed = errors.New("connection closed")

// Call sends a request and waits for its reply (or the end of the
// connection). An error reply is returned as *RemoteError.
func (c *Conn) Call(req *Message) (*Message, error) {
	wait, err := c.Start(req)
	if err != nil {
		return nil, err
	}
	return wait()
}

// Close ends the connection.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.closeCh)
	var fns []func(*Message, error)
	for id, p := range c.calls {
		if p.fn != nil {
			fns = append(fns, p.fn)
			delete(c.calls, id)
		}
	}
	c.mu.Unlock()
	_ = c.nc.Close()
	for _, fn := range fns {
		go fn(nil, ErrClosed)
	}
}

// JSON marshals v for a message body; values here always marshal.
func JSON(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("corewire: marshalling %T: %v", v, err))
	}
	return raw
}

// Start sends a request and returns a function that waits for its reply:
// callers that must keep the order of their requests (actor calls) send in
// order and wait concurrently.
func (c *Conn) Start(req *Message) (func() (*Message, error), error) {
	ch := make(chan *Message, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.nextID++
	req.ID, req.Reply = c.nextID, false
	c.calls[req.ID] = pending{ch: ch}
	c.mu.Unlock()
	if err := c.Send(req); err != nil {
		c.Close()
		return nil, fmt.Errorf("sending %s: %w", req.Op, err)
	}
	return func() (*Message, error) {
		select {
		case m := <-ch:
			return m, replyError(m)
		case <-c.closeCh:
			return nil, ErrClosed
		}
	}, nil
}

// StartFunc sends a request and calls done with its reply, or with
// ErrClosed when the connection ends first. done runs on the reading
// goroutine (so it must be quick) and saves the hand-over to a waiting
// goroutine that Start costs; an error return means the request was not
// sent and done will not run.
func (c *Conn) StartFunc(req *Message, done func(*Message, error)) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.nextID++
	req.ID, req.Reply = c.nextID, false
	id := req.ID
	c.calls[id] = pending{fn: done}
	c.mu.Unlock()
	if err := c.Send(req); err != nil {
		c.mu.Lock()
		_, mine := c.calls[id]
		delete(c.calls, id)
		c.mu.Unlock()
		c.Close()
		if !mine {
			// Close got there first and owns done now.
			return nil
		}
		return fmt.Errorf("sending %s: %w", req.Op, err)
	}
	return nil
}

// replyError is a reply's error as a *RemoteError, or nil.
func replyError(m *Message) error {
	if m.Error != "" {
		return &RemoteError{Type: m.ErrorType, Message: m.Error}
	}
	return nil
}
