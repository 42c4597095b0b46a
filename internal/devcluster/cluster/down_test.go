package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

// Down never deletes a directory that is not a devcluster state directory.
func TestDownLeavesForeignDirectoriesAlone(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious.txt")
	if err := os.WriteFile(precious, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Down(dir, logr.Discard())
	if err == nil || !strings.Contains(err.Error(), "not a devcluster state directory") {
		t.Fatalf("Down of a foreign directory: err = %v, want a refusal", err)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Fatalf("Down deleted a file it does not own: %v", err)
	}

	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Down(empty, logr.Discard()); err != nil {
		t.Fatalf("Down of an empty directory: %v", err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Fatalf("an empty state directory is left: %v", err)
	}
	if err := Down(filepath.Join(dir, "missing"), logr.Discard()); err != nil {
		t.Fatalf("Down of a missing directory: %v", err)
	}
}
