package crds

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// clusterSpec is a minimal valid RayClusterSpec, reused by the three base objects.
const clusterSpec = `
headGroupSpec:
  rayStartParams: {}
  template:
    spec:
      containers:
      - name: ray-head
        image: rayk8s/rayk8s:latest
workerGroupSpecs:
- groupName: small
  replicas: 1
  minReplicas: 1
  maxReplicas: 3
  rayStartParams: {}
  template:
    spec:
      containers:
      - name: ray-worker
        image: rayk8s/rayk8s:latest
`

// base returns a minimal valid object of the kind ("cluster", "job" or "service").
func base(kind string) *unstructured.Unstructured {
	GinkgoHelper()
	var o *unstructured.Unstructured
	switch kind {
	case "cluster":
		o = fromYAML("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata:\n  name: rc\n")
		o.Object["spec"] = y(clusterSpec)
	case "job":
		o = fromYAML("apiVersion: ray.io/v1\nkind: RayJob\nmetadata:\n  name: rj\nspec:\n  entrypoint: echo hello\n")
		set(o.Object, y(clusterSpec), "spec", "rayClusterSpec")
	case "service":
		o = fromYAML("apiVersion: ray.io/v1\nkind: RayService\nmetadata:\n  name: rs\nspec:\n  serveConfigV2: |\n    applications:\n    - name: echo\n      import_path: builtin:echo\n      route_prefix: /\n")
		set(o.Object, y(clusterSpec), "spec", "rayClusterConfig")
	default:
		Fail(fmt.Sprintf("unknown base kind %q", kind))
	}
	return o
}

// y decodes a YAML snippet into the JSON-compatible value an unstructured object holds.
func y(s string) any {
	GinkgoHelper()
	j, err := yaml.YAMLToJSON([]byte(s))
	Expect(err).NotTo(HaveOccurred(), "decoding YAML snippet")
	// Round-trip through an unstructured object so that integers become int64, as everywhere else.
	u := &unstructured.Unstructured{}
	Expect(u.UnmarshalJSON([]byte(`{"apiVersion":"v1","kind":"X","v":`+string(j)+`}`))).To(Succeed(), "decoding YAML snippet")
	return u.Object["v"]
}

// set stores value at path (string keys and int list indexes), creating missing objects.
func set(obj map[string]any, value any, path ...any) {
	var cur any = obj
	for i, p := range path {
		last := i == len(path)-1
		switch k := p.(type) {
		case string:
			m := cur.(map[string]any)
			if last {
				m[k] = value
				return
			}
			if _, ok := m[k]; !ok {
				m[k] = map[string]any{}
			}
			cur = m[k]
		case int:
			l := cur.([]any)
			if last {
				l[k] = value
				return
			}
			cur = l[k]
		}
	}
}

// del removes the key at path.
func del(obj map[string]any, path ...any) {
	var cur any = obj
	for _, p := range path[:len(path)-1] {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	delete(cur.(map[string]any), path[len(path)-1].(string))
}

// get returns the value at path.
func get(obj map[string]any, path ...any) any {
	var cur any = obj
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur
}

// validationCase creates a mutated base object (and optionally updates it) and expects either
// success (want empty) or an Invalid error containing every string of want — the field path and
// the reason.
type validationCase struct {
	name   string
	kind   string // "cluster", "job", "service"
	mutate func(o map[string]any)
	// update, if set, is applied to the stored object after a successful create; the expectation
	// then applies to the update.
	update func(o map[string]any)
	want   []string
}

var (
	// worker is the path of the first worker group in each base kind.
	worker = map[string][]any{
		"cluster": {"spec", "workerGroupSpecs", 0},
		"job":     {"spec", "rayClusterSpec", "workerGroupSpecs", 0},
		"service": {"spec", "rayClusterConfig", "workerGroupSpecs", 0},
	}
	// cluster is the path of the RayClusterSpec in each base kind.
	cluster = map[string][]any{
		"cluster": {"spec"},
		"job":     {"spec", "rayClusterSpec"},
		"service": {"spec", "rayClusterConfig"},
	}
)

func at(prefix []any, rest ...any) []any {
	return append(append([]any{}, prefix...), rest...)
}

// useClusterSelector turns the base RayJob into one that runs on an existing cluster.
func useClusterSelector(o map[string]any) {
	del(o, "spec", "rayClusterSpec")
	set(o, map[string]any{"ray.io/cluster": "existing"}, "spec", "clusterSelector")
}

func clusterCases() []validationCase {
	var cases []validationCase
	// The rules of RayClusterSpec hold wherever it is embedded; check each kind, with the error
	// path following the embedding.
	for _, kind := range []string{"cluster", "job", "service"} {
		w, c := worker[kind], cluster[kind]
		prefix := strings.Join(func() []string {
			var s []string
			for _, p := range w {
				switch v := p.(type) {
				case string:
					s = append(s, v)
				case int:
					s[len(s)-1] += fmt.Sprintf("[%d]", v)
				}
			}
			return s
		}(), ".")
		specPrefix := strings.TrimSuffix(prefix, ".workerGroupSpecs[0]")
		cases = append(cases,
			validationCase{
				name: kind + ": minReplicas greater than maxReplicas", kind: kind,
				mutate: func(o map[string]any) {
					set(o, int64(4), at(w, "minReplicas")...)
				},
				want: []string{prefix + ".minReplicas", "minReplicas must be less than or equal to maxReplicas"},
			},
			validationCase{
				name: kind + ": minReplicas equal to maxReplicas", kind: kind,
				mutate: func(o map[string]any) { set(o, int64(3), at(w, "minReplicas")...) },
			},
			validationCase{
				name: kind + ": duplicate groupName", kind: kind,
				mutate: func(o map[string]any) {
					groups := get(o, at(c, "workerGroupSpecs")...).([]any)
					dup := groups[0].(map[string]any)
					set(o, append(groups, runtimeDeepCopy(dup)), at(c, "workerGroupSpecs")...)
				},
				want: []string{specPrefix + ".workerGroupSpecs", "groupName must be unique across workerGroupSpecs"},
			},
			validationCase{
				name: kind + ": distinct groupNames", kind: kind,
				mutate: func(o map[string]any) {
					groups := get(o, at(c, "workerGroupSpecs")...).([]any)
					other := runtimeDeepCopy(groups[0].(map[string]any))
					other["groupName"] = "large"
					set(o, append(groups, other), at(c, "workerGroupSpecs")...)
				},
			},
		)
	}

	w, c := worker["cluster"], cluster["cluster"]
	cases = append(cases,
		// metadata.name
		validationCase{
			name: "name of 53 characters", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "c"+strings.Repeat("x", 52), "metadata", "name") },
		},
		validationCase{
			name: "name over 53 characters", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "c"+strings.Repeat("x", 53), "metadata", "name") },
			want:   []string{"metadata.name must be no more than 53 characters"},
		},
		validationCase{
			name: "name not a DNS-1035 label", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "1cluster", "metadata", "name") },
			want:   []string{"metadata.name must be a DNS-1035 label"},
		},

		// replicas
		validationCase{
			name: "replicas above maxReplicas", kind: "cluster",
			mutate: func(o map[string]any) { set(o, int64(4), at(w, "replicas")...) },
			want:   []string{"spec.workerGroupSpecs[0].replicas", "replicas must be less than or equal to maxReplicas"},
		},
		validationCase{
			name: "replicas equal to maxReplicas", kind: "cluster",
			mutate: func(o map[string]any) { set(o, int64(3), at(w, "replicas")...) },
		},
		validationCase{
			// replicas defaults to 0, so a lower bound cannot be enforced: the operator clamps.
			name: "replicas unset with minReplicas 2", kind: "cluster",
			mutate: func(o map[string]any) {
				del(o, at(w, "replicas")...)
				set(o, int64(2), at(w, "minReplicas")...)
			},
		},
		validationCase{
			name: "negative minReplicas", kind: "cluster",
			mutate: func(o map[string]any) { set(o, int64(-1), at(w, "minReplicas")...) },
			want:   []string{"spec.workerGroupSpecs[0].minReplicas", "should be greater than or equal to 0"},
		},
		validationCase{
			name: "numOfHosts 0", kind: "cluster",
			mutate: func(o map[string]any) { set(o, int64(0), at(w, "numOfHosts")...) },
			want:   []string{"spec.workerGroupSpecs[0].numOfHosts", "should be greater than or equal to 1"},
		},

		// groupName
		validationCase{
			name: "groupName of 63 characters", kind: "cluster",
			mutate: func(o map[string]any) { set(o, strings.Repeat("g", 63), at(w, "groupName")...) },
		},
		validationCase{
			name: "groupName over 63 characters", kind: "cluster",
			mutate: func(o map[string]any) { set(o, strings.Repeat("g", 64), at(w, "groupName")...) },
			want:   []string{"spec.workerGroupSpecs[0].groupName", "may not be more than 63"},
		},
		validationCase{
			name: "groupName not a label value", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "small group", at(w, "groupName")...) },
			want:   []string{"spec.workerGroupSpecs[0].groupName", "should match"},
		},

		// containers
		validationCase{
			name: "head template without containers", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, []any{}, "spec", "headGroupSpec", "template", "spec", "containers")
			},
			want: []string{"spec.headGroupSpec.template", "template.spec.containers must list the Ray container first"},
		},
		validationCase{
			name: "worker template without containers", kind: "cluster",
			mutate: func(o map[string]any) { set(o, []any{}, at(w, "template", "spec", "containers")...) },
			want:   []string{"spec.workerGroupSpecs[0].template", "template.spec.containers must list the Ray container first"},
		},

		// rayStartParams and resources
		validationCase{
			name: "head rayStartParams labels", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"labels": "a=b"}, "spec", "headGroupSpec", "rayStartParams")
			},
			want: []string{"spec.headGroupSpec.rayStartParams", "rayStartParams cannot contain 'labels'"},
		},
		validationCase{
			name: "worker rayStartParams labels", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"labels": "a=b"}, at(w, "rayStartParams")...)
			},
			want: []string{"spec.workerGroupSpecs[0].rayStartParams", "rayStartParams cannot contain 'labels'"},
		},
		validationCase{
			name: "head labels field with other rayStartParams", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"a": "b"}, "spec", "headGroupSpec", "labels")
				set(o, map[string]any{"num-cpus": "0"}, "spec", "headGroupSpec", "rayStartParams")
			},
		},
		validationCase{
			name: "head resources with rayStartParams num-cpus", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"cpu": "1"}, "spec", "headGroupSpec", "resources")
				set(o, map[string]any{"num-cpus": "1"}, "spec", "headGroupSpec", "rayStartParams")
			},
			want: []string{"spec.headGroupSpec.resources", "resources cannot be combined with rayStartParams num-cpus"},
		},
		validationCase{
			name: "worker resources with rayStartParams memory", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"memory": "1000000"}, at(w, "resources")...)
				set(o, map[string]any{"memory": "1000000"}, at(w, "rayStartParams")...)
			},
			want: []string{"spec.workerGroupSpecs[0].resources", "resources cannot be combined with rayStartParams"},
		},
		validationCase{
			name: "worker resources alone", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"cpu": "2", "TPU": "4"}, at(w, "resources")...)
				set(o, map[string]any{"block": "true"}, at(w, "rayStartParams")...)
			},
		},

		// managedBy (KubeRay)
		validationCase{
			name: "cluster managedBy kueue", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "kueue.x-k8s.io/multikueue", "spec", "managedBy") },
		},
		validationCase{
			name: "cluster managedBy unknown controller", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "example.com/other", "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field value must be either"},
		},
		validationCase{
			name: "cluster managedBy changed", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "ray.io/kuberay-operator", "spec", "managedBy") },
			update: func(o map[string]any) { set(o, "kueue.x-k8s.io/multikueue", "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field is immutable"},
		},
		validationCase{
			name: "cluster managedBy added", kind: "cluster",
			mutate: func(o map[string]any) {},
			update: func(o map[string]any) { set(o, "kueue.x-k8s.io/multikueue", "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field is immutable: it cannot be added or removed"},
		},
		validationCase{
			name: "cluster managedBy unchanged on update", kind: "cluster",
			mutate: func(o map[string]any) { set(o, "ray.io/kuberay-operator", "spec", "managedBy") },
			update: func(o map[string]any) { set(o, "2.46.0", "spec", "rayVersion") },
		},

		// GCS fault tolerance
		validationCase{
			name: "gcs backend changed", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"backend": "redis", "redisAddress": "redis:6379"}, at(c, "gcsFaultToleranceOptions")...)
			},
			update: func(o map[string]any) {
				set(o, map[string]any{"backend": "rocksdb"}, at(c, "gcsFaultToleranceOptions")...)
			},
			want: []string{"spec.gcsFaultToleranceOptions.backend", "gcsFaultToleranceOptions.backend is immutable"},
		},
		validationCase{
			name: "gcs rocksdb with storage", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{backend: rocksdb, storage: {size: 2Gi, accessModes: [ReadWriteOnce]}}"), at(c, "gcsFaultToleranceOptions")...)
			},
		},
		validationCase{
			name: "gcs rocksdb with redisAddress", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{backend: rocksdb, redisAddress: 'redis:6379'}"), at(c, "gcsFaultToleranceOptions")...)
			},
			want: []string{"spec.gcsFaultToleranceOptions", "cannot be used with the rocksdb backend"},
		},
		validationCase{
			name: "gcs storage with default backend", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{redisAddress: 'redis:6379', storage: {size: 2Gi}}"), at(c, "gcsFaultToleranceOptions")...)
			},
			want: []string{"spec.gcsFaultToleranceOptions.storage", "storage requires backend rocksdb"},
		},
		validationCase{
			name: "gcs storage claimName with size", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{backend: rocksdb, storage: {claimName: gcs, size: 2Gi}}"), at(c, "gcsFaultToleranceOptions")...)
			},
			want: []string{"spec.gcsFaultToleranceOptions.storage.claimName", "claimName cannot be combined with size"},
		},
		validationCase{
			name: "gcs storage claimName alone", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{backend: rocksdb, storage: {claimName: gcs, deletionPolicy: Retain}}"), at(c, "gcsFaultToleranceOptions")...)
			},
		},

		// auth
		validationCase{
			name: "auth secretName with enableK8sTokenAuth", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{mode: token, secretName: s, enableK8sTokenAuth: true}"), "spec", "authOptions")
			},
			want: []string{"spec.authOptions.enableK8sTokenAuth", "secretName and enableK8sTokenAuth are mutually exclusive"},
		},
		validationCase{
			name: "auth enableK8sTokenAuth alone", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{mode: token, enableK8sTokenAuth: true}"), "spec", "authOptions")
			},
		},

		// network policy
		validationCase{
			name: "networkPolicy DenyAll with ingress and egress rules", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{head: {ingressRules: [{}], egressRules: [{}]}, workerGroups: [{groupName: small, ingressRules: [{}]}]}"), "spec", "networkPolicy")
			},
		},
		validationCase{
			name: "networkPolicy DenyAllEgress with worker-group ingress rules", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{mode: DenyAllEgress, workerGroups: [{groupName: small, ingressRules: [{}]}]}"), "spec", "networkPolicy")
			},
			want: []string{"spec.networkPolicy", "ingressRules are only allowed when mode denies ingress"},
		},
		validationCase{
			name: "networkPolicy DenyAllIngress with head egress rules", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, y("{mode: DenyAllIngress, head: {egressRules: [{}]}}"), "spec", "networkPolicy")
			},
			want: []string{"spec.networkPolicy", "egressRules are only allowed when mode denies egress"},
		},

		// worker-group suspend
		validationCase{
			name: "worker suspend without autoscaling", kind: "cluster",
			mutate: func(o map[string]any) { set(o, true, at(w, "suspend")...) },
		},
		validationCase{
			name: "worker suspend with autoscaling", kind: "cluster",
			mutate: func(o map[string]any) {
				set(o, true, at(w, "suspend")...)
				set(o, true, "spec", "enableInTreeAutoscaling")
			},
			want: []string{"spec.workerGroupSpecs", "suspend cannot be true when enableInTreeAutoscaling is true"},
		},
	)
	return cases
}

// deletionRules builds spec.deletionStrategy.deletionRules from (jobStatus, policy, ttl) triples.
func deletionRules(rules ...[3]any) map[string]any {
	var list []any
	for _, r := range rules {
		list = append(list, map[string]any{
			"policy":    r[1],
			"condition": map[string]any{"jobStatus": r[0], "ttlSeconds": int64(r[2].(int))},
		})
	}
	return map[string]any{"deletionRules": list}
}

func legacyDeletion(onSuccess, onFailure string) map[string]any {
	return map[string]any{
		"onSuccess": map[string]any{"policy": onSuccess},
		"onFailure": map[string]any{"policy": onFailure},
	}
}

func jobCases() []validationCase {
	shutdown := func(o map[string]any) { set(o, true, "spec", "shutdownAfterJobFinishes") }
	return []validationCase{
		// metadata.name
		{
			name: "job name of 47 characters", kind: "job",
			mutate: func(o map[string]any) { set(o, "j"+strings.Repeat("x", 46), "metadata", "name") },
		},
		{
			name: "job name over 47 characters", kind: "job",
			mutate: func(o map[string]any) { set(o, "j"+strings.Repeat("x", 47), "metadata", "name") },
			want:   []string{"metadata.name must be no more than 47 characters"},
		},
		{
			name: "job name not a DNS-1035 label", kind: "job",
			mutate: func(o map[string]any) { set(o, "job.v1", "metadata", "name") },
			want:   []string{"metadata.name must be a DNS-1035 label"},
		},

		// cluster choice
		{
			name: "clusterSelector and rayClusterSpec", kind: "job",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"ray.io/cluster": "existing"}, "spec", "clusterSelector")
			},
			want: []string{"spec.clusterSelector", "rayClusterSpec and clusterSelector are mutually exclusive"},
		},
		{
			name: "clusterSelector alone", kind: "job",
			mutate: func(o map[string]any) { useClusterSelector(o) },
		},
		{
			name: "neither clusterSelector nor rayClusterSpec", kind: "job",
			mutate: func(o map[string]any) { del(o, "spec", "rayClusterSpec") },
			want:   []string{"spec", "one of rayClusterSpec or clusterSelector must be set"},
		},
		{
			name: "clusterSelector without ray.io/cluster", kind: "job",
			mutate: func(o map[string]any) {
				useClusterSelector(o)
				set(o, map[string]any{"app": "x"}, "spec", "clusterSelector")
			},
			want: []string{"spec.clusterSelector", "clusterSelector must map 'ray.io/cluster'"},
		},

		// submissionMode
		{
			name: "unknown submissionMode", kind: "job",
			mutate: func(o map[string]any) { set(o, "ShellMode", "spec", "submissionMode") },
			want:   []string{"spec.submissionMode", `Unsupported value: "ShellMode"`},
		},
		{
			name: "submissionMode HTTPMode", kind: "job",
			mutate: func(o map[string]any) { set(o, "HTTPMode", "spec", "submissionMode") },
		},

		// suspend and TTL
		{
			name: "suspend without shutdownAfterJobFinishes", kind: "job",
			mutate: func(o map[string]any) { set(o, true, "spec", "suspend") },
			want:   []string{"spec.suspend", "suspend requires shutdownAfterJobFinishes to be true"},
		},
		{
			name: "suspend with shutdownAfterJobFinishes", kind: "job",
			mutate: func(o map[string]any) { set(o, true, "spec", "suspend"); shutdown(o) },
		},
		{
			name: "suspend with clusterSelector", kind: "job",
			mutate: func(o map[string]any) {
				useClusterSelector(o)
				set(o, true, "spec", "suspend")
				shutdown(o)
			},
			want: []string{"spec.suspend", "suspend cannot be used with clusterSelector"},
		},
		{
			name: "ttlSecondsAfterFinished without shutdownAfterJobFinishes", kind: "job",
			mutate: func(o map[string]any) { set(o, int64(10), "spec", "ttlSecondsAfterFinished") },
			want:   []string{"spec.ttlSecondsAfterFinished", "requires shutdownAfterJobFinishes to be true"},
		},
		{
			name: "ttlSecondsAfterFinished with shutdownAfterJobFinishes", kind: "job",
			mutate: func(o map[string]any) {
				set(o, int64(10), "spec", "ttlSecondsAfterFinished")
				shutdown(o)
			},
		},
		{
			name: "negative ttlSecondsAfterFinished", kind: "job",
			mutate: func(o map[string]any) {
				set(o, int64(-1), "spec", "ttlSecondsAfterFinished")
				shutdown(o)
			},
			want: []string{"spec.ttlSecondsAfterFinished", "should be greater than or equal to 0"},
		},
		{
			name: "activeDeadlineSeconds 0", kind: "job",
			mutate: func(o map[string]any) { set(o, int64(0), "spec", "activeDeadlineSeconds") },
			want:   []string{"spec.activeDeadlineSeconds", "should be greater than or equal to 1"},
		},

		// modes and retries
		{
			name: "clusterSelector with SidecarMode", kind: "job",
			mutate: func(o map[string]any) {
				useClusterSelector(o)
				set(o, "SidecarMode", "spec", "submissionMode")
			},
			want: []string{"spec.submissionMode", "SidecarMode cannot be used with clusterSelector"},
		},
		{
			name: "clusterSelector with backoffLimit", kind: "job",
			mutate: func(o map[string]any) {
				useClusterSelector(o)
				set(o, int64(1), "spec", "backoffLimit")
			},
			want: []string{"spec.backoffLimit", "backoffLimit must be 0 with clusterSelector"},
		},
		{
			name: "InteractiveMode with backoffLimit", kind: "job",
			mutate: func(o map[string]any) {
				set(o, "InteractiveMode", "spec", "submissionMode")
				set(o, int64(2), "spec", "backoffLimit")
			},
			want: []string{"spec.backoffLimit", "backoffLimit must be 0 in InteractiveMode"},
		},
		{
			name: "K8sJobMode with backoffLimit", kind: "job",
			mutate: func(o map[string]any) { set(o, int64(2), "spec", "backoffLimit") },
		},
		{
			name: "SidecarMode with submitterPodTemplate", kind: "job",
			mutate: func(o map[string]any) {
				set(o, "SidecarMode", "spec", "submissionMode")
				set(o, y("{spec: {containers: [{name: submitter, image: rayk8s/rayk8s:latest}]}}"), "spec", "submitterPodTemplate")
			},
			want: []string{"spec.submitterPodTemplate", "submitterPodTemplate cannot be used in SidecarMode"},
		},
		{
			name: "K8sJobMode with submitterPodTemplate", kind: "job",
			mutate: func(o map[string]any) {
				set(o, y("{spec: {restartPolicy: Never, containers: [{name: submitter, image: rayk8s/rayk8s:latest}]}}"), "spec", "submitterPodTemplate")
			},
		},
		{
			name: "SidecarMode with head restartPolicy Always", kind: "job",
			mutate: func(o map[string]any) {
				set(o, "SidecarMode", "spec", "submissionMode")
				set(o, "Always", "spec", "rayClusterSpec", "headGroupSpec", "template", "spec", "restartPolicy")
			},
			want: []string{"spec.rayClusterSpec.headGroupSpec.template.spec.restartPolicy", "SidecarMode requires the head pod restartPolicy to be Never or unset"},
		},
		{
			name: "SidecarMode with head restartPolicy Never", kind: "job",
			mutate: func(o map[string]any) {
				set(o, "SidecarMode", "spec", "submissionMode")
				set(o, "Never", "spec", "rayClusterSpec", "headGroupSpec", "template", "spec", "restartPolicy")
			},
		},

		// deletion strategy (KubeRay's rules)
		{
			name: "legacy and rules deletion strategy together", kind: "job",
			mutate: func(o map[string]any) {
				ds := legacyDeletion("DeleteCluster", "DeleteNone")
				ds["deletionRules"] = deletionRules([3]any{"SUCCEEDED", "DeleteCluster", 0})["deletionRules"]
				set(o, ds, "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy", "legacy policies (onSuccess/onFailure) and deletionRules cannot be used together"},
		},
		{
			name: "legacy deletion strategy with onSuccess only", kind: "job",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"onSuccess": map[string]any{"policy": "DeleteCluster"}}, "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy", "deletionStrategy requires either BOTH onSuccess and onFailure"},
		},
		{
			name: "deletion condition with jobStatus and jobDeploymentStatus", kind: "job",
			mutate: func(o map[string]any) {
				ds := deletionRules([3]any{"FAILED", "DeleteCluster", 0})
				set(ds, "Failed", "deletionRules", 0, "condition", "jobDeploymentStatus")
				set(o, ds, "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy.deletionRules[0].condition", "JobStatus and JobDeploymentStatus cannot be used together"},
		},

		// deletion strategy (ours)
		{
			name: "deletion rules", kind: "job",
			mutate: func(o map[string]any) {
				set(o, deletionRules(
					[3]any{"SUCCEEDED", "DeleteWorkers", 10},
					[3]any{"SUCCEEDED", "DeleteCluster", 20},
					[3]any{"SUCCEEDED", "DeleteSelf", 20},
					[3]any{"FAILED", "DeleteCluster", 5},
				), "spec", "deletionStrategy")
			},
		},
		{
			name: "deletion rules with shutdownAfterJobFinishes", kind: "job",
			mutate: func(o map[string]any) {
				set(o, deletionRules([3]any{"SUCCEEDED", "DeleteCluster", 0}), "spec", "deletionStrategy")
				shutdown(o)
			},
			want: []string{"spec.deletionStrategy.deletionRules", "deletionRules cannot be used with shutdownAfterJobFinishes"},
		},
		{
			name: "duplicate deletion rule", kind: "job",
			mutate: func(o map[string]any) {
				set(o, deletionRules([3]any{"FAILED", "DeleteCluster", 0}, [3]any{"FAILED", "DeleteCluster", 60}), "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy.deletionRules", "deletionRules must be unique per condition and policy"},
		},
		{
			name: "deletion rule TTLs out of order", kind: "job",
			mutate: func(o map[string]any) {
				set(o, deletionRules([3]any{"FAILED", "DeleteWorkers", 60}, [3]any{"FAILED", "DeleteCluster", 30}), "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy.deletionRules", "ttlSeconds must satisfy DeleteWorkers <= DeleteCluster <= DeleteSelf"},
		},
		{
			name: "deletion rule TTLs out of order for different conditions", kind: "job",
			mutate: func(o map[string]any) {
				set(o, deletionRules([3]any{"FAILED", "DeleteWorkers", 60}, [3]any{"SUCCEEDED", "DeleteCluster", 30}), "spec", "deletionStrategy")
			},
		},
		{
			name: "legacy DeleteNone with shutdownAfterJobFinishes", kind: "job",
			mutate: func(o map[string]any) {
				set(o, legacyDeletion("DeleteCluster", "DeleteNone"), "spec", "deletionStrategy")
				shutdown(o)
			},
			want: []string{"spec.deletionStrategy", "DeleteNone cannot be used with shutdownAfterJobFinishes"},
		},
		{
			name: "legacy DeleteCluster with shutdownAfterJobFinishes", kind: "job",
			mutate: func(o map[string]any) {
				set(o, legacyDeletion("DeleteCluster", "DeleteSelf"), "spec", "deletionStrategy")
				shutdown(o)
			},
		},
		{
			name: "clusterSelector with DeleteCluster rule", kind: "job",
			mutate: func(o map[string]any) {
				useClusterSelector(o)
				set(o, deletionRules([3]any{"SUCCEEDED", "DeleteCluster", 0}), "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy", "DeleteCluster and DeleteWorkers cannot be used with clusterSelector"},
		},
		{
			name: "clusterSelector with legacy DeleteWorkers", kind: "job",
			mutate: func(o map[string]any) {
				useClusterSelector(o)
				set(o, legacyDeletion("DeleteWorkers", "DeleteNone"), "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy", "DeleteCluster and DeleteWorkers cannot be used with clusterSelector"},
		},
		{
			name: "clusterSelector with DeleteSelf rule", kind: "job",
			mutate: func(o map[string]any) {
				useClusterSelector(o)
				set(o, deletionRules([3]any{"SUCCEEDED", "DeleteSelf", 0}), "spec", "deletionStrategy")
			},
		},
		{
			name: "autoscaling with DeleteWorkers rule", kind: "job",
			mutate: func(o map[string]any) {
				set(o, true, "spec", "rayClusterSpec", "enableInTreeAutoscaling")
				set(o, deletionRules([3]any{"SUCCEEDED", "DeleteWorkers", 0}), "spec", "deletionStrategy")
			},
			want: []string{"spec.deletionStrategy", "DeleteWorkers cannot be used when rayClusterSpec.enableInTreeAutoscaling is true"},
		},
		{
			name: "autoscaling with DeleteCluster rule", kind: "job",
			mutate: func(o map[string]any) {
				set(o, true, "spec", "rayClusterSpec", "enableInTreeAutoscaling")
				set(o, deletionRules([3]any{"SUCCEEDED", "DeleteCluster", 0}), "spec", "deletionStrategy")
			},
		},

		// embedded cluster restrictions
		{
			name: "job cluster upgradeStrategy Recreate", kind: "job",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"type": "Recreate"}, "spec", "rayClusterSpec", "upgradeStrategy")
			},
			want: []string{"spec.rayClusterSpec.upgradeStrategy.type", "Recreate is only supported on RayClusters created directly"},
		},
		{
			name: "job cluster enableK8sTokenAuth", kind: "job",
			mutate: func(o map[string]any) {
				set(o, y("{mode: token, enableK8sTokenAuth: true}"), "spec", "rayClusterSpec", "authOptions")
			},
			want: []string{"spec.rayClusterSpec.authOptions.enableK8sTokenAuth", "only supported on RayClusters created directly"},
		},

		// managedBy (KubeRay)
		{
			name: "job managedBy changed", kind: "job",
			mutate: func(o map[string]any) { set(o, "kueue.x-k8s.io/multikueue", "spec", "managedBy") },
			update: func(o map[string]any) { set(o, "ray.io/kuberay-operator", "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field is immutable"},
		},
		{
			name: "job managedBy removed", kind: "job",
			mutate: func(o map[string]any) { set(o, "kueue.x-k8s.io/multikueue", "spec", "managedBy") },
			update: func(o map[string]any) { del(o, "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field is immutable: it cannot be added or removed"},
		},
		{
			name: "job managedBy unknown controller", kind: "job",
			mutate: func(o map[string]any) { set(o, "example.com/other", "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field value must be either"},
		},
	}
}

func serviceCases() []validationCase {
	incremental := func(o map[string]any) {
		set(o, y("{type: NewClusterWithIncrementalUpgrade, clusterUpgradeOptions: {gatewayClassName: istio, stepSizePercent: 10, intervalSeconds: 30, maxSurgePercent: 20}}"), "spec", "upgradeStrategy")
		set(o, true, "spec", "rayClusterConfig", "enableInTreeAutoscaling")
	}
	return []validationCase{
		{
			name: "service name of 47 characters", kind: "service",
			mutate: func(o map[string]any) { set(o, "s"+strings.Repeat("x", 46), "metadata", "name") },
		},
		{
			name: "service name over 47 characters", kind: "service",
			mutate: func(o map[string]any) { set(o, "s"+strings.Repeat("x", 47), "metadata", "name") },
			want:   []string{"metadata.name must be no more than 47 characters"},
		},
		{
			name: "service name not a DNS-1035 label", kind: "service",
			mutate: func(o map[string]any) { set(o, "serve.v2", "metadata", "name") },
			want:   []string{"metadata.name must be a DNS-1035 label"},
		},
		{
			name: "service head Service with a name", kind: "service",
			mutate: func(o map[string]any) {
				set(o, y("{metadata: {name: my-head}}"), "spec", "rayClusterConfig", "headGroupSpec", "headService")
			},
			want: []string{"spec.rayClusterConfig.headGroupSpec.headService", "headService.metadata.name cannot be set"},
		},
		{
			name: "service head Service without a name", kind: "service",
			mutate: func(o map[string]any) {
				set(o, y("{metadata: {annotations: {a: b}}, spec: {type: ClusterIP}}"), "spec", "rayClusterConfig", "headGroupSpec", "headService")
			},
		},
		{
			name: "service unknown upgrade type", kind: "service",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"type": "Rolling"}, "spec", "upgradeStrategy")
			},
			want: []string{"spec.upgradeStrategy.type", `Unsupported value: "Rolling"`},
		},
		{
			name: "service incremental upgrade", kind: "service",
			mutate: incremental,
		},
		{
			name: "service incremental upgrade without options", kind: "service",
			mutate: func(o map[string]any) {
				incremental(o)
				del(o, "spec", "upgradeStrategy", "clusterUpgradeOptions")
			},
			want: []string{"spec.upgradeStrategy", "clusterUpgradeOptions is required when upgradeStrategy.type is NewClusterWithIncrementalUpgrade"},
		},
		{
			name: "service incremental upgrade without autoscaling", kind: "service",
			mutate: func(o map[string]any) {
				incremental(o)
				set(o, false, "spec", "rayClusterConfig", "enableInTreeAutoscaling")
			},
			want: []string{"spec.upgradeStrategy.type", "requires rayClusterConfig.enableInTreeAutoscaling to be true"},
		},
		{
			name: "service incremental stepSizePercent above maxSurgePercent", kind: "service",
			mutate: func(o map[string]any) {
				incremental(o)
				set(o, int64(30), "spec", "upgradeStrategy", "clusterUpgradeOptions", "stepSizePercent")
			},
			want: []string{"spec.upgradeStrategy.clusterUpgradeOptions.stepSizePercent", "stepSizePercent must be less than or equal to maxSurgePercent"},
		},
		{
			name: "service incremental maxSurgePercent above 100", kind: "service",
			mutate: func(o map[string]any) {
				incremental(o)
				set(o, int64(101), "spec", "upgradeStrategy", "clusterUpgradeOptions", "maxSurgePercent")
			},
			want: []string{"spec.upgradeStrategy.clusterUpgradeOptions.maxSurgePercent", "should be less than or equal to 100"},
		},
		{
			name: "service incremental intervalSeconds 0", kind: "service",
			mutate: func(o map[string]any) {
				incremental(o)
				set(o, int64(0), "spec", "upgradeStrategy", "clusterUpgradeOptions", "intervalSeconds")
			},
			want: []string{"spec.upgradeStrategy.clusterUpgradeOptions.intervalSeconds", "should be greater than or equal to 1"},
		},
		{
			name: "service cluster upgradeStrategy Recreate", kind: "service",
			mutate: func(o map[string]any) {
				set(o, map[string]any{"type": "Recreate"}, "spec", "rayClusterConfig", "upgradeStrategy")
			},
			want: []string{"spec.rayClusterConfig.upgradeStrategy.type", "Recreate is only supported on RayClusters created directly"},
		},
		{
			name: "service cluster enableK8sTokenAuth", kind: "service",
			mutate: func(o map[string]any) {
				set(o, y("{mode: token, enableK8sTokenAuth: true}"), "spec", "rayClusterConfig", "authOptions")
			},
			want: []string{"spec.rayClusterConfig.authOptions.enableK8sTokenAuth", "only supported on RayClusters created directly"},
		},
		{
			name: "service rayClusterDeletionDelaySeconds negative", kind: "service",
			mutate: func(o map[string]any) { set(o, int64(-1), "spec", "rayClusterDeletionDelaySeconds") },
			want:   []string{"spec.rayClusterDeletionDelaySeconds", "should be greater than or equal to 0"},
		},
		{
			name: "service managedBy changed", kind: "service",
			mutate: func(o map[string]any) { set(o, "ray.io/kuberay-operator", "spec", "managedBy") },
			update: func(o map[string]any) { del(o, "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field is immutable: it cannot be added or removed"},
		},
		{
			name: "service managedBy unknown controller", kind: "service",
			mutate: func(o map[string]any) { set(o, "example.com/other", "spec", "managedBy") },
			want:   []string{"spec.managedBy", "the managedBy field value must be either"},
		},
	}
}

func runtimeDeepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}

// allValidationCases returns the cases of every kind.
func allValidationCases() []validationCase {
	var cases []validationCase
	cases = append(cases, clusterCases()...)
	cases = append(cases, jobCases()...)
	cases = append(cases, serviceCases()...)
	return cases
}

// Every validation case runs against the API server.
var _ = Describe("CRD validation", func() {
	var (
		c  client.Client
		ns string // one namespace for all cases; unique names keep them apart unless the case tests names
	)
	BeforeEach(func() {
		c = strictClient(env.Client)
		if ns == "" {
			ns = newNamespace(context.Background(), env.Client, "validation")
		}
	})

	cases := allValidationCases()
	It("has unique case names", func() {
		seen := map[string]bool{}
		for _, tc := range cases {
			Expect(seen).NotTo(HaveKey(tc.name), "duplicate case name")
			seen[tc.name] = true
		}
	})
	for i, tc := range cases {
		It(tc.name, func() {
			ctx := context.Background()
			obj := base(tc.kind)
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("%s-%d", obj.GetName(), i))
			tc.mutate(obj.Object)

			err := c.Create(ctx, obj)
			if tc.update != nil {
				Expect(err).NotTo(HaveOccurred(), "creating the object to update")
				stored := &unstructured.Unstructured{}
				stored.SetGroupVersionKind(obj.GroupVersionKind())
				Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(obj), stored)).To(Succeed())
				tc.update(stored.Object)
				err = c.Update(ctx, stored)
			}
			checkResult(err, tc.want)
		})
	}
})

func checkResult(err error, want []string) {
	GinkgoHelper()
	if len(want) == 0 {
		Expect(err).NotTo(HaveOccurred(), "want the object accepted")
		return
	}
	Expect(err).To(HaveOccurred(), "want the object rejected with %q, but it was accepted", want)
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
	GinkgoWriter.Printf("rejected: %v\n", err)
	for _, w := range want {
		Expect(err.Error()).To(ContainSubstring(w), "the error does not mention %q", w)
	}
}
