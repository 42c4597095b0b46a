package wire

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"
)

// The Python side (python/rayk8s/serve/_wire.py) must produce these bytes;
// python/tests/test_serve.py pins the same value.
func TestFrameEncodingMatchesPython(t *testing.T) {
	if got := hex.EncodeToString(AppendFrame(nil, 7, TypeData, []byte("hi"))); got != "0000000200000007026869" {
		t.Fatalf("frame = %s", got)
	}
	f, err := ReadFrame(bytes.NewReader(AppendFrame(nil, 9, TypeEnd, nil)))
	if err != nil || f.Stream != 9 || f.Type != TypeEnd || len(f.Payload) != 0 {
		t.Fatalf("decoded %+v, %v", f, err)
	}
}

func TestConnMultiplexesBothDirections(t *testing.T) {
	a, b := net.Pipe()
	opened := make(chan *ConnStream, 2)
	dialer := NewConn(a, true, func(s *ConnStream) { opened <- s })
	acceptor := NewConn(b, false, func(s *ConnStream) { opened <- s })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	s1, _ := dialer.Open()
	s2, _ := dialer.Open()
	if s1.ID()%2 != 1 || s2.ID() != s1.ID()+2 {
		t.Fatalf("dialer stream ids %d, %d, want odd", s1.ID(), s2.ID())
	}
	if err := s2.Send(Out{Type: TypeOpen, Payload: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Send(Out{Type: TypeOpen, Payload: []byte("one")}, Out{Type: TypeEnd}); err != nil {
		t.Fatal(err)
	}
	got := map[string]*ConnStream{}
	for range 2 {
		s := <-opened
		f, err := s.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[string(f.Payload)] = s
	}
	if f, _ := got["one"].Recv(ctx); f.Type != TypeEnd {
		t.Fatalf("second frame of stream one = %+v", f)
	}
	// The accepting side opens even ids on the same connection.
	back, _ := acceptor.Open()
	if back.ID()%2 != 0 {
		t.Fatalf("acceptor stream id %d, want even", back.ID())
	}
	_ = back.Send(Out{Type: TypeOpen, Payload: []byte("from replica")})
	if s := <-opened; s.ID() != back.ID() {
		t.Fatalf("dialer saw stream %d", s.ID())
	}
	_ = dialer.Close()
	if _, err := s1.Recv(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after close = %v", err)
	}
}

func TestMessagesSplitAcrossChunks(t *testing.T) {
	data := AppendMessage(AppendMessage(AppendMessage(nil, []byte("first")), nil), []byte("third message"))
	var m Messages
	var got []string
	// Fed a byte at a time, messages still come out whole and in order.
	for i := range data {
		out, err := m.Feed(data[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range out {
			got = append(got, string(msg))
		}
	}
	if len(got) != 3 || got[0] != "first" || got[1] != "" || got[2] != "third message" || m.Pending() {
		t.Fatalf("messages = %q (pending %v), want first, empty, third message", got, m.Pending())
	}
	if _, err := m.Feed([]byte{0xff, 0xff, 0xff, 0xff}); err == nil {
		t.Fatal("a message length over MaxPayload was accepted")
	}
}
