package rawsock

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns a connected, wrapped pair of stream sockets of network.
func pair(t testing.TB, network string) (a, b net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	d, err := net.Dial(network, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	a, b = Wrap(d), Wrap(s)
	for _, c := range []net.Conn{a, b} {
		if _, ok := c.(*conn); !ok {
			t.Fatalf("Wrap left a %s %T as it was", network, c)
		}
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestStreamsArriveWhole(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			a, b := pair(t, network)
			// 8 MiB is far more than both socket buffers: the writer meets
			// EAGAIN and waits on the poller while the reader reads in
			// small, slow pieces.
			data := make([]byte, 8<<20)
			for i := range data {
				data[i] = byte(i * 7 / 3)
			}
			want := sha256.Sum256(data)
			errc := make(chan error, 1)
			go func() {
				n, err := a.Write(data)
				if err == nil && n != len(data) {
					err = io.ErrShortWrite
				}
				if err == nil {
					err = a.(*conn).CloseWrite()
				} else {
					a.Close() // the reader ends rather than waiting for the rest
				}
				errc <- err
			}()
			h := sha256.New()
			buf := make([]byte, 1000)
			var got int
			for {
				n, err := b.Read(buf)
				h.Write(buf[:n])
				got += n
				if err == io.EOF { //nolint:errorlint // io.ReadAll and io.ReadFull need io.EOF itself
					break
				}
				if err != nil {
					t.Fatalf("read after %d bytes: %v", got, err)
				}
				if got < 64<<10 {
					time.Sleep(time.Millisecond)
				}
			}
			if got != len(data) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("read %d bytes with another digest than the %d written", got, len(data))
			}
			if err := <-errc; err != nil {
				t.Fatalf("write: %v", err)
			}
			// The half-closed side still carries the answer back.
			if _, err := b.Write([]byte("done")); err != nil {
				t.Fatal(err)
			}
			reply := make([]byte, 4)
			if _, err := io.ReadFull(a, reply); err != nil || string(reply) != "done" {
				t.Fatalf("reply %q, %v", reply, err)
			}
		})
	}
}

func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	a, b := pair(t, "unix")
	const writers, records, size = 4, 2000, 512
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := make([]byte, size)
			for i := range records {
				binary.BigEndian.PutUint32(rec, uint32(w))
				binary.BigEndian.PutUint32(rec[4:], uint32(i))
				for j := 8; j < size; j++ {
					rec[j] = byte(w + i + j)
				}
				if _, err := a.Write(rec); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]uint32, writers)
	rec := make([]byte, size)
	for range writers * records {
		if _, err := io.ReadFull(b, rec); err != nil {
			t.Fatal(err)
		}
		w, i := binary.BigEndian.Uint32(rec), binary.BigEndian.Uint32(rec[4:])
		if w >= writers || i != next[w] {
			t.Fatalf("record from writer %d number %d out of place", w, i)
		}
		for j := 8; j < size; j++ {
			if rec[j] != byte(int(w)+int(i)+j) {
				t.Fatalf("record %d of writer %d is torn at byte %d", i, w, j)
			}
		}
		next[w]++
	}
	wg.Wait()
}

func TestErrorsAreNetPackageErrors(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		a, _ := pair(t, "tcp")
		if err := a.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		_, err := a.Read(make([]byte, 10))
		var oe *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" || !oe.Timeout() {
			t.Fatalf("read past its deadline: %#v", err)
		}
		if want := "read tcp " + a.LocalAddr().String() + "->" + a.RemoteAddr().String() + ": i/o timeout"; err.Error() != want {
			t.Fatalf("read past its deadline says %q, want the net package's %q", err, want)
		}
		// A deadline in the past interrupts a read at once, as the proxy's
		// disconnect watch relies on; clearing it lets reads go on.
		if err := a.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("closed while reading", func(t *testing.T) {
		a, _ := pair(t, "unix")
		errc := make(chan error, 1)
		go func() {
			_, err := a.Read(make([]byte, 10))
			errc <- err
		}()
		time.Sleep(10 * time.Millisecond)
		a.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read of a closed connection: %v", err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write to a closed connection: %v", err)
		}
	})
	t.Run("peer gone", func(t *testing.T) {
		a, b := pair(t, "tcp")
		b.Close()
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			_, err = a.Write(make([]byte, 64<<10))
		}
		var oe *net.OpError
		gone := errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
		if !gone || !errors.As(err, &oe) || oe.Op != "write" {
			t.Fatalf("writing to a closed peer: %v", err)
		}
	})
	t.Run("end of stream", func(t *testing.T) {
		a, b := pair(t, "unix")
		if n, err := a.Read(nil); n != 0 || err != nil {
			t.Fatalf("empty read: %d, %v", n, err)
		}
		if n, err := a.Write(nil); n != 0 || err != nil {
			t.Fatalf("empty write: %d, %v", n, err)
		}
		b.Close()
		if _, err := a.Read(make([]byte, 10)); err != io.EOF { //nolint:errorlint // io.ReadAll and io.ReadFull need io.EOF itself
			t.Fatalf("read after the peer closed: %v, want io.EOF", err)
		}
	})
}

func TestOtherConnectionsStayAsTheyAre(t *testing.T) {
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	if Wrap(p) != p {
		t.Fatal("a pipe was wrapped")
	}
	dir := t.TempDir()
	g, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "g"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Close() }()
	if Wrap(g) != net.Conn(g) {
		t.Fatal("a datagram socket was wrapped: its reads would lose message boundaries")
	}
}

// BenchmarkPingPong sends 64 bytes each way over a Unix socket per
// iteration, with the net package's calls and with raw ones.
func BenchmarkPingPong(b *testing.B) {
	for _, raw := range []bool{false, true} {
		name := "net"
		if raw {
			name = "raw"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			l, err := net.Listen("unix", filepath.Join(dir, "s"))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				if raw {
					c = Wrap(c)
				}
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("unix", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if raw {
				c = Wrap(c)
			}
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestListenerWrapsWhatItAccepts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wl := Listener(l)
	defer wl.Close()
	go func() {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			_, _ = c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*conn); !ok {
		t.Fatalf("accepted a %T, not a wrapped connection", c)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hi" {
		t.Fatalf("read %q, %v", got, err)
	}
	wl.Close()
	if _, err := wl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept on a closed listener: %v", err)
	}
}
