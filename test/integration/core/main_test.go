// Package core_test runs Ray programs, written the way Ray's documentation
// writes them, with Debian's /usr/bin/python3 against a real head started
// from the `ray` binary, and checks what they print.
package core_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

const python = "/usr/bin/python3"

// pythonDir is the repository's python/ directory.
func pythonDir(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	dir, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", "..", "python"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

type head struct {
	env     []string
	tmp     string
	gcsAddr string
	dashURL string
	proc    *rayproc.Proc
}

// baseEnv has no inherited RAY_* variables, a private RAY_TMPDIR and the
// repository's Python packages on PYTHONPATH.
func baseEnv(t testing.TB, tmp string) []string {
	// OMP_NUM_THREADS from the machine would override what workers get.
	return rayproc.Env([]string{"RAY_", "PYTHONPATH=", "RAYK8S_", "OMP_NUM_THREADS="},
		"RAY_TMPDIR="+tmp,
		"PYTHONPATH="+pythonDir(t),
		"RAY_health_check_period_ms=100",
		"RAY_health_check_failure_threshold=10",
	)
}

// startHead starts `ray start --head --block` with cpus CPUs and waits
// until its node is recorded for local drivers.
func startHead(t *testing.T, cpus int) *head {
	t.Helper()
	return startHeadAt(t, cpus, "127.0.0.1")
}

// startHeadAt is startHead with the head's node IP set to ip.
func startHeadAt(t *testing.T, cpus int, ip string) *head {
	t.Helper()
	return startHeadWithEnv(t, cpus, ip)
}

// startHeadWithEnv is startHeadAt with extraEnv added to the head's (and its drivers') environment.
func startHeadWithEnv(t *testing.T, cpus int, ip string, extraEnv ...string) *head {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is required: %v", python, err)
	}
	tmp := t.TempDir()
	h := &head{env: append(baseEnv(t, tmp), extraEnv...), tmp: tmp}
	gcsPort, dashPort := rayproc.FreePort(t), rayproc.FreePort(t)
	h.gcsAddr = ip + ":" + strconv.Itoa(gcsPort)
	h.dashURL = "http://127.0.0.1:" + strconv.Itoa(dashPort)
	h.proc = rayproc.Start(t, rayBin, h.env, "start", "--head", "--block",
		"--node-ip-address="+ip,
		"--port="+strconv.Itoa(gcsPort),
		"--dashboard-host=127.0.0.1",
		"--dashboard-port="+strconv.Itoa(dashPort),
		"--dashboard-agent-listen-port="+strconv.Itoa(rayproc.FreePort(t)),
		"--metrics-export-port="+strconv.Itoa(rayproc.FreePort(t)),
		"--num-cpus="+strconv.Itoa(cpus),
	)
	eventually(t, "the head's node recorded for local drivers", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(tmp, "ray", "rayk8s-core-nodes", "*.json"))
		return len(files) == 1
	})
	return h
}

// runPython runs a Python program (a file under testdata or -c code) and
// returns its combined output; it fails the test on a non-zero exit
// unless wantFail.
func runPython(t *testing.T, env []string, wantFail bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = env
	cmd.Dir = "testdata"
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil && wantFail:
		t.Fatalf("python %v succeeded, want a failure; output:\n%s", args, out)
	case err != nil && !wantFail:
		t.Fatalf("python %v: %v; output:\n%s", args, err, out)
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("python %v: %v", args, err)
	}
	return string(out)
}

// wantLines fails unless every line appears in out.
func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("output lacks the line %q; output:\n%s", l, out)
		}
	}
}

// eventually waits for cond, polling every 50 ms, and fails t naming what it waited for.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	gomega.NewWithT(t).Eventually(cond).WithTimeout(timeout).WithPolling(50*time.Millisecond).Should(gomega.BeTrue(), "waiting for %s", what)
}
