package pipenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestParse(t *testing.T) {
	s, err := Parse([]any{"b==1", "a"})
	if err != nil || strings.Join(s.Packages, ",") != "b==1,a" || s.PipCheck {
		t.Errorf("list form = %+v, %v", s, err)
	}
	s, err = Parse(map[string]any{"packages": []any{"a"}, "pip_check": true, "pip_version": ""})
	if err != nil || len(s.Packages) != 1 || !s.PipCheck {
		t.Errorf("dict form = %+v, %v", s, err)
	}
	if s, err := Parse(nil); err != nil || !s.Empty() {
		t.Errorf("nil = %+v, %v", s, err)
	}
	for _, bad := range []struct {
		v    any
		want string
	}{
		{"requirements.txt", "requirements file"},
		{[]any{"a", 3}, "runtime_env.pip must be a list of strings"},
		{[]any{" "}, "empty package name"},
		{map[string]any{"packages": []any{"a"}, "pip_version": "==23.0"}, "runtime_env.pip.pip_version (==23.0) is not supported"},
		{map[string]any{"packages": []any{"a"}, "pip_check": "yes"}, "pip_check must be a bool"},
		{map[string]any{"packages": []any{"a"}, "index": "x"}, `unknown field "index"`},
		{map[string]any{"pip_check": true}, "must name its packages"},
		{3, "must be a list of packages or a dict"},
	} {
		if _, err := Parse(bad.v); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%#v) = %v, want an error containing %q", bad.v, err, bad.want)
		}
	}
}

func TestHashIgnoresOrderButNotOptions(t *testing.T) {
	a := Spec{Packages: []string{"x", "y"}}
	b := Spec{Packages: []string{"y", "x"}}
	c := Spec{Packages: []string{"x", "y"}, PipCheck: true}
	if a.Hash() != b.Hash() {
		t.Error("the package order changed the hash")
	}
	if a.Hash() == c.Hash() {
		t.Error("pip_check did not change the hash")
	}
	if a.Hash() == (Spec{Packages: []string{"x"}}).Hash() {
		t.Error("a different package list has the same hash")
	}
}

// fakePython stands in for `python3 -m venv`: it counts its runs and lays
// out a venv whose bin/python is a script that "installs" by succeeding
// (or fails like pip when the package is named "missing").
func fakePython(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	venvPython := "#!/bin/sh\necho pip \"$@\"\nfor a in \"$@\"; do [ \"$a\" = missing ] && { echo 'ERROR: No matching distribution found for missing'; exit 1; }; done\nexit 0\n"
	script := "#!/bin/sh\n# fake python3: -m venv --system-site-packages DIR\necho x >> " + count + "\nmkdir -p \"$4/bin\"\ncat > \"$4/bin/python\" <<'PY'\n" + venvPython + "PY\nchmod +x \"$4/bin/python\"\n"
	path := filepath.Join(dir, "python3")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, count
}

func TestEnsureBuildsOnceUnderConcurrency(t *testing.T) {
	python, count := fakePython(t)
	m := &Manager{CacheDir: t.TempDir(), Python: python}
	spec := Spec{Packages: []string{"demo"}}
	var wg sync.WaitGroup
	dirs := make([]string, 6)
	errs := make([]error, 6)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = m.Ensure(context.Background(), spec, nil)
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != filepath.Join(m.CacheDir, spec.Hash()) {
			t.Errorf("Ensure %d = %q, %v", i, dirs[i], errs[i])
		}
	}
	raw, _ := os.ReadFile(count)
	if n := strings.Count(string(raw), "x"); n != 1 {
		t.Errorf("venv created %d times, want once", n)
	}
}

func TestEnsureFailureCarriesPipOutputAndIsNotCached(t *testing.T) {
	python, count := fakePython(t)
	m := &Manager{CacheDir: t.TempDir(), Python: python}
	var log strings.Builder
	_, err := m.Ensure(context.Background(), Spec{Packages: []string{"missing"}}, &log)
	if err == nil || !strings.Contains(err.Error(), "No matching distribution found for missing") {
		t.Fatalf("Ensure = %v, want pip's error", err)
	}
	if !strings.Contains(log.String(), "No matching distribution found for missing") {
		t.Errorf("pip's output did not reach the log: %q", log.String())
	}
	if _, err := m.Ensure(context.Background(), Spec{Packages: []string{"missing"}}, nil); err == nil {
		t.Fatal("a failed env was cached")
	}
	raw, _ := os.ReadFile(count)
	if n := strings.Count(string(raw), "x"); n != 2 {
		t.Errorf("venv created %d times, want a retry after the failure", n)
	}
}

func TestActivate(t *testing.T) {
	env := Activate([]string{"PATH=/usr/bin", "VIRTUAL_ENV=/old", "A=b"}, "/venv")
	got := strings.Join(env, " ")
	if got != "A=b PATH=/venv/bin:/usr/bin VIRTUAL_ENV=/venv" {
		t.Errorf("Activate = %q", got)
	}
}
