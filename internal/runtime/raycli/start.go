package raycli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcfloor"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
)

// daemonChildEnv marks the background child `ray start` (without --block)
// re-executes itself as.
const daemonChildEnv = "RAYK8S_START_DAEMON_CHILD"

// startFlags are Ray's `ray start` options
// (https://docs.ray.io/en/latest/cluster/cli.html); KubeRay renders a pod's
// rayStartParams as these.
var startFlags = []flagSpec{
	{name: "head", kind: boolFlag, usage: "Start a head node: the control service (GCS), dashboard and Jobs API"},
	{name: "block", kind: boolFlag, usage: "Stay in the foreground; exit non-zero when a component dies"},
	{name: "address", kind: valueFlag, usage: "Control service `host:port` of the head to join (worker nodes)"},
	{name: "port", kind: valueFlag, usage: "Control service `port` on the head (default 6379)"},
	{name: "node-ip-address", kind: valueFlag, usage: "Address (`IP`) other nodes reach this node at (default: that of the default route)"},
	{name: "num-cpus", kind: valueFlag, usage: "Logical CPUs this node offers (a `number`; default: the machine's CPUs)"},
	{name: "num-gpus", kind: valueFlag, usage: "Logical GPUs this node offers (a `number`; default 0)"},
	{name: "memory", kind: valueFlag, usage: "Memory in `bytes` this node offers to tasks and actors (default: 70% of the machine's)"},
	{name: "object-store-memory", kind: valueFlag, usage: "Object store size in `bytes`: objects past it spill to disk; offered as the object_store_memory " +
		"resource (default: 30% of the machine's memory, at most 200 GB; at least 75 MiB)"},
	{name: "object-spilling-directory", kind: valueFlag, usage: "`directory` spilled objects are written under (default: the session directory)", complete: completeDirs},
	{name: "resources", kind: valueFlag, usage: "Custom resources as a `JSON` object of numbers, e.g. '{\"TPU\": 4}'"},
	{name: "labels", kind: valueFlag, usage: "Node labels as `key=value,...` (or a JSON object)"},
	{name: "temp-dir", kind: valueFlag, usage: "Root `directory` of the node's files (default $RAY_TMPDIR/ray, else /tmp/ray)", complete: completeDirs},
	{name: "include-dashboard", kind: valueFlag, usage: "Whether the head serves the dashboard and Jobs API (`true|false`; default true)"},
	{name: "dashboard-host", kind: valueFlag, usage: "Address (`host`) the dashboard listens on (default localhost; 0.0.0.0 for all)"},
	{name: "dashboard-port", kind: valueFlag, usage: "Dashboard `port` (default 8265)"},
	{name: "dashboard-agent-listen-port", kind: valueFlag, usage: "HTTP `port` of the node agent, which health probes call (default 52365)"},
	{name: "metrics-export-port", kind: valueFlag, usage: "Prometheus metrics `port` (default 8080)"},
	{name: "system-config", kind: valueFlag, usage: "Ray system settings as a `JSON` object; this runtime reads health_check_period_ms, " +
		"health_check_failure_threshold and gcs_rpc_server_reconnect_timeout_s"},
	{name: "redis-password", kind: valueFlag, usage: "Password of the Redis that keeps the head's tables (GCS fault tolerance; also $REDIS_PASSWORD)"},
	{name: "redis-username", kind: valueFlag, usage: "User name for that Redis (also $REDIS_USERNAME)"},
	compat("no-monitor", boolFlag),
	compat("disable-usage-stats", boolFlag),
	compat("verbose", boolFlag),
	compat("dashboard-agent-grpc-port", valueFlag),
	compat("runtime-env-agent-port", valueFlag),
	compat("node-manager-port", valueFlag),
	compat("object-manager-port", valueFlag),
	compat("min-worker-port", valueFlag),
	compat("max-worker-port", valueFlag),
	compat("worker-port-list", valueFlag),
	compat("ray-client-server-port", valueFlag),
	compat("autoscaling-config", valueFlag),
	compat("plasma-directory", valueFlag),
	compat("log-color", valueFlag),
	compat("log-style", valueFlag),
	compat("include-log-monitor", valueFlag),
	compat("node-name", valueFlag),
	compat("storage", valueFlag),
	compat("gcs-server-port", valueFlag),
	compat("dashboard-grpc-port", valueFlag),
	compat("enable-object-reconstruction", boolFlag),
}

func (c *cli) startCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start [OPTIONS]",
		Short: "Start a Ray node: a head (--head) or a worker joining one (--address).",
		Long: `Start a Ray node on this machine: a head (--head) or a worker joining a head
(--address). Without --block the node runs in the background and the
command returns once it is up; ray stop ends it.

Flags this runtime does not know are reported and ignored, so that pods
rendered by a newer KubeRay still start.`,
		// parseStart refuses positional arguments with its own message.
		Args:               cobra.ArbitraryArgs,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			raw := withoutFirst(c.args, cmd.Name())
			p := &parsedFlags{fs: cmd.Flags(), args: args, warnings: unknownFlags(cmd.Flags(), raw)}
			return exit(c.start(raw, p))
		},
	}
	addFlags(cmd, startFlags)
	return cmd
}

// withoutFirst is args without the first word equal to name: the command
// line of a sub-command, as cobra hands it to the sub-command's flags.
func withoutFirst(args []string, name string) []string {
	for i, a := range args {
		if a == name {
			return append(append([]string{}, args[:i]...), args[i+1:]...)
		}
	}
	return args
}

// startOptions is `ray start` after parsing.
type startOptions struct {
	node  node.Config
	block bool
	// gcFloorMB is the collector's floor for the node process (gcfloor).
	gcFloorMB int
}

// parseStart turns `ray start` flags (and Ray's env knobs) into a node
// configuration.
func parseStart(p *parsedFlags, getenv env) (*startOptions, error) {
	var err error
	if len(p.args) > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(p.args, " "))
	}
	cfg := node.Config{Head: p.bool("head"), IncludeDashboard: true}
	if cfg.Head && p.has("address") {
		return nil, errors.New("--address cannot be used with --head; to start a head node, drop --address")
	}
	if !cfg.Head {
		cfg.GCSAddress = unquote(p.str("address"))
		if cfg.GCSAddress == "" {
			return nil, errors.New("either --head or --address=<head host>:<port> is required")
		}
		if _, _, err := net.SplitHostPort(cfg.GCSAddress); err != nil {
			return nil, fmt.Errorf("invalid --address %q: %w", cfg.GCSAddress, err)
		}
	}
	ints := []struct {
		flag string
		dst  *int
		def  int
	}{
		{"port", &cfg.GCSPort, 6379},
		{"dashboard-port", &cfg.DashboardPort, 8265},
		{"dashboard-agent-listen-port", &cfg.AgentPort, 52365},
		{"metrics-export-port", &cfg.MetricsPort, 8080},
	}
	for _, f := range ints {
		*f.dst = f.def
		if v := p.str(f.flag); v != "" {
			n, err := strconv.Atoi(unquote(v))
			if err != nil || n < 0 || n > 65535 {
				return nil, fmt.Errorf("invalid --%s %q: expected a port number", f.flag, v)
			}
			*f.dst = n
		}
	}
	if v := p.str("include-dashboard"); v != "" {
		b, err := strconv.ParseBool(strings.ToLower(unquote(v)))
		if err != nil {
			return nil, fmt.Errorf("invalid --include-dashboard %q", v)
		}
		cfg.IncludeDashboard = b
	}
	cfg.DashboardHost = unquote(p.str("dashboard-host"))
	if cfg.DashboardHost == "" {
		cfg.DashboardHost = "localhost"
	}
	cfg.NodeIP = unquote(p.str("node-ip-address"))
	if cfg.NodeIP == "" {
		cfg.NodeIP = detectNodeIP()
	}
	cfg.TempDir = unquote(p.str("temp-dir"))
	if cfg.TempDir == "" {
		cfg.TempDir = tempRoot(getenv)
	}
	if cfg.Resources, err = parseResources(p, cfg.NodeIP, cfg.Head); err != nil {
		return nil, err
	}
	if cfg.Labels, err = parseLabels(unquote(p.str("labels"))); err != nil {
		return nil, err
	}
	if err := applyTuning(&cfg, unquote(p.str("system-config")), getenv); err != nil {
		return nil, err
	}
	if err := parseObjectStore(&cfg, p, unquote(p.str("system-config")), getenv); err != nil {
		return nil, err
	}
	if cfg.Head {
		if cfg.GCSStorage, err = gcs.StorageConfigFromEnv(getenv, unquote(p.str("redis-password")), unquote(p.str("redis-username"))); err != nil {
			return nil, err
		}
	}
	if cfg.AuthToken, err = dashboard.AuthTokenFromEnv(getenv, os.ReadFile); err != nil {
		return nil, err
	}
	if cfg.TLS, err = raytls.FromEnv(getenv); err != nil {
		return nil, err
	}
	floor, err := gcfloor.FromEnv(getenv, gcfloor.NodeDefaultMB)
	if err != nil {
		return nil, err
	}
	return &startOptions{node: cfg, block: p.bool("block"), gcFloorMB: floor}, nil
}

func parseResources(p *parsedFlags, nodeIP string, head bool) (map[string]float64, error) {
	res := map[string]float64{}
	if v := unquote(p.str("resources")); v != "" {
		if err := json.Unmarshal([]byte(v), &res); err != nil {
			return nil, fmt.Errorf("invalid --resources %q: expected a JSON object of numbers: %w", v, err)
		}
		for _, reserved := range []string{"CPU", "GPU", "memory"} {
			if _, ok := res[reserved]; ok {
				return nil, fmt.Errorf("invalid --resources: use --num-cpus, --num-gpus or --memory for %s", reserved)
			}
		}
	}
	num := func(flag string, def float64) (float64, error) {
		v := unquote(p.str(flag))
		if v == "" {
			return def, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) {
			return 0, fmt.Errorf("invalid --%s %q: expected a non-negative number", flag, v)
		}
		return f, nil
	}
	var err error
	if res["CPU"], err = num("num-cpus", float64(runtime.NumCPU())); err != nil {
		return nil, err
	}
	gpus, err := num("num-gpus", 0)
	if err != nil {
		return nil, err
	}
	if gpus > 0 {
		res["GPU"] = gpus
	}
	if res["memory"], err = num("memory", defaultMemory()); err != nil {
		return nil, err
	}
	osm, err := num("object-store-memory", 0)
	if err != nil {
		return nil, err
	}
	if osm > 0 {
		res["object_store_memory"] = osm
	}
	res["node:"+nodeIP] = 1
	if head {
		res["node:__internal_head__"] = 1
	}
	return res, nil
}

// defaultMemory is 70% of the machine's memory, roughly what Ray offers
// when --memory is not given.
func defaultMemory() float64 { return math.Floor(machineMemory() * 0.7) }

// machineMemory is the memory this node may use in bytes (0 when unknown): the machine's, or its
// container's cgroup limit when that is lower, as Ray does in a pod.
func machineMemory() float64 { return memoryOf(os.ReadFile) }

// memoryOf reads /proc/meminfo and the cgroup (v2, else v1) memory limit through read.
func memoryOf(read func(string) ([]byte, error)) float64 {
	total := 0.0
	if raw, err := read("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64); err == nil {
					total = kb * 1024
				}
			}
		}
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		raw, err := read(path)
		if err != nil {
			continue
		}
		// "max" (v2) and v1's page-rounded "unlimited" do not parse below the machine's total.
		limit, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
		if err == nil && limit > 0 && (total == 0 || limit < total) {
			return limit
		}
		break
	}
	return total
}

// parseLabels accepts Ray's "k=v,k2=v2" form and the older JSON object form.
func parseLabels(v string) (map[string]string, error) {
	labels := map[string]string{}
	if v == "" {
		return labels, nil
	}
	if strings.HasPrefix(v, "{") {
		if err := json.Unmarshal([]byte(v), &labels); err != nil {
			return nil, fmt.Errorf("invalid --labels %q: %w", v, err)
		}
		return labels, nil
	}
	for _, kv := range strings.Split(v, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("invalid --labels entry %q: expected key=value", kv)
		}
		labels[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return labels, nil
}

// applyTuning reads Ray's knobs: --system-config keys and their RAY_<key>
// environment variables (env wins, as in Ray), plus the job env variables.
func applyTuning(cfg *node.Config, systemConfig string, getenv env) error {
	sys := map[string]any{}
	if systemConfig != "" {
		if err := json.Unmarshal([]byte(systemConfig), &sys); err != nil {
			return fmt.Errorf("invalid --system-config: %w", err)
		}
	}
	lookup := func(key string) (float64, bool, error) {
		if v := getenv("RAY_" + key); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, false, fmt.Errorf("invalid RAY_%s %q: %w", key, v, err)
			}
			return f, true, nil
		}
		if v, ok := sys[key].(float64); ok {
			return v, true, nil
		}
		return 0, false, nil
	}
	if v, ok, err := lookup("health_check_period_ms"); err != nil {
		return err
	} else if ok && v > 0 {
		cfg.HeartbeatPeriod = time.Duration(v * float64(time.Millisecond))
	}
	if v, ok, err := lookup("health_check_failure_threshold"); err != nil {
		return err
	} else if ok && v > 0 {
		cfg.FailureThreshold = int(v)
	}
	if v, ok, err := lookup("gcs_rpc_server_reconnect_timeout_s"); err != nil {
		return err
	} else if ok && v > 0 {
		cfg.ReconnectTimeout = time.Duration(v * float64(time.Second))
	}
	if d, ok, err := envSeconds(getenv, "RAY_JOB_STOP_WAIT_TIME_S"); err != nil {
		return err
	} else if ok {
		cfg.JobStopGracePeriod = d
	}
	if d, ok, err := envSeconds(getenv, "RAY_JOB_START_TIMEOUT_SECONDS"); err != nil {
		return err
	} else if ok {
		cfg.JobStartTimeout = d
	}
	cfg.AllowDriverOnWorkers = getenv("RAY_JOB_ALLOW_DRIVER_ON_WORKER_NODES") == "1"
	// Serve: Ray's default proxy host, and the interpreter of Python replicas.
	cfg.ServeHTTPHost = getenv("RAY_SERVE_DEFAULT_HTTP_HOST")
	cfg.ServePython = getenv("RAYK8S_SERVE_PYTHON")
	cfg.ServeDrainPeriod = node.DefaultServeDrainPeriod
	if d, ok, err := envSeconds(getenv, "RAYK8S_SERVE_DRAIN_PERIOD_S"); err != nil {
		return err
	} else if ok {
		cfg.ServeDrainPeriod = d
	}
	return nil
}

// maxEnvSeconds is the largest whole number of seconds a time.Duration holds.
const maxEnvSeconds = math.MaxInt64 / int64(time.Second)

// envSeconds reads the environment variable name as a number of seconds;
// ok is false when it is unset. NaN, infinities, negative values and values
// too large for a time.Duration are errors naming the variable.
func envSeconds(getenv env, name string) (d time.Duration, ok bool, err error) {
	v := getenv(name)
	if v == "" {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > float64(maxEnvSeconds) {
		return 0, false, fmt.Errorf("invalid %s %q: want a number of seconds between 0 and %d", name, v, maxEnvSeconds)
	}
	return time.Duration(f * float64(time.Second)), true, nil
}

// detectNodeIP finds the address of the interface with the default route,
// as Ray does. A UDP "connection" sends no packet.
func detectNodeIP() string {
	c, err := net.Dial("udp", "8.8.8.8:80")
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsUnspecified() {
		return a.IP.String()
	}
	return "127.0.0.1"
}

func newLogger(w io.Writer) logr.Logger {
	return logr.FromSlogHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// start runs `ray start`; raw is its command line, which the background
// child re-parses.
func (c *cli) start(raw []string, p *parsedFlags) int {
	// Warnings first: a mistyped flag is often why the rest fails.
	for _, w := range p.warnings {
		fmt.Fprintf(c.stderr, "ray start: warning: ignoring unknown option %s\n", w)
	}
	opts, err := parseStart(p, c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray start: %v\n", err)
		return 1
	}
	if !opts.block && c.getenv(daemonChildEnv) == "" {
		return c.daemonize(raw, opts)
	}
	return c.runNode(opts)
}

// runNode runs the node in the foreground until SIGTERM/SIGINT (exit 0) or
// until a component dies (exit 1).
func (c *cli) runNode(opts *startOptions) int {
	floor := gcfloor.Hold(opts.gcFloorMB)
	defer floor.Release()
	log := newLogger(c.stderr)
	opts.node.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n, err := node.Start(ctx, opts.node)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray start: %v\n", err)
		return 1
	}
	pidFile, err := writePidFile(c.getenv)
	if err != nil {
		log.Error(err, "Writing pid file failed; ray stop will not find this node")
	}
	defer os.Remove(pidFile)
	c.printStarted(opts, n)
	<-n.Done()
	if err := n.Err(); err != nil {
		fmt.Fprintf(c.stderr, "ray start: %v\n", err)
		return 1
	}
	return 0
}

func (c *cli) printStarted(opts *startOptions, n *node.Node) {
	w := c.stdout
	fmt.Fprintf(w, "Local node IP: %s\n\n", opts.node.NodeIP)
	fmt.Fprintf(w, "--------------------\nRay runtime started.\n--------------------\n\n")
	if opts.node.Head {
		fmt.Fprintf(w, "Next steps\n  To add another node to this Ray cluster, run\n    ray start --address='%s'\n\n", n.GCSAddress())
		if u := n.DashboardURL(); u != "" {
			fmt.Fprintf(w, "  To submit a Ray job using the Ray Jobs CLI:\n    RAY_ADDRESS='%s' ray job submit -- <entrypoint>\n\n", u)
			fmt.Fprintf(w, "  To monitor and debug Ray, view the dashboard at\n    %s\n\n", strings.TrimPrefix(u, "http://"))
		}
		fmt.Fprintf(w, "  To see the status of the cluster, use\n    ray status\n\n")
	}
	fmt.Fprintf(w, "  To terminate the Ray runtime, run\n    ray stop\n")
	if opts.block {
		fmt.Fprintf(w, "\n--block\n  This command will now block forever until terminated by a signal.\n  Components are monitored and the command exits non-zero if any of them terminates unexpectedly.\n")
	}
}

// daemonize re-executes `ray start` as a detached background process, waits
// until it is up (it writes its pid file), and returns, which is how Ray's
// `ray start` without --block behaves.
func (c *cli) daemonize(args []string, opts *startOptions) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(c.stderr, "ray start: finding own executable: %v\n", err)
		return 1
	}
	if err := os.MkdirAll(opts.node.TempDir, 0o755); err != nil {
		fmt.Fprintf(c.stderr, "ray start: %v\n", err)
		return 1
	}
	logPath := filepath.Join(opts.node.TempDir, fmt.Sprintf("ray-start-%d.log", time.Now().UnixNano()))
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray start: %v\n", err)
		return 1
	}
	defer logFile.Close()
	cmd := exec.Command(self, append([]string{"start"}, args...)...)
	cmd.Env = append(os.Environ(), daemonChildEnv+"=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(c.stderr, "ray start: starting the node process: %v\n", err)
		return 1
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	pidFile := filepath.Join(pidDir(c.getenv), strconv.Itoa(cmd.Process.Pid))
	deadline := time.After(60 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			fmt.Fprintf(c.stderr, "ray start: the node process exited during startup:\n%s", out)
			return 1
		case <-deadline:
			fmt.Fprintf(c.stderr, "ray start: the node did not come up within 60s; see %s\n", logPath)
			return 1
		case <-time.After(20 * time.Millisecond):
		}
	}
	out, _ := os.ReadFile(logPath)
	// The child's banner (addresses, next steps) is the user's output.
	if i := strings.Index(string(out), "Local node IP:"); i >= 0 {
		fmt.Fprint(c.stdout, string(out[i:]))
	}
	fmt.Fprintf(c.stdout, "\nThe node runs in the background (pid %d, log %s).\n", cmd.Process.Pid, logPath)
	return 0
}
