package raycli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/node"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func mapEnv(m map[string]string) env { return func(k string) string { return m[k] } }

func TestParseFlags(t *testing.T) {
	specs := []flagSpec{{name: "block", kind: boolFlag}, {name: "port", kind: valueFlag}, {name: "follow", kind: boolFlag, short: "f"}}
	tests := []struct {
		name        string
		args        []string
		stopAtArg   bool
		positionals bool
		wantValues  map[string]string
		wantBools   map[string]bool
		wantArgs    []string
		wantWarn    []string
	}{
		{name: "equals and bare", args: []string{"--port=1", "--block"}, wantValues: map[string]string{"port": "1"}, wantBools: map[string]bool{"block": true}},
		{name: "space separated value", args: []string{"--port", "2"}, wantValues: map[string]string{"port": "2"}, wantBools: map[string]bool{}},
		{name: "bool false", args: []string{"--block=false"}, wantValues: map[string]string{}, wantBools: map[string]bool{"block": false}},
		{name: "short alias", args: []string{"-f", "id"}, positionals: true, wantValues: map[string]string{}, wantBools: map[string]bool{"follow": true}, wantArgs: []string{"id"}},
		{name: "unknown with value", args: []string{"--future=x"}, wantValues: map[string]string{"future": "x"}, wantBools: map[string]bool{}, wantWarn: []string{"--future"}},
		{name: "unknown bare takes next without positionals", args: []string{"--future", "x"}, wantValues: map[string]string{"future": "x"}, wantBools: map[string]bool{}, wantWarn: []string{"--future"}},
		{name: "unknown bare is bool with positionals", args: []string{"--future", "x"}, positionals: true, wantValues: map[string]string{}, wantBools: map[string]bool{"future": true}, wantArgs: []string{"x"}, wantWarn: []string{"--future"}},
		{name: "double dash", args: []string{"--port=1", "--", "echo", "--port=2"}, stopAtArg: true, positionals: true, wantValues: map[string]string{"port": "1"}, wantBools: map[string]bool{}, wantArgs: []string{"echo", "--port=2"}},
		{name: "first arg ends flags", args: []string{"python", "x.py", "--port=3"}, stopAtArg: true, positionals: true, wantValues: map[string]string{}, wantBools: map[string]bool{}, wantArgs: []string{"python", "x.py", "--port=3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseFlags(tt.args, specs, tt.stopAtArg, tt.positionals)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.values, tt.wantValues) || !reflect.DeepEqual(p.bools, tt.wantBools) ||
				!reflect.DeepEqual(p.args, tt.wantArgs) || !reflect.DeepEqual(p.warnings, tt.wantWarn) {
				t.Errorf("got values=%v bools=%v args=%v warn=%v", p.values, p.bools, p.args, p.warnings)
			}
		})
	}
	if _, err := parseFlags([]string{"--port"}, specs, false, false); err == nil {
		t.Error("missing value accepted")
	}
}

func TestParseStartKubeRayCommand(t *testing.T) {
	// What KubeRay renders for a worker with resources, labels and GCS FT.
	args := []string{"--address=head-svc.ns.svc.cluster.local:6379", "--block", "--dashboard-agent-listen-port=52365",
		"--memory=2147483648", "--metrics-export-port=8080", "--num-cpus=2", "--num-gpus=1",
		`--resources='{"TPU":4}'`, "--labels=zone=a,tier=gpu", "--node-ip-address=10.0.0.5", "--log-color=false",
		"--redis-password=x", "--brand-new-flag=1"}
	opts, warns, err := parseStart(args, mapEnv(map[string]string{"RAY_health_check_period_ms": "250", "RAY_gcs_rpc_server_reconnect_timeout_s": "600"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := opts.node
	if cfg.Head || !opts.block || cfg.GCSAddress != "head-svc.ns.svc.cluster.local:6379" || cfg.AgentPort != 52365 || cfg.MetricsPort != 8080 {
		t.Errorf("config = %+v", cfg)
	}
	want := map[string]float64{"CPU": 2, "GPU": 1, "memory": 2147483648, "TPU": 4, "node:10.0.0.5": 1}
	if !reflect.DeepEqual(cfg.Resources, want) {
		t.Errorf("resources = %v, want %v", cfg.Resources, want)
	}
	if !reflect.DeepEqual(cfg.Labels, map[string]string{"zone": "a", "tier": "gpu"}) {
		t.Errorf("labels = %v", cfg.Labels)
	}
	if cfg.HeartbeatPeriod != 250*time.Millisecond || cfg.ReconnectTimeout != 600*time.Second {
		t.Errorf("tuning = %v %v", cfg.HeartbeatPeriod, cfg.ReconnectTimeout)
	}
	if !reflect.DeepEqual(warns, []string{"--brand-new-flag"}) {
		t.Errorf("warnings = %v", warns)
	}
}

func TestParseStartHeadDefaultsAndErrors(t *testing.T) {
	opts, _, err := parseStart([]string{"--head", "--dashboard-host=0.0.0.0", "--num-cpus=1", "--no-monitor", `--system-config={"health_check_failure_threshold": 2}`}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := opts.node; !cfg.Head || cfg.GCSPort != 6379 || cfg.DashboardPort != 8265 || cfg.Resources["node:__internal_head__"] != 1 || cfg.FailureThreshold != 2 || !cfg.IncludeDashboard {
		t.Errorf("head config = %+v", cfg)
	}
	for _, bad := range [][]string{
		{},
		{"--head", "--address=a:1"},
		{"--address=nohostport"},
		{"--head", "--port=abc"},
		{"--head", "--resources={bad"},
		{"--head", `--resources={"CPU":1}`},
		{"--head", "--labels=novalue"},
		{"--head", "--num-cpus=-1"},
		{"--head", "stray"},
	} {
		if _, _, err := parseStart(bad, mapEnv(nil)); err == nil {
			t.Errorf("parseStart(%v) accepted", bad)
		}
	}
}

func TestParseStartSecondsEnv(t *testing.T) {
	opts, _, err := parseStart([]string{"--head"}, mapEnv(map[string]string{
		"RAY_JOB_STOP_WAIT_TIME_S": "1.5", "RAY_JOB_START_TIMEOUT_SECONDS": "30", "RAYK8S_SERVE_DRAIN_PERIOD_S": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := opts.node; cfg.JobStopGracePeriod != 1500*time.Millisecond || cfg.JobStartTimeout != 30*time.Second || cfg.ServeDrainPeriod != 0 {
		t.Errorf("durations = %v %v %v", cfg.JobStopGracePeriod, cfg.JobStartTimeout, cfg.ServeDrainPeriod)
	}
	if opts, _, err = parseStart([]string{"--head"}, mapEnv(nil)); err != nil {
		t.Fatal(err)
	}
	if opts.node.ServeDrainPeriod != node.DefaultServeDrainPeriod {
		t.Errorf("default drain period = %v", opts.node.ServeDrainPeriod)
	}
	for _, name := range []string{"RAY_JOB_STOP_WAIT_TIME_S", "RAY_JOB_START_TIMEOUT_SECONDS", "RAYK8S_SERVE_DRAIN_PERIOD_S"} {
		for _, bad := range []string{"abc", "NaN", "Inf", "-1", "1e300", "9223372037"} {
			_, _, err := parseStart([]string{"--head"}, mapEnv(map[string]string{name: bad}))
			if err == nil {
				t.Errorf("%s=%s accepted", name, bad)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, name) || !strings.Contains(msg, "number of seconds between 0 and 9223372036") {
				t.Errorf("%s=%s: unclear error %q", name, bad, msg)
			}
		}
	}
}

func TestResolveDashboardURL(t *testing.T) {
	tests := []struct {
		name string
		flag string
		env  map[string]string
		want string
	}{
		{"default", "", nil, "http://localhost:8265"},
		{"flag http", "http://h:1/", nil, "http://h:1"},
		{"RAY_ADDRESS overrides flag", "http://flag:1", map[string]string{"RAY_ADDRESS": "http://env:2"}, "http://env:2"},
		{"RAY_API_SERVER_ADDRESS wins", "", map[string]string{"RAY_ADDRESS": "http://a:1", "RAY_API_SERVER_ADDRESS": "https://b:2"}, "https://b:2"},
		{"ray client address", "ray://head:10001", nil, "http://head:8265"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveDashboardURL(context.Background(), tt.flag, mapEnv(tt.env))
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestResolveGCSAddress(t *testing.T) {
	tmp := t.TempDir()
	e := mapEnv(map[string]string{"RAY_TMPDIR": tmp})
	if _, err := resolveGCSAddress("", e); err == nil {
		t.Error("no address and no local cluster accepted")
	}
	_ = os.MkdirAll(filepath.Join(tmp, "ray"), 0o755)
	_ = os.WriteFile(filepath.Join(tmp, "ray", node.CurrentClusterFile), []byte("10.0.0.1:6379\n"), 0o644)
	if got, err := resolveGCSAddress("", e); err != nil || got != "10.0.0.1:6379" {
		t.Errorf("local cluster = %q, %v", got, err)
	}
	if got, _ := resolveGCSAddress("h:1", e); got != "h:1" {
		t.Errorf("flag = %q", got)
	}
	if _, err := resolveGCSAddress("http://h:1", e); err == nil {
		t.Error("http address accepted as a GCS address")
	}
}

func TestBuildSubmitRequest(t *testing.T) {
	p, err := parseFlags([]string{"--submission-id=s", "--runtime-env-json", `{"env_vars":{"A":"b"}}`, "--working-dir=https://x/y.zip",
		"--metadata-json={\"k\":\"v\"}", "--entrypoint-num-cpus=1.5", "--entrypoint-memory=10", `--entrypoint-resources={"TPU":2}`,
		"--", "python", "my script.py"}, submitFlags, true, true)
	if err != nil {
		t.Fatal(err)
	}
	req, err := buildSubmitRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	if req.Entrypoint != `python "my script.py"` || req.SubmissionID != "s" || req.RuntimeEnv["working_dir"] != "https://x/y.zip" ||
		req.Metadata["k"] != "v" || req.EntrypointNumCPUs != 1.5 || req.EntrypointMemory != 10 || req.EntrypointResources["TPU"] != 2 {
		t.Errorf("request = %+v", req)
	}
	p, _ = parseFlags([]string{"--no-wait"}, submitFlags, true, true)
	if _, err := buildSubmitRequest(p); err == nil {
		t.Error("submit without entrypoint accepted")
	}
}

func TestPrintStatus(t *testing.T) {
	var buf bytes.Buffer
	printStatus(&buf, []*gcsv1.Node{
		{NodeId: "h", NodeIpAddress: "127.0.0.1", IsHead: true, State: gcsv1.NodeState_NODE_STATE_ALIVE,
			ResourcesTotal: map[string]float64{"CPU": 2, "node:127.0.0.1": 1}, ResourcesAvailable: map[string]float64{"CPU": 1, "node:127.0.0.1": 1}},
		{NodeId: "w", NodeIpAddress: "127.0.0.2", State: gcsv1.NodeState_NODE_STATE_DEAD, ResourcesTotal: map[string]float64{"CPU": 4}},
	}, time.Unix(0, 0))
	out := buf.String()
	for _, want := range []string{"Active: 1", "Dead: 1", "127.0.0.2", "DEAD", " 1.0/2.0 CPU"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "node:127") {
		t.Errorf("output shows node: resources:\n%s", out)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"bogus"}, &out, &errb); code != 2 {
		t.Errorf("exit = %d, want 2", code)
	}
	if code := Main([]string{"kuberay-autoscaler"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not implemented") {
		t.Errorf("kuberay-autoscaler exit = %d, stderr %q", code, errb.String())
	}
}
