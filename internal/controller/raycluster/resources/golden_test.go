package resources

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const (
	goldenNamespace = "default"
	goldenUID       = types.UID("00000000-0000-4000-8000-000000000001")
	goldenVersion   = "v0.0.0-test"
	goldenDir       = "testdata/golden"
)

// repoRoot walks up from the test's working directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// sampleSource is a directory of sample YAML files and the prefix of their golden file names.
type sampleSource struct {
	dir, prefix string
}

func sampleSources(t *testing.T) []sampleSource {
	root := repoRoot(t)
	var out []sampleSource
	shared := filepath.Join(root, "..", "shared", "kuberay", "samples")
	if _, err := os.Stat(shared); err == nil {
		out = append(out, sampleSource{dir: shared})
	} else {
		t.Logf("KubeRay samples not found at %s; their golden tests are skipped", shared)
	}
	local := filepath.Join(root, "config", "samples")
	if _, err := os.Stat(local); err == nil {
		out = append(out, sampleSource{dir: local, prefix: "config-samples__"})
	}
	return out
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// rayClustersIn returns the RayCluster documents of a multi-document YAML file.
func rayClustersIn(t *testing.T, path string) []*rayv1.RayCluster {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*rayv1.RayCluster
	for _, doc := range docSeparator.Split(string(data), -1) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if head.Kind != "RayCluster" || !strings.HasPrefix(head.APIVersion, "ray.io/") {
			continue
		}
		c := &rayv1.RayCluster{}
		if err := yaml.Unmarshal([]byte(doc), c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	return out
}

// renderChildren builds every child that applies to c and renders them as one YAML stream.
func renderChildren(t *testing.T, c *rayv1.RayCluster) []byte {
	t.Helper()
	c.Namespace = goldenNamespace
	c.UID = goldenUID
	o := DefaultOptions()
	o.OperatorVersion = goldenVersion

	type child struct {
		title string
		obj   any
	}
	children := []child{{"head pod", BuildHeadPod(c, o)}}
	for i := range c.Spec.WorkerGroupSpecs {
		g := &c.Spec.WorkerGroupSpecs[i]
		p := WorkerPodParams{ReplicaIndex: ptr.To[int32](0)}
		if g.NumOfHosts > 1 {
			p.ReplicaName = g.GroupName + "-abcde"
		}
		children = append(children, child{"worker pod of group " + g.GroupName, BuildWorkerPod(c, g, p, o)})
	}
	children = append(children, child{"head service", BuildHeadService(c, o)})
	if svc := BuildHeadlessWorkerService(c); svc != nil {
		children = append(children, child{"headless worker service", svc})
	}
	if ServeServiceRequested(c) {
		svc, err := BuildServeService(c)
		if err != nil {
			children = append(children, child{"serve service error", map[string]string{"error": err.Error()}})
		} else {
			children = append(children, child{"serve service", svc})
		}
	}
	if ing := BuildIngress(c); ing != nil {
		children = append(children, child{"ingress", ing})
	}
	if sa := BuildAutoscalerServiceAccount(c); sa != nil {
		children = append(children, child{"autoscaler service account", sa})
	}
	if r := BuildAutoscalerRole(c); r != nil {
		children = append(children, child{"autoscaler role", r})
	}
	if rb := BuildAutoscalerRoleBinding(c); rb != nil {
		children = append(children, child{"autoscaler role binding", rb})
	}
	if s := BuildAuthSecret(c, "golden-token"); s != nil {
		children = append(children, child{"auth secret", s})
	}
	if pvc := BuildGCSStoragePVC(c); pvc != nil {
		children = append(children, child{"gcs storage pvc", pvc})
	}
	if job := BuildRedisCleanupJob(c, o); job != nil {
		children = append(children, child{"redis cleanup job", job})
	}

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Children of RayCluster %s/%s built with DefaultOptions (operator version %s).\n", c.Namespace, c.Name, goldenVersion)
	fmt.Fprintf(&buf, "# Regenerate with: go test ./internal/controller/raycluster/resources/ -update\n")
	for _, ch := range children {
		b, err := cleanYAML(ch.obj)
		if err != nil {
			t.Fatalf("%s: %v", ch.title, err)
		}
		fmt.Fprintf(&buf, "---\n# %s\n%s", ch.title, b)
	}
	return buf.Bytes()
}

// cleanYAML renders obj without the empty creationTimestamp and status every API object carries.
func cleanYAML(obj any) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return yaml.Marshal(prune(m))
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			val = prune(val)
			if val == nil && k == "creationTimestamp" {
				delete(x, k)
				continue
			}
			if mm, ok := val.(map[string]any); ok && len(mm) == 0 && (k == "status" || k == "resources" || k == "metadata" || k == "loadBalancer") {
				delete(x, k)
				continue
			}
			x[k] = val
		}
		return x
	case []any:
		for i := range x {
			x[i] = prune(x[i])
		}
		return x
	}
	return v
}

func TestGoldenSamples(t *testing.T) {
	sources := sampleSources(t)
	if len(sources) == 0 {
		t.Skip("no sample directories found (../shared/kuberay/samples, config/samples)")
	}
	want := map[string]bool{}
	for _, src := range sources {
		files, err := filepath.Glob(filepath.Join(src.dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			clusters := rayClustersIn(t, file)
			if len(clusters) == 0 {
				continue
			}
			name := src.prefix + filepath.Base(file)
			want[name] = true
			t.Run(name, func(t *testing.T) {
				var got []byte
				for _, c := range clusters {
					got = append(got, renderChildren(t, c)...)
				}
				golden := filepath.Join(goldenDir, name)
				if *update {
					if err := os.MkdirAll(goldenDir, 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				expected, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("missing golden file (run with -update to create it): %v", err)
				}
				if diff := cmp.Diff(string(expected), string(got)); diff != "" {
					t.Errorf("children of %s differ from %s (-golden +got):\n%s", file, golden, diff)
				}
			})
		}
	}

	// A golden file whose sample disappeared is stale. Only checked when every source is present,
	// otherwise the goldens of a missing source would look stale.
	if len(sources) < 2 {
		return
	}
	existing, _ := filepath.Glob(filepath.Join(goldenDir, "*.yaml"))
	for _, f := range existing {
		base := filepath.Base(f)
		if want[base] {
			continue
		}
		if *update {
			_ = os.Remove(f)
			continue
		}
		t.Errorf("golden file %s has no sample any more; rerun with -update", f)
	}
	if len(want) == 0 {
		t.Error("no RayCluster documents found in the samples")
	}
}
