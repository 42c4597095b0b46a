package replica

import "testing"

// python/rayk8s/serve/_wire.py socket_path must agree.
func TestSocketPathMatchesPython(t *testing.T) {
	if got := SocketPath("/d", "app#dep#abc"); got != "/d/d35c0134dac182a7.sock" {
		t.Fatalf("SocketPath = %s", got)
	}
}
