// Package runtime_test runs the `ray` binary as real processes: a head and
// worker agents on distinct loopback addresses, driven through the CLI and
// the dashboard's HTTP API.
package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var rayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ray-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rayBin = filepath.Join(dir, "ray")
	build := exec.Command("go", "build", "-o", rayBin, "github.com/rayk8s/rayk8s/cmd/ray")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ray:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// baseEnv is the environment of every ray process: no inherited RAY_*
// variables, a private RAY_TMPDIR, and fast heartbeats so node death is
// detected quickly.
func baseEnv(tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAY_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"RAY_TMPDIR="+tmp,
		"RAY_health_check_period_ms=100",
		"RAY_health_check_failure_threshold=10",
		"RAY_JOB_STOP_WAIT_TIME_S=1",
	)
}

type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRay runs `ray <args>` in the background and stops it (SIGTERM, then
// SIGKILL) when the test ends.
func startRay(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(rayBin, args...)
	cmd.Env = env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.terminate()
		if t.Failed() {
			t.Logf("output of ray %s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	return p
}

func (p *proc) terminate() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// runRay runs `ray <args>` to completion and returns its output and exit code.
func runRay(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rayBin, args...)
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

// eventually polls cond every 50ms, at most n times.
func eventually(t testing.TB, what string, n int, cond func() bool) {
	t.Helper()
	for range n {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

type cluster struct {
	env         []string
	tmp         string
	gcsAddr     string
	dashURL     string
	gcsPort     int
	dashPort    int
	agentPort   int
	metricsPort int
	head        *proc
	workers     []*proc
}

func headArgs(c *cluster) []string {
	return []string{"start", "--head", "--block",
		"--node-ip-address=127.0.0.1",
		"--port=" + strconv.Itoa(c.gcsPort),
		"--dashboard-host=127.0.0.1",
		"--dashboard-port=" + strconv.Itoa(c.dashPort),
		"--dashboard-agent-listen-port=" + strconv.Itoa(c.agentPort),
		"--metrics-export-port=" + strconv.Itoa(c.metricsPort),
		"--num-cpus=1",
		"--temp-dir=" + filepath.Join(c.tmp, "head"),
		"--no-monitor",
		"--some-future-flag=1",
	}
}

// startCluster starts a head on 127.0.0.1 and one worker per spec on
// 127.0.0.2, 127.0.0.3, … and waits until all of them are alive.
func startCluster(t *testing.T, workers ...[]string) *cluster {
	t.Helper()
	tmp := t.TempDir()
	c := &cluster{env: baseEnv(tmp), tmp: tmp, gcsPort: freePort(t), dashPort: freePort(t), agentPort: freePort(t), metricsPort: freePort(t)}
	c.gcsAddr = "127.0.0.1:" + strconv.Itoa(c.gcsPort)
	c.dashURL = "http://127.0.0.1:" + strconv.Itoa(c.dashPort)
	c.head = startRay(t, c.env, headArgs(c)...)
	for i, extra := range workers {
		c.workers = append(c.workers, c.startWorker(t, i, extra...))
	}
	c.waitAlive(t, 1+len(workers))
	return c
}

func (c *cluster) startWorker(t *testing.T, i int, extra ...string) *proc {
	ip := fmt.Sprintf("127.0.0.%d", i+2)
	args := append([]string{"start", "--block",
		"--address=" + c.gcsAddr,
		"--node-ip-address=" + ip,
		"--dashboard-agent-listen-port=" + strconv.Itoa(freePort(t)),
		"--metrics-export-port=" + strconv.Itoa(freePort(t)),
		"--temp-dir=" + filepath.Join(c.tmp, "worker"+strconv.Itoa(i)),
	}, extra...)
	return startRay(t, c.env, args...)
}

// nodeStates parses `ray status` into node IP → ALIVE|DEAD.
func (c *cluster) nodeStates(t testing.TB) map[string]string {
	out, code := runRay(t, c.env, "status", "--address="+c.gcsAddr)
	states := map[string]string{}
	if code != 0 {
		return states
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && (f[3] == "ALIVE" || f[3] == "DEAD") {
			states[f[1]] = f[3]
		}
	}
	return states
}

func (c *cluster) waitAlive(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d alive nodes", n), 400, func() bool {
		alive := 0
		for _, s := range c.nodeStates(t) {
			if s == "ALIVE" {
				alive++
			}
		}
		return alive == n
	})
}

func httpDo(t testing.TB, method, url, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b.String()
}
