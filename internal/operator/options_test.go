package operator

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/operator/features"
)

func parse(args ...string) (Options, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	complete := BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	return complete()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"+body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFlagsDefaults(t *testing.T) {
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if o.MetricsAddr != ":8080" || o.ProbeAddr != ":8082" || !o.EnableLeaderElection || o.ReconcileConcurrency != 4 ||
		o.QPS != 100 || o.Burst != 200 || o.LogEncoder != "json" || o.LogFileEncoder != "json" || o.LogFilePath != "" ||
		o.BatchScheduler != "" || o.EnableBatchScheduler || o.ForcedClusterUpgrade || o.UseKubernetesProxy || o.EnableMetrics {
		t.Errorf("defaults differ from KubeRay's: %+v", o)
	}
	if o.WatchNamespaces != nil {
		t.Errorf("WatchNamespaces = %v, want all namespaces (nil)", o.WatchNamespaces)
	}
	if !o.FeatureGates.Enabled(features.RayClusterStatusConditions) {
		t.Error("RayClusterStatusConditions should default on")
	}
	if !strings.HasPrefix(o.OperatorVersion, "rayk8s-") || len(o.OperatorVersion) <= len("rayk8s-") {
		t.Errorf("OperatorVersion = %q", o.OperatorVersion)
	}
}

// TestEveryFlagParsed gives every flag a non-default value and checks where each lands.
func TestEveryFlagParsed(t *testing.T) {
	o, err := parse(
		"--metrics-addr=:1", "--health-probe-bind-address=:2", "--enable-leader-election=false",
		"--leader-election-namespace=le", "--reconcile-concurrency=4", "--watch-namespace= a, b ,",
		"--feature-gates=RayJobDeletionPolicy=false,RayClusterMTLS=false", "--enable-metrics", "--qps=5.5", "--burst=6",
		"--log-stdout-encoder=console", "--log-file-path=/var/log/op.log", "--log-file-encoder=console",
		"--use-kubernetes-proxy", "--batch-scheduler=default", "--enable-batch-scheduler=false",
		"--forced-cluster-upgrade", "--log-level=3", "--graceful-shutdown-timeout=7s")
	if err != nil {
		t.Fatal(err)
	}
	if o.MetricsAddr != ":1" || o.ProbeAddr != ":2" || o.EnableLeaderElection || o.LeaderElectionNamespace != "le" ||
		o.ReconcileConcurrency != 4 || strings.Join(o.WatchNamespaces, "|") != "a|b" || !o.EnableMetrics ||
		o.QPS != 5.5 || o.Burst != 6 || o.LogEncoder != "console" || o.LogFilePath != "/var/log/op.log" ||
		o.LogFileEncoder != "console" || !o.UseKubernetesProxy || o.BatchScheduler != "default" ||
		!o.ForcedClusterUpgrade || o.LogLevel != "3" || o.GracefulShutdownTimeout != 7*time.Second {
		t.Errorf("flags not applied: %+v", o)
	}
	if o.FeatureGates.Enabled(features.RayJobDeletionPolicy) {
		t.Error("--feature-gates not applied")
	}
	if o.ConfigFile != "" || o.IgnoredFlags != nil {
		t.Errorf("no --config, yet ConfigFile=%q IgnoredFlags=%v", o.ConfigFile, o.IgnoredFlags)
	}
}

func TestFlagsInvalid(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--reconcile-concurrency=0"}, []string{"--reconcile-concurrency"}},
		{[]string{"--qps=0", "--burst=-1"}, []string{"--qps", "--burst"}},
		{[]string{"--log-stdout-encoder=xml"}, []string{"--log-stdout-encoder", "xml"}},
		{[]string{"--log-file-encoder=xml"}, []string{"--log-file-encoder", "xml"}},
		{[]string{"--log-level=9"}, []string{"--log-level"}},
		{[]string{"--feature-gates=Bogus=true"}, []string{"--feature-gates", "Bogus"}},
		{[]string{"--batch-scheduler=slurm"}, []string{"--batch-scheduler", `unknown batch scheduler "slurm"`}},
		{[]string{"--enable-batch-scheduler", "--batch-scheduler=yunikorn"}, []string{"must not be used together"}},
		{[]string{"--batch-scheduler=volcano", "--feature-gates=KubernetesWAS=true"}, []string{"--batch-scheduler=volcano and --feature-gates=KubernetesWAS=true must not be used together"}},
		{[]string{"--config=/nonexistent/config.yaml"}, []string{"--config", "/nonexistent/config.yaml"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parse(tt.args...)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Each of KubeRay's batch schedulers is accepted, by flag and by config field; the legacy switch
// means volcano.
func TestBatchSchedulers(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--batch-scheduler=default"}, ""},
		{[]string{"--batch-scheduler=volcano"}, "volcano"},
		{[]string{"--batch-scheduler=yunikorn"}, "yunikorn"},
		{[]string{"--batch-scheduler=kai-scheduler"}, "kai-scheduler"},
		{[]string{"--batch-scheduler=scheduler-plugins"}, "scheduler-plugins"},
		{[]string{"--enable-batch-scheduler"}, "volcano"},
		{[]string{"--config=" + writeConfig(t, "batchScheduler: kai-scheduler\n")}, "kai-scheduler"},
		{[]string{"--config=" + writeConfig(t, "enableBatchScheduler: true\n")}, "volcano"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parse(tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			s, err := o.Scheduler()
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if s != nil {
				got = s.Name()
			}
			if got != tt.want || o.BatchSchedulerName() != tt.want {
				t.Errorf("scheduler = %q (name %q), want %q", got, o.BatchSchedulerName(), tt.want)
			}
		})
	}
}

func TestConfigFile(t *testing.T) {
	path := writeConfig(t, `
metricsAddr: ":9090"
probeAddr: ":9091"
enableLeaderElection: false
leaderElectionNamespace: le
reconcileConcurrency: 3
watchNamespace: "x, y"
logFile: /var/log/op.log
logFileEncoder: console
logStdoutEncoder: console
batchScheduler: default
useKubernetesProxy: true
deleteRayJobAfterJobFinishes: true
enableMetrics: true
qps: 12.5
burst: 30
headSidecarContainers: [{name: fluentbit, image: fluent/fluent-bit}]
workerSidecarContainers: [{name: w, image: busybox}]
defaultContainerEnvs: [{name: RAY_enable_open_telemetry, value: "true"}]
defaultPodAnnotations: {a: b}
defaultPodLabels: {c: d}
`)
	o, err := parse("--config="+path, "--qps=1", "--metrics-addr=:1", "--enable-metrics=false",
		"--feature-gates=RayJobDeletionPolicy=false", "--log-level=debug", "--graceful-shutdown-timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	if o.MetricsAddr != ":9090" || o.ProbeAddr != ":9091" || o.EnableLeaderElection || o.LeaderElectionNamespace != "le" ||
		o.ReconcileConcurrency != 3 || strings.Join(o.WatchNamespaces, "|") != "x|y" || o.LogFilePath != "/var/log/op.log" ||
		o.LogFileEncoder != "console" || o.LogEncoder != "console" || o.BatchScheduler != "default" || !o.UseKubernetesProxy ||
		!o.DeleteRayJobAfterJobFinishes || !o.EnableMetrics || o.QPS != 12.5 || o.Burst != 30 {
		t.Errorf("config not applied (flags must be ignored): %+v", o)
	}
	d := o.PodDefaults
	if len(d.HeadSidecarContainers) != 1 || len(d.WorkerSidecarContainers) != 1 || len(d.ContainerEnvs) != 1 ||
		d.Annotations["a"] != "b" || d.Labels["c"] != "d" {
		t.Errorf("pod defaults not applied: %+v", d)
	}
	// rayk8s' own flags and the feature gates still apply, as KubeRay keeps --feature-gates.
	if o.FeatureGates.Enabled(features.RayJobDeletionPolicy) || o.LogLevel != "debug" || o.GracefulShutdownTimeout != 3*time.Second {
		t.Errorf("flags kept with --config not applied: %+v", o)
	}
	if !slices.Equal(o.IgnoredFlags, []string{"--enable-metrics", "--metrics-addr", "--qps"}) {
		t.Errorf("IgnoredFlags = %v", o.IgnoredFlags)
	}
	if o.ConfigFile != path {
		t.Errorf("ConfigFile = %q", o.ConfigFile)
	}

	// A minimal file gets the config's defaults (KubeRay's, but 4 concurrent reconciles), not the flags'.
	o, err = parse("--config="+writeConfig(t, ""), "--reconcile-concurrency=9")
	if err != nil {
		t.Fatal(err)
	}
	if o.ReconcileConcurrency != 4 || o.MetricsAddr != ":8080" || !o.EnableLeaderElection || o.QPS != 100 || o.Burst != 200 {
		t.Errorf("defaults of an empty config not applied: %+v", o)
	}
}

func TestConfigFileInvalid(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown field", "metricsAddress: x\n", []string{`unknown field "metricsAddress"`}},
		{"feature gates are a flag", "featureGates: RayCronJob=true\n", []string{`unknown field "featureGates"`}},
		{"bad concurrency", "reconcileConcurrency: -2\n", []string{"field reconcileConcurrency", "-2"}},
		{"bad qps", "qps: -1\n", []string{"field qps"}},
		{"bad burst", "burst: -1\n", []string{"field burst"}},
		{"bad encoder", "logFileEncoder: xml\n", []string{"field logFileEncoder", "xml"}},
		{"bad stdout encoder", "logStdoutEncoder: xml\n", []string{"field logStdoutEncoder", "xml"}},
		{"wrong type", "enableMetrics: maybe\n", []string{"enableMetrics"}},
		{"unknown batch scheduler", "batchScheduler: slurm\n", []string{"field batchScheduler", `unknown batch scheduler "slurm"`}},
		{"both batch scheduler settings", "batchScheduler: yunikorn\nenableBatchScheduler: true\n", []string{"field batchScheduler", "field enableBatchScheduler", "must not be used together"}},
		{"sidecar without image", "headSidecarContainers: [{name: a}]\n", []string{"headSidecarContainers[0].image"}},
		{"sidecar without name", "workerSidecarContainers: [{image: a}]\n", []string{"workerSidecarContainers[0].name"}},
		{"duplicate sidecar", "workerSidecarContainers: [{name: a, image: a}, {name: a, image: b}]\n", []string{"workerSidecarContainers[1].name", "twice"}},
		{"env without name", "defaultContainerEnvs: [{value: a}]\n", []string{"defaultContainerEnvs[0].name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.body)
			_, err := parse("--config=" + path)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
