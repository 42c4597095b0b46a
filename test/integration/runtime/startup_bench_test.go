package runtime_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// BenchmarkHeadStartup measures `ray start --head --block` (a fresh process)
// until its dashboard answers /api/gcs_healthz with success.
func BenchmarkHeadStartup(b *testing.B) {
	client := &http.Client{Timeout: time.Second}
	for b.Loop() {
		b.StopTimer()
		tmp := b.TempDir()
		dashPort := rayproc.FreePort(b)
		args := []string{"start", "--head", "--block", "--node-ip-address=127.0.0.1",
			"--port=" + strconv.Itoa(rayproc.FreePort(b)), "--dashboard-host=127.0.0.1", "--dashboard-port=" + strconv.Itoa(dashPort),
			"--dashboard-agent-listen-port=0", "--metrics-export-port=0", "--temp-dir=" + tmp}
		url := "http://127.0.0.1:" + strconv.Itoa(dashPort) + "/api/gcs_healthz"
		b.StartTimer()
		p := startRay(b, baseEnv(tmp), args...)
		healthy := false
		for range 2000 {
			resp, err := client.Get(url)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "success") {
					healthy = true
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		if !healthy {
			b.Fatal("head never became healthy")
		}
		p.Stop()
		b.StartTimer()
	}
}
