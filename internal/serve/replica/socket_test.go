package replica

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// python/rayk8s/serve/_wire.py socket_path must agree.
func TestSocketPathMatchesPython(t *testing.T) {
	if got := SocketPath("/d", "app#dep#abc"); got != "/d/d35c0134dac182a7.sock" {
		t.Fatalf("SocketPath = %s", got)
	}
}

func TestMakeSocketDirAvoidsLongTMPDIR(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 90))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	dir, err := MakeSocketDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if strings.HasPrefix(dir, long) {
		t.Fatalf("socket dir %s is under the too-long TMPDIR", dir)
	}
	// A socket can really be bound there.
	l, err := net.Listen("unix", SocketPath(dir, "app#dep#replica"))
	if err != nil {
		t.Fatalf("binding in %s: %v", dir, err)
	}
	l.Close()

	short := t.TempDir()
	t.Setenv("TMPDIR", short)
	dir2, err := MakeSocketDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir2)
	if filepath.Dir(dir2) != short {
		t.Fatalf("socket dir %s should be under TMPDIR %s when it is short enough", dir2, short)
	}
}
