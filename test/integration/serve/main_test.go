// Package serve_test runs Serve on real processes: a head and two worker
// node agents started with the `ray` binary on 127.0.0.1, .2 and .3, with
// applications deployed through the Serve REST API and called over HTTP
// through every node's proxy.
package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

type proc = rayproc.Proc

func startRay(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	return rayproc.Start(t, rayBin, env, args...)
}

// eventually waits up to timeout for cond to hold, polling every 100ms.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	gomega.NewWithT(t).Eventually(cond).WithTimeout(timeout).WithPolling(100*time.Millisecond).Should(gomega.BeTrue(), "waiting for %s", what)
}

type cluster struct {
	dashURL  string
	httpPort int
	proxies  []string // http://ip:port of each node's proxy, head first
	metrics  []string // http://127.0.0.1:port/metrics of each node, head first
	head     *proc
	// headEnv and headArgs start the head again (restart tests).
	headEnv   []string
	headArgs  []string
	workers   []*proc
	pythonDir string
	// gcsAddr, tmp and extraEnv start more workers (addWorker).
	gcsAddr  string
	tmp      string
	extraEnv []string
}

// nodeEnv is a node's environment: no inherited RAY_*, fast heartbeats,
// the SDK on PYTHONPATH and the proxy bound to the node's own address so
// three nodes share one machine.
func nodeEnv(tmp, ip, pythonDir string) []string {
	return rayproc.Env([]string{"RAY_", "PYTHONPATH="},
		"RAY_TMPDIR="+tmp,
		"RAY_health_check_period_ms=100",
		"RAY_health_check_failure_threshold=20",
		"RAY_SERVE_DEFAULT_HTTP_HOST="+ip,
		"PYTHONPATH="+pythonDir,
	)
}

// startCluster starts a head and two workers with 2 CPUs each; extraEnv is
// added to each node's environment.
func startCluster(t *testing.T, extraEnv ...string) *cluster {
	t.Helper()
	return startClusterWithHeadCPUs(t, 2, extraEnv...)
}

// startClusterWithHeadCPUs is startCluster with the head offering headCPUs;
// 0, as KubeRay recommends for a head, keeps replicas and job drivers that
// request CPUs off the head.
func startClusterWithHeadCPUs(t *testing.T, headCPUs int, extraEnv ...string) *cluster {
	t.Helper()
	tmp := t.TempDir()
	pythonDir, err := filepath.Abs("../../../python")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{httpPort: rayproc.FreePort(t), pythonDir: pythonDir, tmp: tmp, extraEnv: extraEnv}
	dashPort := rayproc.FreePort(t)
	gcsPort := rayproc.FreePort(t)
	c.gcsAddr = "127.0.0.1:" + strconv.Itoa(gcsPort)
	c.dashURL = "http://127.0.0.1:" + strconv.Itoa(dashPort)
	metricsPort := func() string {
		p := rayproc.FreePort(t)
		c.metrics = append(c.metrics, fmt.Sprintf("http://127.0.0.1:%d/metrics", p))
		return strconv.Itoa(p)
	}
	c.headEnv = append(nodeEnv(tmp, "127.0.0.1", pythonDir), extraEnv...)
	c.headArgs = []string{"start", "--head", "--block",
		"--node-ip-address=127.0.0.1", "--port=" + strconv.Itoa(gcsPort),
		"--dashboard-host=127.0.0.1", "--dashboard-port=" + strconv.Itoa(dashPort),
		"--dashboard-agent-listen-port=" + strconv.Itoa(rayproc.FreePort(t)), "--metrics-export-port=" + metricsPort(),
		"--num-cpus=" + strconv.Itoa(headCPUs), "--temp-dir=" + filepath.Join(tmp, "head")}
	c.head = startRay(t, c.headEnv, c.headArgs...)
	c.proxies = append(c.proxies, fmt.Sprintf("http://127.0.0.1:%d", c.httpPort))
	for i := range 2 {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		c.workers = append(c.workers, startRay(t, append(nodeEnv(tmp, ip, pythonDir), extraEnv...), "start", "--block",
			"--address=127.0.0.1:"+strconv.Itoa(gcsPort), "--node-ip-address="+ip,
			"--dashboard-agent-listen-port="+strconv.Itoa(rayproc.FreePort(t)), "--metrics-export-port="+metricsPort(),
			"--num-cpus=2", "--temp-dir="+filepath.Join(tmp, "worker"+strconv.Itoa(i))))
		c.proxies = append(c.proxies, fmt.Sprintf("http://%s:%d", ip, c.httpPort))
	}
	eventually(t, "the dashboard", 10*time.Second, func() bool {
		code, _ := c.do(t, "GET", c.dashURL+"/api/version", "")
		return code == 200
	})
	// Deploy only once every node is up, so replicas can spread.
	eventually(t, "3 alive nodes", 30*time.Second, func() bool {
		out, err := exec.Command(rayBin, "status", "--address=127.0.0.1:"+strconv.Itoa(gcsPort)).CombinedOutput()
		return err == nil && strings.Count(string(out), " ALIVE") == 3
	})
	return c
}

// addWorker starts one more worker node, with 2 CPUs, at ip.
func (c *cluster) addWorker(t *testing.T, ip string) {
	t.Helper()
	c.workers = append(c.workers, startRay(t, append(nodeEnv(c.tmp, ip, c.pythonDir), c.extraEnv...), "start", "--block",
		"--address="+c.gcsAddr, "--node-ip-address="+ip,
		"--dashboard-agent-listen-port="+strconv.Itoa(rayproc.FreePort(t)), "--metrics-export-port="+strconv.Itoa(rayproc.FreePort(t)),
		"--num-cpus=2", "--temp-dir="+filepath.Join(c.tmp, "worker-"+ip)))
	c.proxies = append(c.proxies, fmt.Sprintf("http://%s:%d", ip, c.httpPort))
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func (c *cluster) do(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// config builds a deploy config with the cluster's proxy port.
func (c *cluster) config(apps ...string) string {
	return fmt.Sprintf(`{"http_options": {"port": %d}, "applications": [%s]}`, c.httpPort, strings.Join(apps, ","))
}

func (c *cluster) put(t testing.TB, cfg string) (int, string) {
	t.Helper()
	return c.do(t, "PUT", c.dashURL+"/api/serve/applications/", cfg)
}

func (c *cluster) mustPut(t testing.TB, cfg string) {
	t.Helper()
	if code, body := c.put(t, cfg); code != 200 {
		t.Fatalf("PUT = %d %s", code, body)
	}
}

type replicaDetails struct {
	ReplicaID string `json:"replica_id"`
	State     string `json:"state"`
	NodeIP    string `json:"node_ip"`
	PID       int    `json:"pid"`
}

type deploymentDetails struct {
	Status   string           `json:"status"`
	Message  string           `json:"message"`
	Replicas []replicaDetails `json:"replicas"`
}

type appDetails struct {
	Status      string                       `json:"status"`
	Message     string                       `json:"message"`
	Deployments map[string]deploymentDetails `json:"deployments"`
}

func (c *cluster) apps(t testing.TB) map[string]appDetails {
	t.Helper()
	code, body := c.do(t, "GET", c.dashURL+"/api/serve/applications/?api_type=declarative", "")
	if code != 200 {
		t.Fatalf("GET applications = %d %s", code, body)
	}
	var d struct {
		Applications map[string]appDetails `json:"applications"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	return d.Applications
}

// waitRunning waits until every named app is RUNNING with every replica
// RUNNING (no rollout or replacement in progress).
func (c *cluster) waitRunning(t testing.TB, names ...string) map[string]appDetails {
	t.Helper()
	var apps map[string]appDetails
	eventually(t, fmt.Sprintf("applications %v to be RUNNING", names), 60*time.Second, func() bool {
		apps = c.apps(t)
		for _, n := range names {
			a, ok := apps[n]
			if !ok || a.Status != "RUNNING" {
				return false
			}
			for _, d := range a.Deployments {
				for _, r := range d.Replicas {
					if r.State != "RUNNING" {
						return false
					}
				}
			}
		}
		return true
	})
	return apps
}

// load sends requests in a loop from workers goroutines until stopped and
// counts the outcomes.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ok       int
	failures []string
	bodies   map[string]int
}

func startLoad(c *cluster, workers int, path, body string, key func(string) string) *load {
	l := &load{stop: make(chan struct{}), bodies: map[string]int{}}
	for i := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			url := c.proxies[i%len(c.proxies)] + path
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(context.Background(), "POST", url, strings.NewReader(body))
				resp, err := client.Do(req)
				var code int
				var b []byte
				if err == nil {
					b, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				l.mu.Lock()
				switch {
				case err != nil:
					l.failures = append(l.failures, err.Error())
				case code != 200:
					l.failures = append(l.failures, fmt.Sprintf("%d %s", code, b))
				default:
					l.ok++
					if key != nil {
						l.bodies[key(string(b))]++
					}
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) count(k string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies[k]
}

func (l *load) finish() (int, []string) {
	close(l.stop)
	l.wg.Wait()
	return l.ok, l.failures
}

// metricSum adds up the samples of a metric in a node's /metrics whose
// labels contain every one of labels (`name="value"` each).
func (c *cluster) metricSum(t testing.TB, node int, name string, labels ...string) float64 {
	t.Helper()
	code, body := c.do(t, "GET", c.metrics[node], "")
	if code != 200 {
		t.Fatalf("GET %s = %d %s", c.metrics[node], code, body)
	}
	sum := 0.0
lines:
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

func jsonField(body, field string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return ""
	}
	return fmt.Sprint(m[field])
}
