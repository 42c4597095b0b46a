package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeFull(t *testing.T) {
	c, err := Decode([]byte(`
apiVersion: config.ray.io/v1alpha1
kind: Configuration
metricsAddr: ":9090"
probeAddr: ":9091"
enableLeaderElection: false
leaderElectionNamespace: le
reconcileConcurrency: 3
watchNamespace: a,b
logFile: /tmp/op.log
logFileEncoder: console
logStdoutEncoder: console
useKubernetesProxy: true
deleteRayJobAfterJobFinishes: true
enableMetrics: true
qps: 12.5
burst: 30
headSidecarContainers:
- name: fluentbit
  image: fluent/fluent-bit
workerSidecarContainers:
- name: w
  image: busybox
defaultContainerEnvs:
- name: RAY_enable_open_telemetry
  value: "true"
defaultPodAnnotations: {a: b}
defaultPodLabels: {c: d}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != ":9090" || c.ProbeAddr != ":9091" || *c.EnableLeaderElection || c.LeaderElectionNamespace != "le" ||
		c.ReconcileConcurrency != 3 || c.WatchNamespace != "a,b" || c.LogFile != "/tmp/op.log" || c.LogFileEncoder != "console" ||
		c.LogStdoutEncoder != "console" || !c.UseKubernetesProxy || !c.DeleteRayJobAfterJobFinishes || !c.EnableMetrics ||
		*c.QPS != 12.5 || *c.Burst != 30 {
		t.Errorf("scalar fields not decoded: %+v", c)
	}
	if len(c.HeadSidecarContainers) != 1 || c.HeadSidecarContainers[0].Name != "fluentbit" ||
		len(c.WorkerSidecarContainers) != 1 || c.DefaultContainerEnvs[0].Name != "RAY_enable_open_telemetry" ||
		c.DefaultPodAnnotations["a"] != "b" || c.DefaultPodLabels["c"] != "d" {
		t.Errorf("pod defaults not decoded: %+v", c)
	}
}

func TestDecodeDefaults(t *testing.T) {
	c, err := Decode([]byte("apiVersion: config.ray.io/v1alpha1\nkind: Configuration\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != ":8080" || c.ProbeAddr != ":8082" || !*c.EnableLeaderElection || c.ReconcileConcurrency != 4 ||
		*c.QPS != 100 || *c.Burst != 200 || c.LogFileEncoder != "json" || c.LogStdoutEncoder != "json" {
		t.Errorf("defaults not applied (KubeRay's, except reconcileConcurrency 4): %+v", c)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"empty"}},
		{"unknown field", "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nmetricAddr: x\n", []string{`"metricAddr"`}},
		{"unknown nested field", "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nheadSidecarContainers:\n- name: a\n  imag: b\n", []string{`"imag"`}},
		{"wrong type", "apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nqps: fast\n", []string{"qps"}},
		{"wrong kind", "apiVersion: config.ray.io/v1alpha1\nkind: RayCluster\n", []string{"RayCluster", Kind}},
		{"wrong version", "apiVersion: config.ray.io/v1\nkind: Configuration\n", []string{"config.ray.io/v1", APIVersion}},
		{"no type", "metricsAddr: x\n", []string{"apiVersion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: config.ray.io/v1alpha1\nkind: Configuration\nbatchScheduler: volcano\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.BatchScheduler != "volcano" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("missing file: error %v does not name --config", err)
	}
}
