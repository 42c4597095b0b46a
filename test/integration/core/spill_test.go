package core_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// TestObjectSpilling runs a driver that puts more than the head's object
// store holds: objects spill to the session's spill directory, read back
// equal, count in the spill metrics, and their files go with the job.
func TestObjectSpilling(t *testing.T) {
	tmp := t.TempDir()
	env := baseEnv(t, tmp)
	gcsPort, metricsPort := rayproc.FreePort(t), rayproc.FreePort(t)
	head := rayproc.Start(t, rayBin, env, "start", "--head", "--block",
		"--node-ip-address=127.0.0.1",
		"--port="+strconv.Itoa(gcsPort),
		"--include-dashboard=false",
		"--dashboard-agent-listen-port="+strconv.Itoa(rayproc.FreePort(t)),
		"--metrics-export-port="+strconv.Itoa(metricsPort),
		"--num-cpus=1",
		"--object-store-memory="+strconv.Itoa(80*1024*1024),
	)
	eventually(t, "the head's node recorded for local drivers", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(tmp, "ray", "rayk8s-core-nodes", "*.json"))
		return len(files) == 1
	})

	out := runPython(t, env, false, "spill.py")
	wantLines(t, out,
		"equal after spilling: 10",
		"task on a spilled object: True",
	)
	if !regexp.MustCompile(`(?m)^spilled at least 7: True \d+$`).MatchString(out) {
		t.Errorf("the driver did not see the spill files; output:\n%s", out)
	}

	metric := func(typ string) float64 {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^ray_spill_manager_request_total\{[^}]*Type="` + typ + `"[^}]*\} (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no ray_spill_manager_request_total{Type=%q} in the metrics:\n%s", typ, body)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if spilled, restored := metric("Spilled"), metric("Restored"); spilled < 7 || restored < 7 {
		t.Errorf("metrics count %v spills and %v restores; want at least 7 of each", spilled, restored)
	}

	// session_2* skips the session_latest link to the same session.
	spillFiles := func() []string {
		files, _ := filepath.Glob(filepath.Join(tmp, "ray", "session_2*", "ray_spilled_objects_*", "*"))
		return files
	}
	eventually(t, "the job's spill files deleted once its driver exited", 20*time.Second, func() bool {
		return len(spillFiles()) == 0
	})
	dirs, _ := filepath.Glob(filepath.Join(tmp, "ray", "session_2*", "ray_spilled_objects_*"))
	if len(dirs) != 1 {
		t.Fatalf("spill directories = %v; want the node's one", dirs)
	}
	head.Stop()
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Errorf("the spill directory outlived the node: %v", err)
	}
}
