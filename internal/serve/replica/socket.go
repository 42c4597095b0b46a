package replica

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// SocketDirEnv names the directory of replica sockets in a replica's
// environment; the node agent sets it for every process it starts.
const SocketDirEnv = "RAYK8S_SERVE_SOCKET_DIR"

// SocketPath is where replicaID listens: a short hash keeps the path within
// the 108 bytes a Unix socket path may have. python/rayk8s/serve/_wire.py
// computes the same.
func SocketPath(dir, replicaID string) string {
	sum := sha256.Sum256([]byte(replicaID))
	return filepath.Join(dir, hex.EncodeToString(sum[:])[:16]+".sock")
}

// maxSocketPath is the longest path a Unix socket may have on Linux (108 bytes with the NUL).
const maxSocketPath = 107

// MakeSocketDir creates a directory for a node's replica sockets: under the temp directory
// ($TMPDIR) when its sockets' paths fit the limit, else under /tmp, else it fails naming TMPDIR.
// A long TMPDIR is common (per-container temp directories), and a bind on a too-long path fails
// with a bare "invalid argument" in the replica instead.
func MakeSocketDir() (string, error) {
	tried := []string{}
	for _, base := range []string{os.TempDir(), "/tmp"} {
		// MkdirTemp appends at most 10 digits to the pattern.
		if len(SocketPath(filepath.Join(base, "rayserve-0123456789"), "")) > maxSocketPath {
			tried = append(tried, base)
			continue
		}
		dir, err := os.MkdirTemp(base, "rayserve-")
		if err != nil {
			return "", fmt.Errorf("creating the replica socket directory: %w", err)
		}
		return dir, nil
	}
	return "", fmt.Errorf("replica socket paths under %v would exceed %d bytes: set TMPDIR to a shorter directory", tried, maxSocketPath)
}

// Dial connects the agent to a replica's socket. onOpen receives the calls
// the replica starts (handle calls to other deployments).
func Dial(ctx context.Context, path string, onOpen func(*wire.ConnStream)) (*wire.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to replica socket: %w", err)
	}
	return wire.NewConn(c, true, onOpen), nil
}
