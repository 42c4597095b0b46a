package runtime_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/onsi/gomega"
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
		// Polled every millisecond: the poll period bounds the measurement's resolution.
		gomega.NewWithT(b).Eventually(func(g gomega.Gomega) {
			resp, err := client.Get(url)
			g.Expect(err).NotTo(gomega.HaveOccurred())
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			g.Expect(resp.StatusCode).To(gomega.Equal(http.StatusOK))
			g.Expect(string(body)).To(gomega.ContainSubstring("success"))
		}).WithTimeout(30*time.Second).WithPolling(time.Millisecond).Should(gomega.Succeed(), "the head becoming healthy")
		b.StopTimer()
		p.Stop()
		b.StartTimer()
	}
}
