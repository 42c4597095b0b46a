// Package rayproc runs the `ray` binary as real processes for the integration tests: it builds
// cmd/ray, starts and stops `ray` processes, and hands out free ports and clean environments.
package rayproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/freeport"
)

// BinEnv names a `ray` binary already built from this checkout (`make unit` sets it to bin/ray),
// which Build then uses instead of compiling its own.
const BinEnv = "RAYK8S_RAY_BIN"

// Build compiles cmd/ray into a new temporary directory (call it from TestMain), or returns
// $RAYK8S_RAY_BIN when set. remove deletes what it built.
func Build() (bin string, remove func(), err error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", nil, fmt.Errorf("%s: %w", BinEnv, err)
		}
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "ray-bin-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "ray")
	build := exec.Command("go", "build", "-o", bin, "github.com/rayk8s/rayk8s/cmd/ray")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building ray: %w", err)
	}
	return bin, func() { _ = os.RemoveAll(dir) }, nil
}

// FreePort returns a port for a `ray` process to listen on (see package freeport).
func FreePort(t testing.TB) int {
	t.Helper()
	return freeport.For(t)
}

// Env is this process's environment without the variables whose names start with one of drop
// (inherited RAY_* settings would change what the tests start), plus extra.
func Env(drop []string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range drop {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Proc is a running `ray` process.
type Proc struct {
	Cmd  *exec.Cmd
	Out  *SyncBuffer
	done chan struct{}
}

// Start runs `bin <args>` in the background; when the test ends it is stopped (Stop) and, if the
// test failed, its output logged.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of ray %s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	return p
}

// Done is closed when the process exited; Cmd.ProcessState is set then.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM and waits for the exit, killing the process after 20 s.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Run runs `bin <args>` to completion (at most 2 minutes) and returns its output and exit code.
func Run(t testing.TB, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running ray %v: %v", args, err)
	}
	return out.String(), code
}

// SyncBuffer is a bytes.Buffer safe for a process's concurrent stdout and stderr.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
