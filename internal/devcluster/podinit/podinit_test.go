package podinit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"manager", "ray"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := bin + ":" + other
	cases := map[string]string{
		"/manager":            filepath.Join(bin, "manager"),
		"/usr/local/bin/ray":  filepath.Join(bin, "ray"),
		"ray":                 filepath.Join(bin, "ray"),
		"tool":                filepath.Join(other, "tool"),
		"/bin/sh":             "/bin/sh",
		"./relative/thing.sh": "./relative/thing.sh",
	}
	for in, want := range cases {
		got, err := Resolve(in, bin, path)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Resolve("missing", bin, path); err == nil {
		t.Error("Resolve(missing) succeeded")
	}
	if _, err := Resolve("", bin, path); err == nil {
		t.Error("Resolve(\"\") succeeded")
	}
}
