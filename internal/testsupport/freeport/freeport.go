// Package freeport hands tests TCP ports to give the servers they start.
//
// A port from Listen(":0") comes out of the kernel's ephemeral range, which
// is also where every outgoing connection's local port comes from: between
// the probe closing it and the test's server binding it, a client
// connection anywhere on the machine (another test package runs alongside)
// may take it, and the server then fails with "address already in use".
// Ports here come from below that range instead, where only servers bind,
// picked at random so that test processes running side by side rarely
// choose the same one, and each is probed on all addresses before it is
// handed out.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is where picks start: above the ports well-known services and
// their registered neighbours tend to use.
const lowest = 15000

// Picker hands out ports no earlier Pick of it returned.
type Picker struct {
	lo, hi int // picks are in [lo, hi)
	mu     sync.Mutex
	given  map[int]bool
}

// New returns a Picker for ports below the kernel's ephemeral range (as
// /proc/sys/net/ipv4/ip_local_port_range gives it, else Linux's default).
func New() *Picker {
	hi := 32768
	if raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(raw)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				hi = n
			}
		}
	}
	if hi-lowest < 1000 {
		// The ephemeral range starts too low to leave room below it: fall
		// back to the range above it, which the kernel leaves alone.
		return &Picker{lo: 61000, hi: 65535, given: map[int]bool{}}
	}
	return &Picker{lo: lowest, hi: hi, given: map[int]bool{}}
}

var shared = sync.OnceValue(New)

// Pick returns a port that nothing listened on when probed and that no
// earlier Pick in this process returned.
func Pick() (int, error) { return shared().Pick() }

// For is Pick for a test: it fails the test when no port is found.
func For(t testing.TB) int {
	t.Helper()
	p, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Pick returns a port that nothing listened on when probed and that p did
// not return before.
func (p *Picker) Pick() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var last error
	for range 200 {
		port := p.lo + rand.IntN(p.hi-p.lo)
		if p.given[port] {
			continue
		}
		// All addresses: a server the test starts may bind 0.0.0.0 as well as 127.0.0.1.
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			last = err
			continue
		}
		_ = l.Close()
		p.given[port] = true
		return port, nil
	}
	if last == nil {
		last = errors.New("every port tried was handed out before")
	}
	return 0, fmt.Errorf("no free TCP port in [%d, %d) after 200 tries: %w", p.lo, p.hi, last)
}
