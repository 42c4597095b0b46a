package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPicksAreNewAndBelowTheEphemeralRange(t *testing.T) {
	p := New()
	seen := map[int]bool{}
	for range 50 {
		port, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		if port < p.lo || port >= p.hi {
			t.Fatalf("port %d outside [%d, %d)", port, p.lo, p.hi)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d was handed out but cannot be bound: %v", port, err)
		}
		_ = l.Close()
	}
}

func TestBusyAndUsedPortsAreNotHandedOut(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	busy := l.Addr().(*net.TCPAddr).Port
	p := &Picker{lo: busy, hi: busy + 1, given: map[int]bool{}}
	if port, err := p.Pick(); err == nil {
		t.Fatalf("got port %d, which is listened on", port)
	}
	_ = l.Close()
	port, err := p.Pick()
	if err != nil || port != busy {
		t.Fatalf("after the listener closed: got %d, %v; want %d", port, err, busy)
	}
	if port, err := p.Pick(); err == nil {
		t.Fatalf("port %d handed out a second time", port)
	}
}
