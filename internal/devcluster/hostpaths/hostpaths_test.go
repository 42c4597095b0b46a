package hostpaths

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureAndRemoveAll(t *testing.T) {
	root := t.TempDir()
	record := filepath.Join(root, "state", "created")
	tr := NewTracker(record)
	dir := filepath.Join(root, "a", "b", "c")
	file := filepath.Join(root, "a", "f.conf")
	if err := tr.Ensure(dir, true); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(file, false); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(dir, true); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("dir not created: %v", err)
	}
	keep := filepath.Join(root, "a", "b", "kept.txt")
	if err := os.WriteFile(keep, []byte("user data"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := RemoveAll(record)
	if err == nil {
		t.Error("RemoveAll reported nothing although a/b holds a file it did not create")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed", dir)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("%s not removed", file)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file it did not create was removed: %v", err)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Error("record not removed")
	}
}
