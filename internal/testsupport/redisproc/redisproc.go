// Package redisproc runs a real redis-server (Debian package redis-server) for tests: on a
// free loopback port, in a temp dir, stopped when the test ends.
package redisproc

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// Server is a running redis-server.
type Server struct {
	t        testing.TB
	bin      string
	dir      string
	port     int
	password string
	persist  bool
	cmd      *exec.Cmd
	out      *rayproc.SyncBuffer
	done     chan struct{}
}

// Options configures Start.
type Options struct {
	// Password is required from clients when set (requirepass).
	Password string
	// Persist keeps the data across Restart (an append-only file synced on every write), as a
	// production Redis does; without it a restarted server is empty.
	Persist bool
}

// Binary returns the redis-server path, or skips the test, saying how to install it, when
// the binary is absent.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed, so the Redis runs of this test cannot happen; install the Debian package redis-server (hack/install-deps.sh does)")
	}
	return bin
}

// Start starts redis-server on a free port and waits until it answers PING.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	return StartOnPort(t, rayproc.FreePort(t), opts)
}

// StartOnPort is Start on a port the test chose.
func StartOnPort(t testing.TB, port int, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), port: port, password: opts.Password, persist: opts.Persist}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the TCP port.
func (s *Server) Port() int { return s.port }

func (s *Server) start() {
	s.t.Helper()
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "no"}
	if s.persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	s.out = &rayproc.SyncBuffer{}
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	gomega.NewWithT(s.t).Eventually(func() error {
		select {
		case <-s.done:
			return gomega.StopTrying("redis-server exited during startup:\n" + s.out.String())
		default:
		}
		return s.ping()
	}).WithTimeout(5*time.Second).WithPolling(25*time.Millisecond).Should(gomega.Succeed(), "redis-server on %s to answer PING", s.Addr())
}

// ping sends PING (after AUTH when a password is set) over a fresh connection.
func (s *Server) ping() error {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if s.password != "" {
		if _, err := fmt.Fprintf(c, "AUTH %s\r\n", s.password); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reading the AUTH answer: %w", err)
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("AUTH answered %q", line)
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Stop kills redis-server (SIGKILL: nothing is saved) and waits for it. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts a stopped server again on the same port, with its data when it persists.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
