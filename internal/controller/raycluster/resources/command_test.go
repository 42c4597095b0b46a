package resources

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func TestRenderRayStartCommand(t *testing.T) {
	tests := []struct {
		name     string
		nodeType rayv1.RayNodeType
		params   map[string]string
		want     string
	}{
		{name: "head, empty", nodeType: rayv1.HeadNode, params: nil, want: "ray start --head"},
		{name: "worker, empty", nodeType: rayv1.WorkerNode, params: map[string]string{}, want: "ray start"},
		{
			name:     "keys sorted, values verbatim",
			nodeType: rayv1.WorkerNode,
			params:   map[string]string{"num-cpus": "2", "address": "h:6379", "resources": `'{"a":1}'`},
			want:     `ray start --address=h:6379 --num-cpus=2 --resources='{"a":1}'`,
		},
		{
			name:     "true becomes a bare flag and false drops it, in any case",
			nodeType: rayv1.HeadNode,
			params:   map[string]string{"block": "true", "no-monitor": "TRUE", "disable-usage-stats": "False"},
			want:     "ray start --head --block --no-monitor",
		},
		{
			name:     "log-color, include-dashboard and include-log-monitor keep their value",
			nodeType: rayv1.HeadNode,
			params:   map[string]string{"log-color": "true", "include-dashboard": "false", "include-log-monitor": "True"},
			want:     "ray start --head --include-dashboard=false --include-log-monitor=True --log-color=true",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renderRayStartCommand(tt.nodeType, tt.params); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func limits(kv ...string) corev1.ResourceRequirements {
	rl := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		rl[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return corev1.ResourceRequirements{Limits: rl}
}

func TestBuildRayStartParams(t *testing.T) {
	headDefaults := map[string]string{
		"block": "true", "dashboard-host": "0.0.0.0", "metrics-export-port": "8080", "dashboard-agent-listen-port": "52365",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	redis := &rayv1.GcsFaultToleranceOptions{
		RedisAddress:  "redis:6379",
		RedisPassword: &rayv1.RedisCredential{Value: "pw"},
		RedisUsername: &rayv1.RedisCredential{Value: "user"},
	}
	tests := []struct {
		name string
		in   rayStartInput
		want map[string]string
	}{
		{
			name: "head defaults",
			in:   rayStartInput{nodeType: rayv1.HeadNode},
			want: headDefaults,
		},
		{
			name: "worker defaults include the head address but no dashboard-host",
			in:   rayStartInput{nodeType: rayv1.WorkerNode, headAddress: "rc-head-svc.ns.svc.cluster.local:6379"},
			want: map[string]string{
				"address": "rc-head-svc.ns.svc.cluster.local:6379", "block": "true",
				"metrics-export-port": "8080", "dashboard-agent-listen-port": "52365",
			},
		},
		{
			name: "user values win over defaults, except block which is forced",
			in: rayStartInput{nodeType: rayv1.WorkerNode, headAddress: "x:1", params: map[string]string{
				"address": "other:7000", "metrics-export-port": "9090", "dashboard-agent-listen-port": "1234", "block": "false",
			}},
			want: map[string]string{"address": "other:7000", "block": "true", "metrics-export-port": "9090", "dashboard-agent-listen-port": "1234"},
		},
		{
			name: "autoscaling adds no-monitor on the head",
			in:   rayStartInput{nodeType: rayv1.HeadNode, autoscaling: true},
			want: with(headDefaults, "no-monitor", "true"),
		},
		{
			name: "redis credentials are passed by env reference on the head",
			in:   rayStartInput{nodeType: rayv1.HeadNode, ft: redis},
			want: with(headDefaults, "redis-password", "$REDIS_PASSWORD", "redis-username", "$REDIS_USERNAME"),
		},
		{
			name: "cpu limit rounded up, memory limit in bytes",
			in:   rayStartInput{nodeType: rayv1.HeadNode, container: limits("cpu", "1500m", "memory", "1Gi")},
			want: with(headDefaults, "num-cpus", "2", "memory", "1073741824"),
		},
		{
			name: "cpu falls back to the request, memory does not",
			in: rayStartInput{nodeType: rayv1.HeadNode, container: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("3"), corev1.ResourceMemory: resource.MustParse("1Gi"),
			}}},
			want: with(headDefaults, "num-cpus", "3"),
		},
		{
			name: "rayStartParams win over container resources",
			in: rayStartInput{nodeType: rayv1.HeadNode, params: map[string]string{"num-cpus": "0", "memory": "5", "num-gpus": "0"},
				container: limits("cpu", "4", "memory", "1Gi", "nvidia.com/gpu", "2")},
			want: with(headDefaults, "num-cpus", "0", "memory", "5", "num-gpus", "0"),
		},
		{
			name: "first gpu resource alphabetically",
			in:   rayStartInput{nodeType: rayv1.HeadNode, container: limits("nvidia.com/gpu", "2", "amd.com/gpu", "3")},
			want: with(headDefaults, "num-gpus", "3"),
		},
		{
			name: "nvidia MIG slices count as GPUs",
			in:   rayStartInput{nodeType: rayv1.HeadNode, container: limits("nvidia.com/mig-1g.5gb", "1")},
			want: with(headDefaults, "num-gpus", "1"),
		},
		{
			name: "TPU limit becomes a TPU resource",
			in:   rayStartInput{nodeType: rayv1.WorkerNode, headAddress: "h:1", container: limits("google.com/tpu", "4")},
			want: map[string]string{"address": "h:1", "block": "true", "metrics-export-port": "8080", "dashboard-agent-listen-port": "52365", "resources": `'{"TPU":4}'`},
		},
		{
			name: "neuron cores merge into existing resources JSON",
			in: rayStartInput{nodeType: rayv1.HeadNode, params: map[string]string{"resources": `'{"custom": 2}'`},
				container: limits("aws.amazon.com/neuroncore", "2", "google.com/tpu", "4")},
			want: with(headDefaults, "resources", `'{"custom":2,"neuron_cores":2}'`),
		},
		{
			name: "accelerator already named in resources is not added again",
			in: rayStartInput{nodeType: rayv1.HeadNode, params: map[string]string{"resources": `'{"TPU": 8}'`},
				container: limits("google.com/tpu", "4")},
			want: with(headDefaults, "resources", `'{"TPU": 8}'`),
		},
		{
			name: "unparsable resources are left alone",
			in: rayStartInput{nodeType: rayv1.HeadNode, params: map[string]string{"resources": `'"{\"Custom1\": 1}"'`},
				container: limits("google.com/tpu", "4")},
			want: with(headDefaults, "resources", `'"{\"Custom1\": 1}"'`),
		},
		{
			name: "group resources override params and container resources",
			in: rayStartInput{nodeType: rayv1.HeadNode,
				params:         map[string]string{"num-cpus": "8"},
				groupResources: map[string]string{"CPU": "500m", "memory": "2Gi", "GPU": "1", "custom_thing": "3", "TPU": "2"},
				container:      limits("cpu", "4", "google.com/tpu", "4")},
			want: with(headDefaults, "num-cpus", "0.5", "memory", "2147483648", "num-gpus", "1", "resources", `'{"TPU":2,"custom_thing":3}'`),
		},
		{
			name: "group labels render sorted",
			in:   rayStartInput{nodeType: rayv1.HeadNode, groupLabels: map[string]string{"zone": "b", "accel": "none"}},
			want: with(headDefaults, "labels", "accel=none,zone=b"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]string{}
			for k, v := range tt.in.params {
				before[k] = v
			}
			got := buildRayStartParams(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
			if len(tt.in.params) > 0 {
				if diff := cmp.Diff(before, tt.in.params); diff != "" {
					t.Errorf("input params were modified (-before +after):\n%s", diff)
				}
			}
		})
	}
}

func TestSetRayContainerCommand(t *testing.T) {
	const gen = "ray start --head --block"
	tests := []struct {
		name      string
		cmd, args []string
		overwrite bool
		login     bool
		wantCmd   []string
		wantArgs  []string
	}{
		{
			name:     "no user command",
			wantCmd:  []string{"/bin/bash", "-c", "--"},
			wantArgs: []string{"ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head --block"},
		},
		{
			name:     "login shell",
			login:    true,
			wantCmd:  []string{"/bin/bash", "-lc", "--"},
			wantArgs: []string{"ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head --block"},
		},
		{
			name:     "user command runs first",
			cmd:      []string{"echo 123"},
			args:     []string{"456"},
			wantCmd:  []string{"/bin/bash", "-c", "--"},
			wantArgs: []string{"echo 123 456 && ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; ray start --head --block"},
		},
		{
			name:     "user command that starts ray is kept",
			cmd:      []string{"/bin/bash", "-c"},
			args:     []string{"ray start --head --block --num-cpus=1"},
			wantCmd:  []string{"/bin/bash", "-c"},
			wantArgs: []string{"ray start --head --block --num-cpus=1"},
		},
		{
			name:      "overwrite annotation keeps the command",
			cmd:       []string{"/bin/bash", "-c", "--"},
			args:      []string{"echo head; $KUBERAY_GEN_RAY_START_CMD"},
			overwrite: true,
			wantCmd:   []string{"/bin/bash", "-c", "--"},
			wantArgs:  []string{"echo head; $KUBERAY_GEN_RAY_START_CMD"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctr := &corev1.Container{Command: tt.cmd, Args: tt.args}
			o := DefaultOptions()
			o.EnableLoginShell = tt.login
			setRayContainerCommand(ctr, gen, tt.overwrite, o)
			if diff := cmp.Diff(tt.wantCmd, ctr.Command); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantArgs, ctr.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}
