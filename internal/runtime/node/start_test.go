package node

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/connectivity"
)

// TestFailedStartReleasesWhatItAcquired makes a late start step fail on a
// port that is already taken and checks that everything the earlier steps
// acquired is released: the control-service connection is closed, every
// port bound so far can be bound again, and the replica socket directory is
// gone.
func TestFailedStartReleasesWhatItAcquired(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(taken int) Config
		want string
		// socketDir: the failure comes after the replica socket directory was made.
		socketDir bool
	}{
		{
			name: "head whose dashboard port is taken",
			cfg: func(taken int) Config {
				return Config{Head: true, IncludeDashboard: true, DashboardPort: taken}
			},
			want:      "listening on 127.0.0.1:",
			socketDir: true,
		},
		{
			name: "worker whose metrics port is taken",
			cfg: func(taken int) Config {
				return Config{GCSAddress: "127.0.0.1:1", MetricsPort: taken}
			},
			want: "listening on :",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = taken.Close() }()
			cfg := tt.cfg(taken.Addr().(*net.TCPAddr).Port)
			cfg.TempDir = t.TempDir()

			s, err := newStarter(cfg)
			if err != nil {
				t.Fatal(err)
			}
			n, err := s.start(context.Background())
			if err == nil {
				_ = n.Stop()
				t.Fatal("start succeeded on a taken port")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if s.conn == nil {
				t.Fatal("the failing step came before the control service was dialled; the test proves nothing")
			}
			if st := s.conn.GetState(); st != connectivity.Shutdown {
				t.Errorf("control-service connection state = %v, want %v", st, connectivity.Shutdown)
			}
			if len(s.listeners) == 0 {
				t.Fatal("no port was bound before the failure; the test proves nothing")
			}
			for _, l := range s.listeners {
				port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
				again, err := net.Listen("tcp", net.JoinHostPort("", port))
				if err != nil {
					t.Errorf("port %s still held after the failed start: %v", port, err)
					continue
				}
				_ = again.Close()
			}
			if tt.socketDir && s.n.socketDir == "" {
				t.Fatal("no replica socket directory was made before the failure")
			}
			if s.n.socketDir != "" {
				if _, err := os.Stat(s.n.socketDir); !os.IsNotExist(err) {
					t.Errorf("replica socket directory %s still exists (stat err %v)", s.n.socketDir, err)
				}
			}
		})
	}
}
