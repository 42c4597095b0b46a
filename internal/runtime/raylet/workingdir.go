package raylet

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// maxArchiveBytes bounds a downloaded working_dir archive.
const maxArchiveBytes = 512 << 20

// PackageFetcher returns the bytes of a package stored in the cluster, for
// working_dir URIs such as gcs://_ray_pkg_<hash>.zip that `ray job submit
// --working-dir <local dir>` uploads.
type PackageFetcher func(ctx context.Context, uri string) ([]byte, error)

// WorkingDirResolver turns a runtime_env working_dir into a local directory:
// local paths are used as they are, zip archives behind http(s) or gcs URIs
// are downloaded once and extracted under CacheDir.
type WorkingDirResolver struct {
	CacheDir     string
	HTTPClient   *http.Client
	FetchPackage PackageFetcher

	mu sync.Mutex
}

// Resolve returns the directory to run in. An empty working_dir resolves to
// the agent's own working directory.
func (r *WorkingDirResolver) Resolve(ctx context.Context, workingDir string) (string, error) {
	if workingDir == "" {
		return "", nil
	}
	u, err := url.Parse(workingDir)
	if err != nil || u.Scheme == "" || u.Scheme == "file" {
		path := workingDir
		if err == nil && u.Scheme == "file" {
			path = u.Path
		}
		st, statErr := os.Stat(path)
		if statErr != nil {
			return "", fmt.Errorf("working_dir %q: %w", workingDir, statErr)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("working_dir %q is not a directory", workingDir)
		}
		return filepath.Abs(path)
	}

	// One resolution at a time keeps two processes with the same URI from
	// extracting over each other.
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := sha256.Sum256([]byte(workingDir))
	dest := filepath.Join(r.CacheDir, "working_dir_files", hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dest, ".complete")); err == nil {
		return archiveRoot(dest)
	}
	var data []byte
	switch u.Scheme {
	case "http", "https":
		data, err = r.download(ctx, workingDir)
	case "gcs":
		if r.FetchPackage == nil {
			return "", fmt.Errorf("working_dir %q: no package store configured", workingDir)
		}
		data, err = r.FetchPackage(ctx, workingDir)
	default:
		return "", fmt.Errorf("working_dir %q: unsupported URI scheme %q", workingDir, u.Scheme)
	}
	if err != nil {
		return "", err
	}
	_ = os.RemoveAll(dest)
	if err := Unzip(data, dest); err != nil {
		return "", fmt.Errorf("extracting working_dir %q: %w", workingDir, err)
	}
	if err := os.WriteFile(filepath.Join(dest, ".complete"), nil, 0o644); err != nil {
		return "", fmt.Errorf("marking working_dir %q extracted: %w", workingDir, err)
	}
	return archiveRoot(dest)
}

func (r *WorkingDirResolver) download(ctx context.Context, uri string) ([]byte, error) {
	client := r.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("working_dir %q: %w", uri, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading working_dir %q: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("downloading working_dir %q: HTTP %d", uri, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxArchiveBytes+1))
	if err != nil {
		return nil, fmt.Errorf("downloading working_dir %q: %w", uri, err)
	}
	if len(data) > maxArchiveBytes {
		return nil, fmt.Errorf("working_dir %q is larger than %d bytes", uri, maxArchiveBytes)
	}
	return data, nil
}

// archiveRoot returns the single top-level directory of an extracted
// archive when there is exactly one (as in GitHub archives), else dir.
func archiveRoot(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("reading extracted working_dir: %w", err)
	}
	var visible []os.DirEntry
	for _, e := range entries {
		if e.Name() != ".complete" {
			visible = append(visible, e)
		}
	}
	if len(visible) == 1 && visible[0].IsDir() {
		return filepath.Join(dir, visible[0].Name()), nil
	}
	return dir, nil
}

// Unzip extracts a zip archive into dest, refusing entries that would land
// outside it.
func Unzip(data []byte, dest string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("reading zip: %w", err)
	}
	root, err := filepath.Abs(dest)
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		target := filepath.Join(root, f.Name)
		if target != root && !strings.HasPrefix(target, root+string(os.PathSeparator)) {
			return fmt.Errorf("zip entry %q escapes the destination", f.Name)
		}
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := extractFile(f, target); err != nil {
			return err
		}
	}
	return nil
}

func extractFile(f *zip.File, target string) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("opening zip entry %q: %w", f.Name, err)
	}
	defer rc.Close()
	mode := f.Mode().Perm()
	if mode == 0 {
		mode = 0o644
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("creating %q: %w", target, err)
	}
	if _, err := io.Copy(out, io.LimitReader(rc, maxArchiveBytes)); err != nil {
		out.Close()
		return fmt.Errorf("writing %q: %w", target, err)
	}
	return out.Close()
}
