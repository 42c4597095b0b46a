package replica

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
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
