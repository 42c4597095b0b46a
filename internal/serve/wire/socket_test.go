package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// unixPair is two ends of a real Unix socket.
func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "w.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	d, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-accepted
	if a == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = d.Close(); _ = a.Close() })
	return d.(*net.UnixConn), a.(*net.UnixConn)
}

// Frames of every size reach their streams whole and in order over a
// socket: empty ones, ones cut across reads, and ones larger than the
// read buffer.
func TestConnReadsFramesOfEverySizeFromASocket(t *testing.T) {
	a, b := unixPair(t)
	opened := make(chan *ConnStream, 1)
	_ = NewConn(b, false, func(s *ConnStream) { opened <- s })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const bufSize = 64 << 10 // the read loop's buffer
	sizes := []int{0, 1, 100, bufSize - HeaderSize, bufSize - HeaderSize + 1, 3 * bufSize, 7, 1 << 20, 0, 5}
	payload := func(i, n int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, n) }
	var all []byte
	all = AppendFrame(all, 1, TypeOpen, []byte("open"))
	for i, n := range sizes {
		all = AppendFrame(all, 1, TypeData, payload(i, n))
	}
	all = AppendFrame(all, 1, TypeEnd, nil)
	go func() {
		// Uneven writes, so that frames and headers are cut across reads.
		for len(all) > 0 {
			n := min(len(all), 4093)
			if _, err := a.Write(all[:n]); err != nil {
				return
			}
			all = all[n:]
		}
	}()
	var s *ConnStream
	select {
	case s = <-opened:
	case <-ctx.Done():
		t.Fatal("no stream opened")
	}
	if f, err := s.Recv(ctx); err != nil || f.Type != TypeOpen || string(f.Payload) != "open" {
		t.Fatalf("first frame %v %q, %v", f.Type, f.Payload, err)
	}
	for i, n := range sizes {
		f, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != TypeData || !bytes.Equal(f.Payload, payload(i, n)) {
			t.Fatalf("frame %d: type %d, %d bytes, want %d bytes of %q", i, f.Type, len(f.Payload), n, rune('a'+i))
		}
	}
	if f, err := s.Recv(ctx); err != nil || f.Type != TypeEnd {
		t.Fatalf("last frame %v, %v", f.Type, err)
	}
}

// A socket that ends inside a frame fails the connection with
// io.ErrUnexpectedEOF; one that ends between frames closes it. The peer
// writes and closes at once, so the end often arrives with the last
// bytes, in the same wake-up of the reader.
func TestConnOverASocketEndsOnEOF(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  int
		want error
	}{{"between frames", 0, ErrClosed}, {"in a header", 4, io.ErrUnexpectedEOF}, {"in a payload", HeaderSize + 2, io.ErrUnexpectedEOF}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := unixPair(t)
			c := NewConn(b, false, func(*ConnStream) {})
			msg := AppendFrame(AppendFrame(nil, 1, TypeOpen, []byte("x")), 1, TypeData, []byte("hello"))
			if tc.cut > 0 {
				msg = msg[:HeaderSize+1+tc.cut]
			}
			if _, err := a.Write(msg); err != nil {
				t.Fatal(err)
			}
			_ = a.CloseWrite()
			select {
			case <-c.Done():
			case <-time.After(20 * time.Second):
				t.Fatal("the connection did not end")
			}
			if err := c.Err(); !errors.Is(err, tc.want) {
				t.Errorf("Err() = %v, want %v", err, tc.want)
			}
		})
	}
}
