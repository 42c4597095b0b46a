package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/serve/rawsock"
)

// headerTimeout bounds how long a client may take to send a request's
// header once it started (net/http's ReadHeaderTimeout, as before).
const headerTimeout = 30 * time.Second

// Server runs a Proxy on a listener with Ray's keep-alive and drains on
// shutdown: health turns 503 first so load balancers stop sending.
//
// Plain HTTP/1.1 keep-alive requests are served by a connection loop of
// its own (conn.go): one buffered write per answer and no background read
// per request. A connection whose request the loop does not handle
// (HTTP/1.0, Connection: close or Upgrade, Expect, chunked or large
// bodies, HEAD, odd or oversized headers, anything malformed) is handed
// to net/http with the bytes read so far, and stays there: net/http
// answers it exactly as it answered every connection before.
type Server struct {
	proxy     *Proxy
	log       logr.Logger
	keepAlive time.Duration
	srv       *http.Server
	handoff   *handoffListener
	fallback  sync.Once

	draining atomic.Bool
	closing  atomic.Bool

	mu        sync.Mutex
	conns     map[*conn]struct{}
	listeners map[net.Listener]struct{}
}

// NewServer returns a Server for p.
func NewServer(p *Proxy, keepAlive time.Duration) *Server {
	return &Server{
		proxy: p, log: p.log, keepAlive: keepAlive,
		srv:       &http.Server{Handler: p, ReadHeaderTimeout: headerTimeout, IdleTimeout: keepAlive},
		handoff:   newHandoffListener(),
		conns:     map[*conn]struct{}{},
		listeners: map[net.Listener]struct{}{},
	}
}

// Serve serves on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.fallback.Do(func() {
		go func() { _ = s.srv.Serve(s.handoff) }()
	})
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		_ = l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("serving HTTP proxy on %s: %w", l.Addr(), err)
		}
		backoff = 0
		c := newConn(s, rawsock.Wrap(nc))
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			_ = nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// Drain closes idle connections and answers every further request with
// "Connection: close", while still accepting new connections: clients that
// hold a kept-alive connection to this node reconnect through their load
// balancer, which no longer sends them here.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.srv.SetKeepAlivesEnabled(false)
	s.closeIdle(false)
}

// Shutdown stops accepting and waits for requests in flight, or ctx.
func (s *Server) Shutdown(ctx context.Context) {
	s.closing.Store(true)
	s.draining.Store(true)
	s.mu.Lock()
	for l := range s.listeners {
		_ = l.Close()
	}
	s.mu.Unlock()
	fallbackDone := make(chan struct{})
	go func() {
		defer close(fallbackDone)
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.closeIdle(true) {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				_ = c.nc.Close()
			}
			s.mu.Unlock()
			<-fallbackDone
			return
		case <-tick.C:
		}
	}
	<-fallbackDone
}

// closeIdle closes the connections waiting for a request (and, when
// shutting down, those that have not sent their first one in 5 s, as
// net/http does); it reports whether no connection is left.
func (s *Server) closeIdle(shutdown bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			_ = c.nc.Close()
			continue
		}
		if shutdown && time.Since(c.created) > 5*time.Second && c.state.CompareAndSwap(stateNew, stateClosed) {
			_ = c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handoffListener passes connections the loop hands over to net/http.
type handoffListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// give hands c to net/http; it reports false once net/http is shut down.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "proxy connection loop" }

// replayConn is a connection whose first bytes were already read: Read
// returns them before reading on.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite lets net/http half-close a TCP connection, as it does for an
// unread request body.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
