package raytls

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"
)

// tlsRecordHandshake is the first byte of every TLS connection (a handshake record).
const tlsRecordHandshake = 0x16

// sniffTimeout bounds how long a new connection may stay silent before it is classified.
const sniffTimeout = 10 * time.Second

// Split divides l's connections by their first byte: TLS connections (handshake records) go to
// the first listener returned, everything else to the second. It lets one port serve mutual TLS
// to peers and plain HTTP to what cannot speak TLS, such as the kubelet's health probes. Closing
// either returned listener closes l.
func Split(l net.Listener) (tlsConns, plainConns net.Listener) {
	s := &splitter{l: l, tls: make(chan net.Conn), plain: make(chan net.Conn), done: make(chan struct{})}
	go s.run()
	return &half{s: s, ch: s.tls}, &half{s: s, ch: s.plain}
}

type splitter struct {
	l          net.Listener
	tls, plain chan net.Conn
	done       chan struct{}
	once       sync.Once
	err        error
}

func (s *splitter) run() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			s.close(err)
			return
		}
		go s.classify(c)
	}
}

func (s *splitter) classify(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	r := bufio.NewReaderSize(c, 1)
	first, err := r.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		_ = c.Close()
		return
	}
	ch := s.plain
	if first[0] == tlsRecordHandshake {
		ch = s.tls
	}
	select {
	case ch <- &peekedConn{Conn: c, r: r}:
	case <-s.done:
		_ = c.Close()
	}
}

func (s *splitter) close(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		_ = s.l.Close()
	})
}

type half struct {
	s  *splitter
	ch chan net.Conn
}

func (h *half) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.s.done:
		return nil, h.s.err
	}
}

func (h *half) Close() error {
	h.s.close(net.ErrClosed)
	return nil
}

func (h *half) Addr() net.Addr { return h.s.l.Addr() }

// peekedConn replays the byte read to classify the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// ErrPlaintext is what a plain connection gets on a path that requires mutual TLS.
var ErrPlaintext = errors.New("this endpoint requires mutual TLS (RAY_USE_TLS is set on this node)")
