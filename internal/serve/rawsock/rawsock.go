package rawsock

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Wrap returns c with Read and Write done by raw system calls when c is a
// TCP or Unix stream socket; any other connection (a pipe, TLS, a wrapper)
// is returned as it is. Everything else, deadlines, Close and addresses
// included, is c's own.
func Wrap(c net.Conn) net.Conn {
	var sc socket
	var network string
	switch t := c.(type) {
	case *net.TCPConn:
		sc, network = t, "tcp"
	case *net.UnixConn:
		sc, network = t, "unix"
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil || !isStream(rc) {
		// Datagram and seqpacket sockets keep message boundaries that a
		// stream's Read does not.
		return c
	}
	w := &conn{Conn: c, half: sc, rc: rc, network: network}
	w.r.call, w.r.fn = rc.Read, w.r.read
	w.w.call, w.w.fn = rc.Write, w.w.write
	return w
}

// socket is what TCPConn and UnixConn have beyond net.Conn that a wrapped
// connection keeps.
type socket interface {
	syscall.Conn
	CloseWrite() error
}

// conn is a stream socket whose Read and Write bypass the net package's
// system-call wrappers. Concurrent Reads (or Writes) are serialized, as
// the net package serializes them.
type conn struct {
	net.Conn
	half    socket
	rc      syscall.RawConn
	network string
	r       op
	w       op
}

// op is one direction's call in progress. call is the RawConn's Read or
// Write and fn the op's read or write; both method values are made once,
// so that a call allocates nothing.
type op struct {
	mu   sync.Mutex
	p    []byte
	n    int
	err  error
	call func(func(fd uintptr) bool) error
	fn   func(fd uintptr) bool
}

func (o *op) read(fd uintptr) bool {
	for {
		n, errno := rawRead(fd, o.p)
		switch errno {
		case 0:
			o.n = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // the poller parks the goroutine until readable
		default:
			o.err = errno
			return true
		}
	}
}

func (o *op) write(fd uintptr) bool {
	for o.n < len(o.p) {
		n, errno := rawWrite(fd, o.p[o.n:])
		switch errno {
		case 0:
			o.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // the poller parks the goroutine until writable
		default:
			o.err = errno
			return true
		}
	}
	return true
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.do(&c.r, p, "read")
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.do(&c.w, p, "write")
}

// do runs o's call on p and reports its errors as the net package does.
func (c *conn) do(o *op, p []byte, name string) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.n, o.err = p, 0, nil
	err := o.call(o.fn)
	n, serr := o.n, o.err
	o.p = nil
	if err != nil {
		return n, c.opError(name, err)
	}
	if serr != nil {
		return n, c.opError(name, os.NewSyscallError(name, serr))
	}
	return n, nil
}

// opError reports err as the net package reports a failed Read or Write:
// an *net.OpError naming the operation and both ends, so that callers'
// checks (net.ErrClosed, os.ErrDeadlineExceeded, Timeout, syscall errors)
// see what they would have seen.
func (c *conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		// The RawConn's own error ("raw-read"): keep its cause.
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// CloseWrite shuts down the writing side, as TCPConn's and UnixConn's do.
func (c *conn) CloseWrite() error { return c.half.CloseWrite() }

// SyscallConn is the wrapped connection's, for socket options.
func (c *conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// Listener returns l with every accepted connection wrapped.
func Listener(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
