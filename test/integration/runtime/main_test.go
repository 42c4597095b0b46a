// Package runtime_test runs the `ray` binary as real processes: a head and
// worker agents on distinct loopback addresses, driven through the CLI and
// the dashboard's HTTP API.
package runtime_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

var rayBin string

func TestMain(m *testing.M) {
	bin, remove, err := rayproc.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rayBin = bin
	code := m.Run()
	remove()
	os.Exit(code)
}

// baseEnv is the environment of every ray process: no inherited RAY_*
// variables, a private RAY_TMPDIR, and fast heartbeats so node death is
// detected quickly.
func baseEnv(tmp string) []string {
	return rayproc.Env([]string{"RAY_"},
		"RAY_TMPDIR="+tmp,
		"RAY_health_check_period_ms=100",
		"RAY_health_check_failure_threshold=10",
		"RAY_JOB_STOP_WAIT_TIME_S=1",
	)
}

type proc = rayproc.Proc

func startRay(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return rayproc.Start(t, rayBin, env, args...)
}

func runRay(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	return rayproc.Run(t, rayBin, env, args...)
}

// eventually waits up to timeout for cond to hold, polling every 50ms.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	gomega.NewWithT(t).Eventually(cond).WithTimeout(timeout).WithPolling(50*time.Millisecond).Should(gomega.BeTrue(), "waiting for %s", what)
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
	return startClusterWithEnv(t, nil, workers...)
}

// startClusterWithEnv is startCluster with extra environment for every process.
func startClusterWithEnv(t *testing.T, extraEnv []string, workers ...[]string) *cluster {
	t.Helper()
	tmp := t.TempDir()
	c := &cluster{env: append(baseEnv(tmp), extraEnv...), tmp: tmp, gcsPort: rayproc.FreePort(t), dashPort: rayproc.FreePort(t), agentPort: rayproc.FreePort(t), metricsPort: rayproc.FreePort(t)}
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
		"--dashboard-agent-listen-port=" + strconv.Itoa(rayproc.FreePort(t)),
		"--metrics-export-port=" + strconv.Itoa(rayproc.FreePort(t)),
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
	eventually(t, fmt.Sprintf("%d alive nodes", n), 20*time.Second, func() bool {
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
