// Command serve benchmarks the Serve data plane side by side with what it
// competes with, in one run on one machine (docs/performance.md):
//
//   - a bare Go net/http no-op server, called directly (the floor of what
//     HTTP costs here);
//   - nginx with one worker as a keep-alive reverse proxy in front of that
//     same Go server (skipped, saying how to get nginx, when it is absent);
//   - the node's HTTP proxy → a `builtin:noop` Go replica process;
//   - the node's HTTP proxy → a Python no-op replica (pyapps is not needed:
//     python/examples/noop.py).
//
// Each path is loaded closed-loop (every connection sends its next request
// when the last answer arrived) at each -conns count, by wrk with one
// thread when it is installed, else by a Go client in this process; rounds
// are interleaved (every path once per round) so a noisy neighbour hurts
// all paths alike, and min and median over the rounds are printed, with the
// ratios the performance goals are stated in. The same run measures gRPC
// unary calls through the gRPC proxy against a bare Go gRPC server,
// streaming through both proxies (builtin:stream: tokens per second and
// time to first chunk), the wire protocol alone (straight to a replica's
// socket, no proxy), and the throughput gain of @serve.batch at batch size
// 8 over 1 (pyapps/batchbench.py). It is a benchmark, not a test: it
// reports numbers and never fails on them.
//
//	go run ./test/bench/serve -duration 3s -rounds 3 -conns 16,64
//	go run ./test/bench/serve -profile .cache/profile-serve   # pprof of the proxy and agent under load
//
// It builds ./cmd/ray (built-in replicas run as `ray serve-replica`) and
// runs a head node in this process, so the proxy and agent profiled are
// this process; the Go backend runs as a child process, as replicas do.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcfloor"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

type options struct {
	duration  time.Duration
	rounds    int
	conns     []int
	load      string
	python    bool
	pythonBin string
	// pythonBinSet: -python-bin was given, so a missing interpreter is an error.
	pythonBinSet bool
	extras       bool
	profileDir   string
	profileFor   time.Duration
	profilePath  string
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == backendFlag {
		serveBackend()
		return
	}
	var o options
	var conns string
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long each path is loaded per round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each loads every path once, in turn")
	flag.StringVar(&conns, "conns", "16,64", "comma-separated connection counts")
	flag.StringVar(&o.load, "load", "auto", "load generator: wrk, go, or auto (wrk when installed)")
	flag.BoolVar(&o.python, "python", true, "also measure a Python replica (needs python3)")
	flag.StringVar(&o.pythonBin, "python-bin", defaultPython(), "the Python replicas' interpreter: Debian's, as the image ships, when there is one")
	flag.BoolVar(&o.extras, "extras", true, "after the HTTP table, also measure the replicas alone, gRPC, streaming and batching")
	flag.StringVar(&o.profileDir, "profile", "", "instead of the benchmark, write CPU and allocation profiles of this process (proxy and agent) under load to this directory")
	flag.DurationVar(&o.profileFor, "profile-duration", 10*time.Second, "how long -profile loads the proxy")
	flag.StringVar(&o.profilePath, "profile-path", "/noop", "route -profile loads: /noop (Go replica) or /py (Python replica)")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) { o.pythonBinSet = o.pythonBinSet || f.Name == "python-bin" })
	for _, c := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bench-serve: -conns: %q is not a positive number\n", c)
			os.Exit(2)
		}
		o.conns = append(o.conns, n)
	}
	if o.rounds <= 0 {
		fmt.Fprintln(os.Stderr, "bench-serve: -rounds must be at least 1")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-serve:", err)
		os.Exit(1)
	}
}

func pickLoader(choice string) (loader, error) {
	switch choice {
	case "go":
		return goLoader{}, nil
	case "wrk", "auto":
		p, err := exec.LookPath("wrk")
		if err == nil {
			return wrkLoader{path: p}, nil
		}
		if choice == "wrk" {
			return nil, errors.New("-load wrk: wrk is not installed (Debian: apt-get install wrk)")
		}
		fmt.Println("wrk not found (Debian: apt-get install wrk); using the Go client, which shares this process's cores with the proxy")
		return goLoader{}, nil
	}
	return nil, fmt.Errorf("-load: %q is not one of wrk, go, auto", choice)
}

func run(o options) error {
	// This process stands in for `ray start`, which holds the collector's
	// floor for the node's whole life (RAYK8S_GC_FLOOR_MB as there).
	mb, err := gcfloor.FromEnv(os.Getenv, gcfloor.NodeDefaultMB)
	if err != nil {
		return err
	}
	floor := gcfloor.Hold(mb)
	defer floor.Release()
	ld, err := pickLoader(o.load)
	if err != nil {
		return err
	}
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
	withPython := o.python
	python := o.pythonBin
	if withPython {
		if _, err := exec.LookPath(python); err != nil {
			if o.pythonBinSet {
				return fmt.Errorf("-python-bin: %w", err)
			}
			fmt.Fprintf(os.Stderr, "No Python replica row: %s is not found (-python-bin sets the interpreter)\n", python)
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
		RayExecutable: rayBin, Logger: logr.Discard(), ServePython: python,
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
	if o.profileDir != "" {
		return profile(o, ld, proxy+o.profilePath)
	}

	backend, backendCmd, err := startBackend(0)
	if err != nil {
		return err
	}
	defer func() { _ = backendCmd.Process.Kill(); _ = backendCmd.Wait() }()
	// CPU is split by process; the Go servers are children of this
	// process as replicas are, so they are named by pid.
	procNames := map[int]string{backendCmd.Process.Pid: "Go server"}
	type path struct {
		name, url string
		rows      []*series
	}
	paths := []*path{{name: "Go net/http no-op, direct", url: "http://" + backend + "/"}}
	direct := paths[0]
	var viaNginx, viaNginx1 *path
	if bin, err := findNginx(); err != nil {
		fmt.Println("nginx not found: its rows are skipped (Debian: apt-get install nginx-light); the bench installs nothing itself")
	} else {
		url, stop, err := startNginx(bin, tmp, backend)
		if err != nil {
			return err
		}
		defer stop()
		viaNginx = &path{name: "nginx (1 worker) → Go server", url: url}
		// The same server on one thread, as a built-in replica of one CPU
		// runs: the baseline that gives both sides the same Go settings.
		backend1, backend1Cmd, err := startBackend(1)
		if err != nil {
			return err
		}
		defer func() { _ = backend1Cmd.Process.Kill(); _ = backend1Cmd.Wait() }()
		procNames[backend1Cmd.Process.Pid] = "Go server"
		dir1 := filepath.Join(tmp, "nginx-1p")
		if err := os.MkdirAll(dir1, 0o700); err != nil {
			return err
		}
		url1, stop1, err := startNginx(bin, dir1, backend1)
		if err != nil {
			return err
		}
		defer stop1()
		viaNginx1 = &path{name: "nginx → Go server, GOMAXPROCS=1", url: url1}
		paths = append(paths, viaNginx, viaNginx1)
	}
	viaGo := &path{name: "proxy → builtin:noop replica", url: proxy + "/noop"}
	paths = append(paths, viaGo)
	var viaPy *path
	if withPython {
		viaPy = &path{name: "proxy → Python no-op replica", url: proxy + "/py"}
		paths = append(paths, viaPy)
	}

	// The serving side's CPU per request is measured around wrk only: the
	// Go client would count itself.
	_, wrk := ld.(wrkLoader)
	fmt.Printf("Serve HTTP no-op benchmark: %s; %d rounds × %s per path and connection count, interleaved; GOMAXPROCS=%d, %d CPUs; node GC floor %d MiB; built-in replicas' GOMAXPROCS from num_cpus (1)\n",
		ld.name(), o.rounds, o.duration, runtime.GOMAXPROCS(0), runtime.NumCPU(), floor.Size()>>20)
	for _, p := range paths {
		// Warm connections, caches and the Python replica's code paths.
		if _, err := ld.run(p.url, o.conns[0], time.Second); err != nil {
			return err
		}
		for _, c := range o.conns {
			p.rows = append(p.rows, &series{name: p.name, conns: c})
		}
	}
	for r := range o.rounds {
		for ci, c := range o.conns {
			for _, p := range paths {
				before, cpuOK := serverCPUSplit(procNames)
				s, err := ld.run(p.url, c, o.duration)
				if err != nil {
					return err
				}
				if after, ok := serverCPUSplit(procNames); ok && cpuOK && wrk && s.qps > 0 {
					s.cpuSplit = map[string]time.Duration{}
					n := s.qps * o.duration.Seconds()
					for name, d := range after {
						if used := d - before[name]; used > 0 {
							s.cpuSplit[name] = time.Duration(float64(used) / n)
							s.cpu += s.cpuSplit[name]
						}
					}
					s.clientPerReq = time.Duration(float64(s.clientCPU) / n)
				}
				p.rows[ci].samples = append(p.rows[ci].samples, s)
			}
		}
		fmt.Fprintf(os.Stderr, "round %d of %d done\n", r+1, o.rounds)
	}
	var rows []*series
	for ci := range o.conns {
		for _, p := range paths {
			rows = append(rows, p.rows[ci])
		}
	}
	fmt.Print(table(rows))
	fmt.Println()
	if wrk {
		fmt.Println("CPU per request by process (medians over the rounds; processes under 0.5µs left out):")
		for _, s := range rows {
			fmt.Printf("  %-36s %5d  %s\n", s.name, s.conns, s.cpuSplitLine())
		}
		fmt.Println()
	}
	for ci, c := range o.conns {
		fmt.Printf("ratios at %d connections (medians over the rounds):\n", c)
		d := direct.rows[ci]
		if viaNginx != nil {
			ng, pg := viaNginx.rows[ci], viaGo.rows[ci]
			fmt.Printf("  QPS proxy → Go replica / nginx → Go server:   %.2f  (goal ≥ 1.00)\n", pg.medQPS()/ng.medQPS())
			fmt.Printf("  p50 added over direct: proxy %s, nginx %s  (goal: proxy ≤ nginx)\n", fmtDur(pg.medP50()-d.medP50()), fmtDur(ng.medP50()-d.medP50()))
			if pc, nc := pg.medCPU(), ng.medCPU(); pc > 0 && nc > 0 {
				fmt.Printf("  serving CPU per request: proxy + Go replica %s, nginx + Go server %s  (ratio %.2f)\n", fmtMicros(pc), fmtMicros(nc), float64(pc)/float64(nc))
			}
			if viaPy != nil {
				fmt.Printf("  QPS proxy → Python replica / nginx → Go server: %.2f\n", viaPy.rows[ci].medQPS()/ng.medQPS())
			}
			n1 := viaNginx1.rows[ci]
			fmt.Printf("  against the Go server on one thread: QPS %.2f, p50 added %s vs %s", pg.medQPS()/n1.medQPS(), fmtDur(pg.medP50()-d.medP50()), fmtDur(n1.medP50()-d.medP50()))
			if pc, nc := pg.medCPU(), n1.medCPU(); pc > 0 && nc > 0 {
				fmt.Printf(", serving CPU per request ratio %.2f", float64(pc)/float64(nc))
			}
			fmt.Println()
		} else {
			fmt.Printf("  p50 added over direct: proxy %s\n", fmtDur(viaGo.rows[ci].medP50()-d.medP50()))
		}
		if viaPy != nil {
			fmt.Printf("  QPS Python replica / Go replica, through the proxy: %.2f  (goal ≥ 0.80)\n", viaPy.rows[ci].medQPS()/viaGo.rows[ci].medQPS())
		}
	}

	if !o.extras {
		return nil
	}
	// The wire protocol alone: what the replicas cost without proxy and
	// router, with the Go client (it speaks the frames).
	fmt.Println()
	var wireRows []*series
	for _, c := range o.conns {
		s := &series{name: "wire → builtin:noop replica", conns: c}
		s.samples = append(s.samples, measure(o.duration, c, socketCaller(ctx, n.ReplicaSocketDir(), replicas["noop"])).sample())
		wireRows = append(wireRows, s)
		if withPython {
			s := &series{name: "wire → Python no-op replica", conns: c}
			s.samples = append(s.samples, measure(o.duration, c, socketCaller(ctx, n.ReplicaSocketDir(), replicas["pynoop"])).sample())
			wireRows = append(wireRows, s)
		}
	}
	fmt.Println("the replicas alone (Go client on one multiplexed socket connection, no proxy, no router; one round):")
	fmt.Print(table(wireRows))

	grpcProxy := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	grpcFloor := startGRPCFloor()
	fmt.Println()
	fmt.Println("gRPC unary no-op (Go client, one HTTP/2 connection, concurrent calls):")
	var grpcRows []*series
	floorG, viaG := map[int]*series{}, map[int]*series{}
	for _, c := range o.conns {
		floorG[c] = &series{name: "Go gRPC no-op server, direct", conns: c}
		viaG[c] = &series{name: "gRPC proxy → builtin:noop", conns: c}
		grpcRows = append(grpcRows, floorG[c], viaG[c])
	}
	for range o.rounds {
		for _, c := range o.conns {
			floorG[c].samples = append(floorG[c].samples, measure(o.duration, c, grpcCaller(grpcFloor, "", "/bench.Noop/Call")).sample())
			viaG[c].samples = append(viaG[c].samples, measure(o.duration, c, grpcCaller(grpcProxy, "noop", "/bench.Noop/Call")).sample())
		}
	}
	fmt.Print(table(grpcRows))
	for _, c := range o.conns {
		fmt.Printf("gRPC unary QPS through the proxy / direct at %d: %.2f\n", c, viaG[c].medQPS()/floorG[c].medQPS())
	}

	fmt.Println()
	fmt.Printf("%-34s %12s %14s %12s\n", "streaming (builtin:stream)", "tokens/s", "first chunk", "chunks")
	const tokens = 2000
	h := measureStream(httpStreamer(proxy+fmt.Sprintf("/stream?chunks=%d&interval_s=0&chunk_size=32", tokens)), 20)
	h.report("HTTP proxy, 32 B chunks")
	g := measureStream(grpcStreamer(grpcProxy, "stream", fmt.Sprintf("chunks=%d&interval_s=0&chunk_size=32", tokens)), 20)
	g.report("gRPC proxy, 32 B messages")

	if withPython {
		fmt.Println()
		b1 := measure(o.duration, 64, httpCaller(proxy+"/batch1")).sample()
		report("Python @serve.batch size 1", b1)
		b8 := measure(o.duration, 64, httpCaller(proxy+"/batch8")).sample()
		report("Python @serve.batch size 8", b8)
		fmt.Printf("batching throughput gain, size 8 / size 1 (64 clients, 5 ms per model call): %.2fx\n", b8.qps/b1.qps)
	}
	return nil
}

// profile loads url at the largest connection count while this process —
// the head node with its proxy and agent — records a CPU profile, and
// writes the allocations made during the load.
func profile(o options, ld loader, url string) error {
	if _, ok := ld.(goLoader); ok {
		fmt.Println("note: the Go client runs in this process, so its own work is in the profiles too; install wrk to keep them to the proxy and agent")
	}
	if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
		return err
	}
	conns := o.conns[len(o.conns)-1]
	if _, err := ld.run(url, conns, time.Second); err != nil {
		return err
	}
	write := func(name, profile string) error {
		f, err := os.Create(filepath.Join(o.profileDir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		return pprof.Lookup(profile).WriteTo(f, 0)
	}
	if err := write("allocs-base.pprof", "allocs"); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(o.profileDir, "cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	tf, err := os.Create(filepath.Join(o.profileDir, "trace.out"))
	if err != nil {
		return err
	}
	defer tf.Close()
	// The execution trace covers the first two seconds: enough to see
	// where requests wait (go tool trace -pprof=sched).
	if err := trace.Start(tf); err != nil {
		return err
	}
	stopTrace := time.AfterFunc(min(2*time.Second, o.profileFor), trace.Stop)
	s, err := ld.run(url, conns, o.profileFor)
	pprof.StopCPUProfile()
	if stopTrace.Stop() {
		trace.Stop()
	}
	if err != nil {
		return err
	}
	if err := write("allocs.pprof", "allocs"); err != nil {
		return err
	}
	fmt.Printf("profiled %s at %d connections for %s with %s: %.0f QPS, p50 %s\n", url, conns, o.profileFor, ld.name(), s.qps, fmtDur(s.p50))
	fmt.Printf("wrote %s/cpu.pprof, allocs.pprof, allocs-base.pprof (allocations before the load, for -diff_base) and trace.out (the first 2s)\n", o.profileDir)
	return nil
}

func report(name string, s sample) {
	line := fmt.Sprintf("%-34s %10.0f %10s %10s", name, s.qps, fmtDur(s.p50), fmtDur(s.p99))
	if s.errors > 0 {
		line += fmt.Sprintf("  (%d errors)", s.errors)
	}
	fmt.Println(line)
}

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

// defaultPython is Debian's interpreter when there is one: the image's, which
// sees Debian's packages (uvloop among them); another python3 may come first
// on PATH.
func defaultPython() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}
