package raycli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcfloor"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
)

func mapEnv(m map[string]string) env { return func(k string) string { return m[k] } }

// parseCommandLine parses a command line (without "ray") with the flags of
// the command it names, as Main does before running the command.
func parseCommandLine(t *testing.T, args ...string) (*parsedFlags, error) {
	t.Helper()
	root := (&cli{stdout: io.Discard, stderr: io.Discard, getenv: mapEnv(nil)}).rootCommand()
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("no command for %v: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, err
	}
	p := &parsedFlags{fs: cmd.Flags(), args: cmd.Flags().Args()}
	if cmd.Name() == "start" {
		p.warnings = unknownFlags(cmd.Flags(), rest)
	}
	return p, nil
}

// parseStartArgs is `ray start args` up to the node configuration.
func parseStartArgs(t *testing.T, args []string, getenv env) (*startOptions, []string, error) {
	t.Helper()
	p, err := parseCommandLine(t, append([]string{"start"}, args...)...)
	if err != nil {
		return nil, nil, err
	}
	opts, err := parseStart(p, getenv)
	return opts, p.warnings, err
}

// runCLI runs the command line with env as the environment and returns
// the exit code, stdout and stderr.
func runCLI(env map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, getenv: mapEnv(env), args: args}
	code := c.run(args)
	return code, out.String(), errb.String()
}

func TestFlagParsing(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantStr   map[string]string
		wantBools map[string]bool
		wantArgs  []string
		wantWarn  []string
		wantErr   string
	}{
		{name: "equals and bare", args: []string{"start", "--port=1", "--block"}, wantStr: map[string]string{"port": "1"}, wantBools: map[string]bool{"block": true}},
		{name: "space separated value", args: []string{"start", "--port", "2"}, wantStr: map[string]string{"port": "2"}},
		{name: "value that looks like a flag", args: []string{"start", "--num-cpus", "-1"}, wantStr: map[string]string{"num-cpus": "-1"}},
		{name: "quoted JSON kept", args: []string{"start", `--resources='{"a":1}'`}, wantStr: map[string]string{"resources": `'{"a":1}'`}},
		{name: "bool false", args: []string{"start", "--block=false"}, wantBools: map[string]bool{"block": false}},
		{name: "bool in any case", args: []string{"start", "--head=TRUE", "--block=False"}, wantBools: map[string]bool{"head": true, "block": false}},
		{name: "bad bool", args: []string{"start", "--block=maybe"}, wantErr: `invalid argument "maybe" for "--block" flag: expected true or false`},
		{name: "missing value", args: []string{"start", "--port"}, wantErr: "flag needs an argument: --port"},
		{name: "short alias", args: []string{"job", "logs", "-f", "id"}, wantBools: map[string]bool{"follow": true}, wantArgs: []string{"id"}},
		{name: "flags after the job id", args: []string{"job", "status", "id", "--address", "http://h:1"}, wantStr: map[string]string{"address": "http://h:1"}, wantArgs: []string{"id"}},
		{name: "short value flag", args: []string{"stop", "-g", "3", "-f"}, wantStr: map[string]string{"grace-period": "3"}, wantBools: map[string]bool{"force": true}},
		{name: "start: unknown with value", args: []string{"start", "--future=x", "--head"}, wantBools: map[string]bool{"head": true}, wantWarn: []string{"--future"}},
		{name: "start: unknown bare takes the next word", args: []string{"start", "--future", "x"}, wantWarn: []string{"--future"}},
		{name: "start: unknown bare before a flag", args: []string{"start", "--future", "--block"}, wantBools: map[string]bool{"block": true}, wantWarn: []string{"--future"}},
		{name: "start: unknown short", args: []string{"start", "-z", "--head"}, wantBools: map[string]bool{"head": true}, wantWarn: []string{"-z"}},
		{name: "start: positional kept for the check", args: []string{"start", "--head", "stray"}, wantBools: map[string]bool{"head": true}, wantArgs: []string{"stray"}},
		{name: "unknown flag refused elsewhere", args: []string{"job", "status", "--future=x", "id"}, wantErr: "unknown flag: --future"},
		{name: "unknown short refused elsewhere", args: []string{"stop", "-z"}, wantErr: "unknown shorthand flag: 'z' in -z"},
		{name: "submit: double dash", args: []string{"job", "submit", "--submission-id=1", "--", "echo", "--submission-id=2"},
			wantStr: map[string]string{"submission-id": "1"}, wantArgs: []string{"echo", "--submission-id=2"}},
		{name: "submit: first word ends the flags", args: []string{"job", "submit", "python", "x.py", "--no-wait"},
			wantBools: map[string]bool{"no-wait": false}, wantArgs: []string{"python", "x.py", "--no-wait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseCommandLine(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.wantStr {
				if got := p.str(name); got != want {
					t.Errorf("--%s = %q, want %q", name, got, want)
				}
			}
			for name, want := range tt.wantBools {
				if got := p.bool(name); got != want {
					t.Errorf("--%s = %v, want %v", name, got, want)
				}
			}
			if len(p.args) != 0 || len(tt.wantArgs) != 0 {
				if !reflect.DeepEqual(p.args, tt.wantArgs) {
					t.Errorf("args = %q, want %q", p.args, tt.wantArgs)
				}
			}
			if !reflect.DeepEqual(p.warnings, tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", p.warnings, tt.wantWarn)
			}
		})
	}
}

func TestParseStartKubeRayCommand(t *testing.T) {
	// What KubeRay renders for a worker with resources, labels and GCS FT.
	args := []string{"--address=head-svc.ns.svc.cluster.local:6379", "--block", "--dashboard-agent-listen-port=52365",
		"--memory=2147483648", "--metrics-export-port=8080", "--num-cpus=2", "--num-gpus=1",
		`--resources='{"TPU":4}'`, "--labels=zone=a,tier=gpu", "--node-ip-address=10.0.0.5", "--log-color=false",
		"--redis-password=x", "--brand-new-flag=1"}
	opts, warns, err := parseStartArgs(t, args, mapEnv(map[string]string{"RAY_health_check_period_ms": "250", "RAY_gcs_rpc_server_reconnect_timeout_s": "600"}))
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
	opts, _, err := parseStartArgs(t, []string{"--head", "--dashboard-host=0.0.0.0", "--num-cpus=1", "--no-monitor", `--system-config={"health_check_failure_threshold": 2}`}, mapEnv(nil))
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
		if _, _, err := parseStartArgs(t, bad, mapEnv(nil)); err == nil {
			t.Errorf("parseStart(%v) accepted", bad)
		}
	}
}

func TestParseStartGCFloor(t *testing.T) {
	opts, _, err := parseStartArgs(t, []string{"--head"}, mapEnv(nil))
	if err != nil || opts.gcFloorMB != gcfloor.NodeDefaultMB {
		t.Errorf("default floor = %v, %v; want %d MiB", opts, err, gcfloor.NodeDefaultMB)
	}
	if opts, _, err = parseStartArgs(t, []string{"--head"}, mapEnv(map[string]string{gcfloor.EnvVar: "0"})); err != nil || opts.gcFloorMB != 0 {
		t.Errorf("%s=0: %v, %v; want the floor off", gcfloor.EnvVar, opts, err)
	}
	_, _, err = parseStartArgs(t, []string{"--head"}, mapEnv(map[string]string{gcfloor.EnvVar: "lots"}))
	if err == nil || !strings.Contains(err.Error(), gcfloor.EnvVar) {
		t.Errorf("%s=lots: err = %v, want one naming it", gcfloor.EnvVar, err)
	}
}

func TestServeReplicaRefusesABadGCFloor(t *testing.T) {
	code, _, stderr := runCLI(map[string]string{gcfloor.EnvVar: "-5"}, "serve-replica")
	if code != 1 || !strings.Contains(stderr, gcfloor.EnvVar+`="-5"`) {
		t.Errorf("serve-replica with %s=-5: exit %d, stderr %q; want 1 naming the variable", gcfloor.EnvVar, code, stderr)
	}
}

func TestParseStartSecondsEnv(t *testing.T) {
	opts, _, err := parseStartArgs(t, []string{"--head"}, mapEnv(map[string]string{
		"RAY_JOB_STOP_WAIT_TIME_S": "1.5", "RAY_JOB_START_TIMEOUT_SECONDS": "30", "RAYK8S_SERVE_DRAIN_PERIOD_S": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := opts.node; cfg.JobStopGracePeriod != 1500*time.Millisecond || cfg.JobStartTimeout != 30*time.Second || cfg.ServeDrainPeriod != 0 {
		t.Errorf("durations = %v %v %v", cfg.JobStopGracePeriod, cfg.JobStartTimeout, cfg.ServeDrainPeriod)
	}
	if opts, _, err = parseStartArgs(t, []string{"--head"}, mapEnv(nil)); err != nil {
		t.Fatal(err)
	}
	if opts.node.ServeDrainPeriod != node.DefaultServeDrainPeriod {
		t.Errorf("default drain period = %v", opts.node.ServeDrainPeriod)
	}
	for _, name := range []string{"RAY_JOB_STOP_WAIT_TIME_S", "RAY_JOB_START_TIMEOUT_SECONDS", "RAYK8S_SERVE_DRAIN_PERIOD_S"} {
		for _, bad := range []string{"abc", "NaN", "Inf", "-1", "1e300", "9223372037"} {
			_, _, err := parseStartArgs(t, []string{"--head"}, mapEnv(map[string]string{name: bad}))
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
	p, err := parseCommandLine(t, "job", "submit", "--submission-id=s", "--runtime-env-json", `{"env_vars":{"A":"b"}}`, "--working-dir=https://x/y.zip",
		"--metadata-json={\"k\":\"v\"}", "--entrypoint-num-cpus=1.5", "--entrypoint-memory=10", `--entrypoint-resources={"TPU":2}`,
		"--", "python", "my script.py")
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
	if p, err = parseCommandLine(t, "job", "submit", "--no-wait"); err != nil {
		t.Fatal(err)
	}
	if _, err := buildSubmitRequest(p); err == nil {
		t.Error("submit without entrypoint accepted")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args       []string
		wantStderr []string
	}{
		{args: nil, wantStderr: []string{"Usage: ray [OPTIONS] COMMAND", "start", "job"}},
		{args: []string{"bogus"}, wantStderr: []string{`unknown command "bogus"`, "ray --help"}},
		{args: []string{"job"}, wantStderr: []string{"Usage: ray job COMMAND", "submit", "delete"}},
		{args: []string{"job", "bogus"}, wantStderr: []string{`ray job: unknown command "bogus"`, "ray job --help"}},
		{args: []string{"status", "extra"}, wantStderr: []string{"ray status: unexpected arguments", "extra"}},
		{args: []string{"serve-replica", "extra"}, wantStderr: []string{"ray serve-replica: unexpected arguments", "extra"}},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(nil, tt.args...)
		if code != 2 || stdout != "" {
			t.Errorf("ray %v: exit %d, stdout %q; want 2 and nothing", tt.args, code, stdout)
		}
		for _, want := range tt.wantStderr {
			if !strings.Contains(stderr, want) {
				t.Errorf("ray %v: stderr lacks %q:\n%s", tt.args, want, stderr)
			}
		}
	}
	code, _, stderr := runCLI(nil, "kuberay-autoscaler", "--cluster-name", "c")
	if code != 2 || !strings.Contains(stderr, "--cluster-namespace") {
		t.Errorf("kuberay-autoscaler without --cluster-namespace: exit = %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, stdout, _ := runCLI(nil, args...)
		if code != 0 || stdout != "ray, version "+dashboard.RayVersion+"\n" {
			t.Errorf("ray %v: exit %d, %q", args, code, stdout)
		}
	}
}

// commandPaths lists every command of the CLI as its words after "ray".
func commandPaths() [][]string {
	var paths [][]string
	root := (&cli{stdout: io.Discard, stderr: io.Discard, getenv: mapEnv(nil)}).rootCommand()
	forEachCommand(root, func(cmd *cobra.Command) {
		paths = append(paths, strings.Fields(cmd.CommandPath())[1:])
	})
	return paths
}

func TestHelpForEveryCommand(t *testing.T) {
	root := (&cli{stdout: io.Discard, stderr: io.Discard, getenv: mapEnv(nil)}).rootCommand()
	var checked int
	forEachCommand(root, func(cmd *cobra.Command) {
		path := strings.Fields(cmd.CommandPath())[1:]
		for _, help := range []string{"--help", "-h"} {
			args := append(append([]string{}, path...), help)
			code, stdout, stderr := runCLI(nil, args...)
			if code != 0 || stderr != "" {
				t.Errorf("ray %v: exit %d, stderr %q", args, code, stderr)
				continue
			}
			if !strings.HasPrefix(stdout, "Usage: "+cmd.CommandPath()) {
				t.Errorf("ray %v: help does not start with the usage line:\n%s", args, stdout)
			}
			cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if !strings.Contains(stdout, "--"+f.Name) || f.Usage != "" && !strings.Contains(stdout, firstWords(f.Usage)) {
					t.Errorf("ray %v: help lacks --%s:\n%s", args, f.Name, stdout)
				}
			})
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && !strings.Contains(stdout, "\n  "+sub.Name()+" ") {
					t.Errorf("ray %v: help lacks command %s:\n%s", args, sub.Name(), stdout)
				}
			}
		}
		checked++
	})
	// ray, start, stop, status, health-check, job and its six, and more.
	if checked < 14 {
		t.Errorf("checked %d commands, want every one", checked)
	}
	// The entrypoint check of ray job submit must not hide its help.
	_, stdout, _ := runCLI(nil, "job", "submit", "--help")
	for _, want := range []string{"--submission-id", "--runtime-env-json", "--entrypoint-num-cpus", "--no-wait", "ENTRYPOINT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ray job submit --help lacks %q:\n%s", want, stdout)
		}
	}
}

// firstWords is the start of a flag's help text, back quotes removed.
func firstWords(usage string) string {
	_, u := pflag.UnquoteUsage(&pflag.Flag{Usage: usage, Value: new(clickBool)})
	if len(u) > 20 {
		u = u[:20]
	}
	return u
}

func TestUnknownFlagIsNamed(t *testing.T) {
	for _, path := range commandPaths() {
		if len(path) == 1 && path[0] == "start" {
			continue // reported as a warning, below
		}
		args := append(append([]string{}, path...), "--no-such-flag")
		code, stdout, stderr := runCLI(nil, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "unknown flag: --no-such-flag") ||
			!strings.Contains(stderr, "'ray "+strings.Join(append(path, "--help"), " ")+"'") {
			t.Errorf("ray %v: exit %d, stdout %q, stderr %q; want 2 naming the flag and the help", args, code, stdout, stderr)
		}
	}
	// ray start tolerates flags from newer KubeRay and Ray versions but
	// names them; here the missing --head/--address ends it before a node
	// starts.
	code, _, stderr := runCLI(nil, "start", "--no-such-flag=1")
	if code != 1 || !strings.Contains(stderr, "ignoring unknown option --no-such-flag") || !strings.Contains(stderr, "either --head or --address") {
		t.Errorf("ray start --no-such-flag: exit %d, stderr %q", code, stderr)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "__start_ray",
		"zsh":        "#compdef ray",
		"fish":       "complete -c ray",
		"powershell": "Register-ArgumentCompleter",
	} {
		code, stdout, stderr := runCLI(nil, "completion", shell)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("ray completion %s: exit %d, stderr %q, script lacks %q", shell, code, stderr, want)
		}
	}
	// What the scripts ask the binary for: sub-commands, then flags.
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{args: []string{"__complete", "job", "s"}, want: []string{"submit", "status", "stop"}},
		{args: []string{"__complete", "start", "--dashboard-"}, want: []string{"--dashboard-host", "--dashboard-port", "--dashboard-agent-listen-port"}},
		{args: []string{"__complete", "stop", "-"}, want: []string{"--force", "--grace-period"}},
		// Directories for --working-dir, nothing for --address.
		{args: []string{"__complete", "job", "submit", "--working-dir", ""}, want: []string{fmt.Sprintf(":%d", cobra.ShellCompDirectiveFilterDirs)}},
		{args: []string{"__complete", "job", "submit", "--address", ""}, want: []string{fmt.Sprintf(":%d", cobra.ShellCompDirectiveNoFileComp)}},
	} {
		code, stdout, _ := runCLI(nil, tt.args...)
		if code != 0 {
			t.Errorf("ray %v: exit %d", tt.args, code)
		}
		lines := strings.Split(stdout, "\n")
		for _, want := range tt.want {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, want+"\t") || l == want }) {
				t.Errorf("ray %v: no %q in\n%s", tt.args, want, stdout)
			}
		}
	}
}

func TestSubmitEntrypointVerbatim(t *testing.T) {
	entrypoint := []string{"python", "-m", "train", "--no-wait", "-h", "--help", "my file.py", "--"}
	p, err := parseCommandLine(t, append([]string{"job", "submit", "--no-wait", "--address", "http://h:1", "--"}, entrypoint...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.args, entrypoint) || !p.bool("no-wait") || p.str("address") != "http://h:1" {
		t.Fatalf("args = %q, no-wait %v, address %q", p.args, p.bool("no-wait"), p.str("address"))
	}
	req, err := buildSubmitRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `python -m train --no-wait -h --help "my file.py" --`; req.Entrypoint != want {
		t.Errorf("entrypoint = %q, want %q", req.Entrypoint, want)
	}
	// --help after "--" belongs to the entrypoint: the command runs (and
	// fails to reach the closed dashboard port) instead of printing help.
	code, stdout, stderr := runCLI(nil, "job", "submit", "--address", "http://127.0.0.1:1", "--", "python", "--help")
	if code != 1 || strings.Contains(stdout, "Usage:") || !strings.Contains(stderr, "could not connect to the Ray dashboard") {
		t.Errorf("exit %d, stdout %q, stderr %q; want the submission attempted", code, stdout, stderr)
	}
}
