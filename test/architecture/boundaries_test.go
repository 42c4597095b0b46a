// Package architecture checks the import boundaries docs/architecture.md draws between the
// module's parts, over the real dependency graph `go list -deps` reports: the operator never
// links the Ray runtime or Serve, the runtime never links the operator, api/ stands alone, and
// test support never reaches a shipped binary.
package architecture

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/rayk8s/rayk8s"

// rule forbids packages under From (module-relative prefixes) from depending, directly or
// transitively, on packages under any of Deny, except those under Allow.
type rule struct {
	Name  string
	From  []string
	Deny  []string
	Allow []string
}

var rules = []rule{
	{
		Name: "api/ imports nothing of internal/",
		From: []string{"api"},
		Deny: []string{"internal"},
	},
	{
		Name: "the operator never links the Ray runtime, Serve or the local cluster",
		From: []string{"cmd/manager", "internal/operator", "internal/controller"},
		Deny: []string{"internal/runtime", "internal/serve", "internal/devcluster", "cmd/ray", "cmd/devcluster"},
	},
	{
		Name: "the Ray runtime and Serve never link the operator or the local cluster",
		From: []string{"cmd/ray", "internal/runtime", "internal/serve"},
		Deny: []string{"internal/operator", "internal/controller", "internal/devcluster", "cmd/manager", "cmd/devcluster"},
	},
	{
		Name: "the local cluster links neither the operator nor the runtime",
		From: []string{"cmd/devcluster", "internal/devcluster"},
		Deny: []string{"internal/operator", "internal/controller", "internal/runtime", "internal/serve"},
	},
	{
		Name:  "the dashboard wire contract, shared by both sides, depends on neither",
		From:  []string{"internal/dashboard"},
		Deny:  []string{"internal"},
		Allow: []string{"internal/dashboard"},
	},
	{
		Name: "shipped code never links test support",
		From: []string{"cmd", "internal/operator", "internal/controller", "internal/runtime", "internal/serve", "internal/dashboard", "internal/devcluster", "api"},
		Deny: []string{"internal/testsupport"},
	},
}

// under reports whether the module-relative package path p is prefix or inside it.
func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }

func underAny(p string, prefixes []string) bool {
	for _, prefix := range prefixes {
		if under(p, prefix) {
			return true
		}
	}
	return false
}

// violations lists "pkg -> dep (rule)" for every forbidden edge in deps, a map from each
// module-relative package to its module-relative (transitive) dependencies.
func violations(deps map[string][]string, rs []rule) []string {
	var out []string
	for pkg, ds := range deps {
		for _, r := range rs {
			if !underAny(pkg, r.From) {
				continue
			}
			for _, d := range ds {
				if underAny(d, r.Deny) && !underAny(d, r.Allow) {
					out = append(out, fmt.Sprintf("%s -> %s (%s)", pkg, d, r.Name))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// moduleDeps runs `go list -deps` over the module's non-test packages.
func moduleDeps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...")
	cmd.Dir = repoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	deps := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, ok := strings.CutPrefix(fields[0], module+"/")
		if !ok {
			continue
		}
		var ours []string
		for _, d := range fields[1:] {
			if rel, ok := strings.CutPrefix(d, module+"/"); ok {
				ours = append(ours, rel)
			}
		}
		deps[pkg] = ours
	}
	if len(deps) < 20 {
		t.Fatalf("go list found only %d packages of %s; is the working directory the module?", len(deps), module)
	}
	return deps
}

func TestImportBoundaries(t *testing.T) {
	deps := moduleDeps(t)
	// Each rule must govern at least one real package, so a rename cannot silently empty it.
	for _, r := range rules {
		found := false
		for pkg := range deps {
			if underAny(pkg, r.From) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("rule %q matches no package: its From list is stale", r.Name)
		}
	}
	if v := violations(deps, rules); len(v) > 0 {
		t.Errorf("forbidden imports (see docs/architecture.md):\n  %s", strings.Join(v, "\n  "))
	}
}

// TestRulesCatchViolations feeds the rules a graph with one forbidden edge of each kind, so a
// rule that stops matching fails here rather than passing everything.
func TestRulesCatchViolations(t *testing.T) {
	deps := map[string][]string{
		"api/v1":                        {"internal/operator/features"},
		"internal/controller/rayjob":    {"internal/dashboard", "internal/serve/router"},
		"internal/runtime/node":         {"internal/dashboard", "internal/controller/raycluster/resources"},
		"internal/devcluster/cluster":   {"internal/runtime/gcs"},
		"internal/dashboard":            {"internal/runtime/gcs"},
		"cmd/manager":                   {"internal/operator", "internal/testsupport/testenv"},
		"internal/serve/proxy":          {"internal/dashboard", "internal/serve/router"},
		"internal/testsupport/testenv":  {"api/v1"},
		"internal/operator/operatorenv": {},
	}
	got := violations(deps, rules)
	want := []string{
		"api/v1 -> internal/operator/features (api/ imports nothing of internal/)",
		"cmd/manager -> internal/testsupport/testenv (shipped code never links test support)",
		"internal/controller/rayjob -> internal/serve/router (the operator never links the Ray runtime, Serve or the local cluster)",
		"internal/dashboard -> internal/runtime/gcs (the dashboard wire contract, shared by both sides, depends on neither)",
		"internal/devcluster/cluster -> internal/runtime/gcs (the local cluster links neither the operator nor the runtime)",
		"internal/runtime/node -> internal/controller/raycluster/resources (the Ray runtime and Serve never link the operator or the local cluster)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
