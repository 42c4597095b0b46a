package raylet

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func newManager(t *testing.T, resolver *WorkingDirResolver) (*ProcessManager, chan *gcsv1.ProcessStatus, string) {
	t.Helper()
	logs := t.TempDir()
	if resolver == nil {
		resolver = &WorkingDirResolver{CacheDir: t.TempDir()}
	}
	ch := make(chan *gcsv1.ProcessStatus, 16)
	m := NewProcessManager(ProcessManagerOptions{LogsDir: logs, WorkingDirs: resolver, OnEvent: func(s *gcsv1.ProcessStatus) { ch <- s }, Logger: logr.Discard()})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Shutdown(ctx, 100*time.Millisecond)
	})
	return m, ch, logs
}

func next(t *testing.T, ch chan *gcsv1.ProcessStatus) *gcsv1.ProcessStatus {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no process event")
		return nil
	}
}

func TestProcessRunsWithEnvAndLogs(t *testing.T) {
	m, ch, logs := newManager(t, nil)
	wd := t.TempDir()
	m.Start(context.Background(), &gcsv1.ProcessSpec{
		ProcessId: "job:a", ShellCommand: `echo "$GREETING from $(pwd)"; echo oops >&2; exit 3`,
		Env: map[string]string{"GREETING": "hello"}, WorkingDir: wd, LogFile: "a.log",
	})
	if st := next(t, ch); st.State != gcsv1.ProcessState_PROCESS_STATE_RUNNING || st.Pid == 0 {
		t.Fatalf("first event = %v, want RUNNING with a pid", st)
	}
	st := next(t, ch)
	if st.State != gcsv1.ProcessState_PROCESS_STATE_EXITED || st.ExitCode != 3 || st.Stopped {
		t.Fatalf("exit event = %v, want EXITED with code 3", st)
	}
	want := "hello from " + wd + "\noops\n"
	if st.LogTail != want {
		t.Errorf("log tail = %q, want %q", st.LogTail, want)
	}
	raw, _ := os.ReadFile(filepath.Join(logs, "a.log"))
	if string(raw) != want {
		t.Errorf("log file = %q, want %q", raw, want)
	}
}

func TestStopKillsTheWholeGroup(t *testing.T) {
	m, ch, logs := newManager(t, nil)
	// The child ignores SIGTERM, so only the SIGKILL after the grace period
	// ends it; it writes its pid so the test can check it is gone.
	m.Start(context.Background(), &gcsv1.ProcessSpec{
		ProcessId: "job:b", LogFile: "b.log",
		ShellCommand: `sh -c 'trap "" TERM; echo $$ > child.pid; sleep 300' & wait`,
		WorkingDir:   logs,
	})
	next(t, ch)
	pidFile := filepath.Join(logs, "child.pid")
	g := gomega.NewWithT(t)
	var childPid int
	g.Eventually(func() int {
		raw, _ := os.ReadFile(pidFile)
		childPid, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
		return childPid
	}).WithTimeout(4*time.Second).WithPolling(20*time.Millisecond).ShouldNot(gomega.BeZero(), "the child writing its pid")
	m.Stop("job:b", 200*time.Millisecond)
	st := next(t, ch)
	if st.State != gcsv1.ProcessState_PROCESS_STATE_EXITED || !st.Stopped {
		t.Fatalf("exit event = %v, want EXITED and stopped", st)
	}
	g.Eventually(func() bool { return processAlive(childPid) }).WithTimeout(4*time.Second).WithPolling(20*time.Millisecond).
		Should(gomega.BeFalse(), "child %d survived the stop", childPid)
}

func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestFailedToStart(t *testing.T) {
	m, ch, _ := newManager(t, nil)
	m.Start(context.Background(), &gcsv1.ProcessSpec{ProcessId: "x", ShellCommand: "true", WorkingDir: "/does/not/exist", LogFile: "x.log"})
	st := next(t, ch)
	if st.State != gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START || !strings.HasPrefix(st.Message, "Runtime env setup failed") {
		t.Errorf("event = %v, want FAILED_TO_START with a runtime env message", st)
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWorkingDirFromHTTPZip(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"flat archive", map[string]string{"script.sh": "echo from-zip"}},
		{"single top-level directory", map[string]string{"repo-main/script.sh": "echo from-zip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := zipOf(t, tt.files)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/pkg.zip" {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write(data)
			}))
			defer srv.Close()
			m, ch, _ := newManager(t, &WorkingDirResolver{CacheDir: t.TempDir(), HTTPClient: srv.Client()})
			m.Start(context.Background(), &gcsv1.ProcessSpec{ProcessId: "z", ShellCommand: "sh script.sh", WorkingDir: srv.URL + "/pkg.zip", LogFile: "z.log"})
			next(t, ch)
			st := next(t, ch)
			if st.ExitCode != 0 || st.LogTail != "from-zip\n" {
				t.Errorf("exit = %d, log = %q; want 0 and from-zip", st.ExitCode, st.LogTail)
			}
		})
	}
}

func TestUnzipRejectsEscapes(t *testing.T) {
	if err := Unzip(zipOf(t, map[string]string{"../evil": "x"}), t.TempDir()); err == nil {
		t.Error("Unzip accepted an entry outside the destination")
	}
}

func TestHandler(t *testing.T) {
	logs := t.TempDir()
	_ = os.WriteFile(filepath.Join(logs, "job-driver-a.log"), []byte("line1\nline2\n"), 0o644)
	tests := []struct {
		name     string
		check    GCSCheck
		path     string
		wantCode int
		wantBody string
	}{
		{"raylet health", nil, "/api/local_raylet_healthz", 200, "success"},
		{"worker healthz", nil, "/api/healthz", 200, "raylet: success\ngcs: success (no local gcs)"},
		{"head healthz", func(context.Context) error { return nil }, "/api/healthz", 200, "raylet: success\ngcs: success"},
		{"head healthz gcs down", func(context.Context) error { return os.ErrDeadlineExceeded }, "/api/healthz", 503, "gcs: Health check failed"},
		{"whole log", nil, "/api/local_logs/job-driver-a.log", 200, "line1\nline2\n"},
		{"log from offset", nil, "/api/local_logs/job-driver-a.log?offset=6", 200, "line2\n"},
		{"log not there yet", nil, "/api/local_logs/job-driver-b.log", 200, ""},
		{"bad offset", nil, "/api/local_logs/job-driver-a.log?offset=-1", 400, "offset"},
		{"hidden file", nil, "/api/local_logs/.secret", 400, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handler(logs, tt.check).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) || tt.wantBody == "" && rec.Body.Len() != 0 {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}
