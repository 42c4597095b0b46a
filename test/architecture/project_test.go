package architecture

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// kubebuilderProject is the part of kubebuilder's PROJECT file (format version 3) this test reads.
type kubebuilderProject struct {
	Version     string   `json:"version"`
	Domain      string   `json:"domain"`
	Layout      []string `json:"layout"`
	ProjectName string   `json:"projectName"`
	Repo        string   `json:"repo"`
	Resources   []struct {
		API *struct {
			CRDVersion string `json:"crdVersion"`
			Namespaced bool   `json:"namespaced"`
		} `json:"api"`
		Controller bool   `json:"controller"`
		Domain     string `json:"domain"`
		Group      string `json:"group"`
		Kind       string `json:"kind"`
		Path       string `json:"path"`
		Version    string `json:"version"`
	} `json:"resources"`
}

// TestProjectFileListsEveryKind keeps the kubebuilder PROJECT file true: every kind api/v1
// registers has a resource entry with its API and controller, and every entry names a registered
// kind whose controller package exists.
func TestProjectFileListsEveryKind(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "PROJECT"))
	if err != nil {
		t.Fatalf("reading PROJECT: %v", err)
	}
	var p kubebuilderProject
	if err := yaml.Unmarshal(raw, &p); err != nil {
		t.Fatalf("parsing PROJECT: %v", err)
	}
	if p.Version != "3" || p.Domain != "ray.io" || p.Repo != module || p.ProjectName != "rayk8s" ||
		len(p.Layout) != 1 || p.Layout[0] != "go.kubebuilder.io/v4" {
		t.Errorf("PROJECT header = version %q, domain %q, repo %q, projectName %q, layout %v; want 3, ray.io, %s, rayk8s, [go.kubebuilder.io/v4]",
			p.Version, p.Domain, p.Repo, p.ProjectName, p.Layout, module)
	}

	scheme := runtime.NewScheme()
	if err := rayv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for kind, typ := range scheme.KnownTypes(rayv1.GroupVersion) {
		// AddToGroupVersion also registers metav1's WatchEvent and options under the group.
		if typ.PkgPath() == module+"/api/v1" && !strings.HasSuffix(kind, "List") {
			registered[kind] = true
		}
	}
	if len(registered) == 0 {
		t.Fatal("api/v1 registers no kinds; the test proves nothing")
	}

	listed := map[string]bool{}
	for _, r := range p.Resources {
		if listed[r.Kind] {
			t.Errorf("PROJECT lists %s twice", r.Kind)
		}
		listed[r.Kind] = true
		if !registered[r.Kind] {
			t.Errorf("PROJECT lists %s, which api/v1 does not register", r.Kind)
			continue
		}
		if group := strings.Trim(r.Group+"."+r.Domain, "."); group != rayv1.GroupVersion.Group || r.Version != rayv1.GroupVersion.Version {
			t.Errorf("PROJECT %s: group %q, domain %q, version %q; want the group/version %s", r.Kind, r.Group, r.Domain, r.Version, rayv1.GroupVersion)
		}
		if r.Path != module+"/api/v1" {
			t.Errorf("PROJECT %s: path = %q, want %s/api/v1", r.Kind, r.Path, module)
		}
		if r.API == nil || r.API.CRDVersion != "v1" || !r.API.Namespaced {
			t.Errorf("PROJECT %s: api = %+v, want crdVersion v1, namespaced", r.Kind, r.API)
		}
		if !r.Controller {
			t.Errorf("PROJECT %s: controller = false, but every kind has a controller", r.Kind)
		}
		dir := filepath.Join(root, "internal", "controller", strings.ToLower(r.Kind))
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("PROJECT %s: controller package %s missing: %v", r.Kind, dir, err)
		}
	}
	var missing []string
	for kind := range registered {
		if !listed[kind] {
			missing = append(missing, kind)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("api/v1 registers %v, which PROJECT does not list", missing)
	}
}
