// Command serve benchmarks the Serve data plane: no-op requests through a
// node's HTTP proxy (proxy → router → replica over its Unix socket) against
// a direct call to the same replica (the wire protocol straight to its
// socket, no proxy, no router), for the built-in noop replica and a Python
// one, plus a bare Go HTTP no-op server as the floor of what HTTP costs on
// the machine. It prints QPS and p50/p99 latency per path. It is a
// benchmark, not a test: it reports numbers and never fails on them.
//
// The same run measures gRPC: unary no-op QPS through the node's gRPC proxy
// against a bare Go gRPC server (the floor), streaming through both proxies
// (builtin:stream: tokens per second and time to first chunk), and the
// throughput gain of @serve.batch at batch size 8 over 1 on a Python replica
// whose model call costs a fixed 5 ms per batch (pyapps/batchbench.py).
//
//	go run ./test/bench/serve -duration 5s -concurrency 16
//
// It builds ./cmd/ray (built-in replicas run as `ray serve-replica`) and
// runs a head node in-process, so the load generator shares the machine's
// cores with the proxy and the replicas, as a co-located client would.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long each path is loaded")
	concurrency := flag.Int("concurrency", 16, "concurrent closed-loop clients")
	python := flag.Bool("python", true, "also measure a Python replica (needs python3)")
	flag.Parse()
	if err := run(*duration, *concurrency, *python); err != nil {
		fmt.Fprintln(os.Stderr, "bench-serve:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, concurrency int, withPython bool) error {
	tmp, err := os.MkdirTemp("", "bench-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rayBin := filepath.Join(tmp, "ray")
	build := exec.Command("go", "build", "-o", rayBin, "github.com/rayk8s/rayk8s/cmd/ray")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building ray: %w", err)
	}
	_, thisFile, _, _ := runtime.Caller(0)
	pythonDir := filepath.Join(filepath.Dir(thisFile), "..", "..", "..", "python")
	if withPython {
		if _, err := exec.LookPath("python3"); err != nil {
			withPython = false
		}
	}
	if err := os.Setenv("PYTHONPATH", pythonDir); err != nil {
		return err
	}

	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{
		Head: true, NodeIP: "127.0.0.1", IncludeDashboard: true, DashboardHost: "127.0.0.1",
		Resources: map[string]float64{"CPU": 4}, TempDir: tmp, ServeHTTPHost: "127.0.0.1",
		RayExecutable: rayBin, Logger: logr.Discard(),
	})
	if err != nil {
		return err
	}
	defer func() { _ = n.Stop() }()
	dash, err := dashboard.NewClient(n.DashboardURL())
	if err != nil {
		return err
	}
	port, grpcPort := freePort(), freePort()
	apps := `{"name": "noop", "import_path": "builtin:noop", "route_prefix": "/noop",
	  "deployments": [{"name": "noop", "max_ongoing_requests": 100, "ray_actor_options": {"num_cpus": 1}}]},
	  {"name": "stream", "import_path": "builtin:stream", "route_prefix": "/stream",
	  "deployments": [{"name": "stream", "max_ongoing_requests": 100, "ray_actor_options": {"num_cpus": 0.1}}]}`
	names := []string{"noop", "stream"}
	if withPython {
		apps += fmt.Sprintf(`, {"name": "pynoop", "import_path": "noop:app", "route_prefix": "/py", "runtime_env": {"working_dir": %q},
		  "deployments": [{"name": "Noop", "ray_actor_options": {"num_cpus": 1}}]}`, filepath.Join(pythonDir, "examples"))
		names = append(names, "pynoop")
		benchDir := filepath.Join(filepath.Dir(thisFile), "pyapps")
		for _, size := range []int{1, 8} {
			apps += fmt.Sprintf(`, {"name": "batch%d", "import_path": "batchbench:app", "route_prefix": "/batch%d", "runtime_env": {"working_dir": %q},
			  "deployments": [{"name": "BatchBench", "max_ongoing_requests": 64, "user_config": {"max_batch_size": %d}, "ray_actor_options": {"num_cpus": 0.1}}]}`,
				size, size, benchDir, size)
			names = append(names, fmt.Sprintf("batch%d", size))
		}
	}
	// Servicer functions switch the gRPC proxy on; only Python replicas
	// would import them, and the benchmark sends them raw bytes.
	cfg := fmt.Sprintf(`{"http_options": {"port": %d}, "grpc_options": {"port": %d, "grpc_servicer_functions": ["greeter_pb2_grpc.add_GreeterServicer_to_server"]},
	  "applications": [%s]}`, port, grpcPort, apps)
	if err := dash.DeployServeApplications(ctx, json.RawMessage(cfg)); err != nil {
		return err
	}
	replicas, err := waitRunning(ctx, dash, names)
	if err != nil {
		return err
	}
	proxy := fmt.Sprintf("http://127.0.0.1:%d", port)
	fmt.Printf("Serve no-op benchmark: %d closed-loop clients, %s per path, GOMAXPROCS=%d, %d CPUs\n", concurrency, duration, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("%-34s %10s %10s %10s\n", "path", "QPS", "p50", "p99")

	report("go net/http no-op server (floor)", measure(duration, concurrency, httpCaller(startFloorServer())))
	report("proxy → builtin:noop replica", measure(duration, concurrency, httpCaller(proxy+"/noop")))
	report("direct → builtin:noop replica", measure(duration, concurrency, socketCaller(ctx, n.ReplicaSocketDir(), replicas["noop"])))
	if withPython {
		report("proxy → Python no-op replica", measure(duration, concurrency, httpCaller(proxy+"/py")))
		report("direct → Python no-op replica", measure(duration, concurrency, socketCaller(ctx, n.ReplicaSocketDir(), replicas["pynoop"])))
	}

	grpcProxy := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	fmt.Println()
	floorG := measure(duration, concurrency, grpcCaller(startGRPCFloor(), "", "/bench.Noop/Call"))
	report("go gRPC no-op server (direct)", floorG)
	viaG := measure(duration, concurrency, grpcCaller(grpcProxy, "noop", "/bench.Noop/Call"))
	report("gRPC proxy → builtin:noop", viaG)
	fmt.Printf("gRPC unary QPS through the proxy / direct: %.2f\n", qps(viaG)/qps(floorG))

	fmt.Println()
	fmt.Printf("%-34s %12s %14s %12s\n", "streaming (builtin:stream)", "tokens/s", "first chunk", "chunks")
	const tokens = 2000
	h := measureStream(httpStreamer(proxy+fmt.Sprintf("/stream?chunks=%d&interval_s=0&chunk_size=32", tokens)), 20)
	h.report("HTTP proxy, 32 B chunks")
	g := measureStream(grpcStreamer(grpcProxy, "stream", fmt.Sprintf("chunks=%d&interval_s=0&chunk_size=32", tokens)), 20)
	g.report("gRPC proxy, 32 B messages")

	if withPython {
		fmt.Println()
		b1 := measure(duration, 64, httpCaller(proxy+"/batch1"))
		report("Python @serve.batch size 1", b1)
		b8 := measure(duration, 64, httpCaller(proxy+"/batch8"))
		report("Python @serve.batch size 8", b8)
		fmt.Printf("batching throughput gain, size 8 / size 1 (64 clients, 5 ms per model call): %.2fx\n", qps(b8)/qps(b1))
	}
	return nil
}

func qps(r result) float64 { return float64(r.n) / r.elapsed.Seconds() }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitRunning(ctx context.Context, dash *dashboard.Client, names []string) (map[string]string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		d, err := dash.GetServeApplications(ctx)
		if err == nil {
			out := map[string]string{}
			for _, name := range names {
				a, ok := d.Applications[name]
				if !ok || a.Status != dashboard.ApplicationStatusRunning {
					break
				}
				for _, dep := range a.Deployments {
					if len(dep.Replicas) > 0 {
						out[name] = dep.Replicas[0].ReplicaID
					}
				}
			}
			if len(out) == len(names) {
				return out, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, errors.New("applications did not become RUNNING within 60s")
}

func startFloorServer() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	}()
	return "http://" + l.Addr().String() + "/"
}

type caller func() error

func httpCaller(url string) func() caller {
	tr := &http.Transport{MaxIdleConnsPerHost: 1024}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return func() caller {
		return func() error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			return nil
		}
	}
}

// socketCaller calls the replica the way a node agent does, over one
// multiplexed connection to its socket.
func socketCaller(ctx context.Context, dir, replicaID string) func() caller {
	conn, err := replica.Dial(ctx, replica.SocketPath(dir, replicaID), nil)
	if err != nil {
		panic(err)
	}
	meta := wire.Meta{Kind: wire.KindHTTP, Method: "GET", Path: "/"}
	return func() caller {
		return func() error {
			s, err := conn.Open()
			if err != nil {
				return err
			}
			_, err = wire.Call(ctx, s, meta, nil)
			return err
		}
	}
}

type result struct {
	n         int
	errors    int
	elapsed   time.Duration
	latencies []time.Duration
}

func measure(d time.Duration, concurrency int, newCaller func() caller) result {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	start := time.Now()
	stop := start.Add(d)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := newCaller()
			var lat []time.Duration
			e := 0
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := call(); err != nil {
					e++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return result{n: len(all), errors: errs, elapsed: time.Since(start), latencies: all}
}

func report(name string, r result) {
	slices.Sort(r.latencies)
	pct := func(p float64) string {
		if len(r.latencies) == 0 {
			return "-"
		}
		return fmtDur(r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))])
	}
	qps := float64(r.n) / r.elapsed.Seconds()
	line := fmt.Sprintf("%-34s %10s %10s %10s", name, strconv.FormatFloat(qps, 'f', 0, 64), pct(0.50), pct(0.99))
	if r.errors > 0 {
		line += fmt.Sprintf("  (%d errors)", r.errors)
	}
	fmt.Println(line)
}

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + "ms"
}
