package wire

import (
	"net"
	"testing"
	"time"
)

// Frames sent with SendWithin leave on their own when nothing else is
// sent (a slow handler's ACCEPT), and again after the timer was used once.
func TestSendWithinFlushesWithoutAnotherSend(t *testing.T) {
	a, c := net.Pipe()
	opened := make(chan *ConnStream, 2)
	replica := NewConn(c, false, func(s *ConnStream) { opened <- s })
	defer func() { _ = replica.Close() }()
	agent := NewConn(a, true, nil)
	defer func() { _ = agent.Close() }()
	for i := range 2 {
		s, err := agent.Open()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(Out{Type: TypeOpen, Payload: EncodeMeta(&Meta{Kind: KindHTTP})}); err != nil {
			t.Fatal(err)
		}
		rs := <-opened
		if err := rs.SendWithin(time.Millisecond, Out{Type: TypeAccept, Payload: EncodeAccept(Accept{Accepted: true, Ongoing: i})}); err != nil {
			t.Fatal(err)
		}
		f, err := s.Recv(t.Context())
		if err != nil || f.Type != TypeAccept || DecodeAccept(f.Payload).Ongoing != i {
			t.Fatalf("call %d: got frame %d %s, %v; want its ACCEPT", i, f.Type, f.Payload, err)
		}
	}
}
