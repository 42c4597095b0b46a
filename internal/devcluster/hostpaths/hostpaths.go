// Package hostpaths creates the host directories and files a container's bind mounts need as
// targets (a mount target must exist) and records each one it created, so `devcluster down`
// can remove them again once no container runs. Mounts themselves live only in the
// containers' private mount namespaces.
package hostpaths

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Tracker records created paths in a file, one per line.
type Tracker struct {
	mu   sync.Mutex
	file string
}

// NewTracker records into file.
func NewTracker(file string) *Tracker { return &Tracker{file: file} }

// Ensure makes path exist, as a directory when dir is true and as an empty file otherwise,
// creating missing parents; everything it creates is recorded.
func (t *Tracker) Ensure(path string, dir bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	path = filepath.Clean(path)
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	var created []string
	defer func() { _ = t.record(created) }()
	var missing []string
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		}
		missing = append(missing, p)
		if p == "/" || p == "." {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		created = append(created, missing[i])
	}
	if dir {
		if err := os.Mkdir(path, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	} else {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if f != nil {
			_ = f.Close()
		}
	}
	created = append(created, path)
	return nil
}

func (t *Tracker) record(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(t.file), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(t.file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(strings.Join(paths, "\n") + "\n")
	return err
}

// RemoveAll removes every recorded path that is an empty directory or an empty file, deepest
// first, and then the record itself. Paths that gained content are kept and reported.
func RemoveAll(file string) error {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var paths []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p := strings.TrimSpace(sc.Text()); p != "" && !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	_ = f.Close()
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	var errs []error
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if !fi.IsDir() && fi.Size() > 0 {
			errs = append(errs, fmt.Errorf("kept %s: not empty", p))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("kept %s: %w", p, err))
		}
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
