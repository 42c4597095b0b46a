// Package pipenv builds the virtualenvs of runtime_env "pip": one venv per
// distinct package list and pip options, over the system site packages (so
// Debian's packages and the ray package stay importable), with packages
// installed by the venv's own pip from whatever index the node's
// environment configures (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, ...).
// Venvs are cached on disk by a hash of the spec and shared by every
// process of the node; a lock file keeps concurrent creators from racing.
package pipenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// SpecEnv carries a process's pip Spec (JSON) in its ProcessSpec env; the
// node's process manager builds the venv before it starts the process.
const SpecEnv = "RAYK8S_RUNTIME_ENV_PIP"

// readyFile marks a venv whose packages installed completely.
const readyFile = ".rayk8s-ready"

// outputTailBytes bounds how much of pip's output an error carries.
const outputTailBytes = 8000

// Spec is a normalised runtime_env "pip" value.
type Spec struct {
	Packages []string `json:"packages"`
	PipCheck bool     `json:"pip_check,omitempty"`
}

// Empty reports whether the spec installs nothing.
func (s Spec) Empty() bool { return len(s.Packages) == 0 }

// Hash identifies the venv of s: the sorted package list and the options.
func (s Spec) Hash() string {
	pkgs := slices.Clone(s.Packages)
	slices.Sort(pkgs)
	raw, _ := json.Marshal(Spec{Packages: pkgs, PipCheck: s.PipCheck})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:32]
}

// JSON encodes s for SpecEnv.
func (s Spec) JSON() string {
	raw, _ := json.Marshal(s)
	return string(raw)
}

// Parse reads a runtime_env "pip" value as Ray accepts it: a list of
// requirement strings, or {"packages": [...], "pip_check": bool,
// "pip_version": str}. A pip_version is refused: pinning pip needs an index
// that serves pip, and the venv's pip is the one the system ships.
func Parse(v any) (Spec, error) {
	switch t := v.(type) {
	case nil:
		return Spec{}, nil
	case []any:
		pkgs, err := packages(t, "runtime_env.pip")
		return Spec{Packages: pkgs}, err
	case []string:
		return Spec{Packages: slices.Clone(t)}, validate(t, "runtime_env.pip")
	case string:
		return Spec{}, fmt.Errorf("runtime_env.pip as a requirements file (%q) is not supported by this runtime; give the list of packages", t)
	case map[string]any:
		var s Spec
		for k, e := range t {
			switch k {
			case "packages":
				list, ok := e.([]any)
				if !ok {
					return Spec{}, fmt.Errorf("runtime_env.pip.packages must be a list of strings, got %T", e)
				}
				pkgs, err := packages(list, "runtime_env.pip.packages")
				if err != nil {
					return Spec{}, err
				}
				s.Packages = pkgs
			case "pip_check":
				b, ok := e.(bool)
				if !ok {
					return Spec{}, fmt.Errorf("runtime_env.pip.pip_check must be a bool, got %T", e)
				}
				s.PipCheck = b
			case "pip_version":
				if e == nil || e == "" {
					continue
				}
				return Spec{}, fmt.Errorf("runtime_env.pip.pip_version (%v) is not supported by this runtime: venvs use the pip the system ships", e)
			default:
				return Spec{}, fmt.Errorf("runtime_env.pip has the unknown field %q; expected packages, pip_check or pip_version", k)
			}
		}
		if _, ok := t["packages"]; !ok {
			return Spec{}, errors.New("runtime_env.pip must name its packages (\"packages\": [...])")
		}
		return s, nil
	}
	return Spec{}, fmt.Errorf("runtime_env.pip must be a list of packages or a dict, got %T", v)
}

func packages(list []any, field string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s must be a list of strings; %v is a %T", field, e, e)
		}
		out = append(out, s)
	}
	return out, validate(out, field)
}

func validate(pkgs []string, field string) error {
	for _, p := range pkgs {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("%s has an empty package name", field)
		}
	}
	return nil
}

// Manager creates and caches venvs under CacheDir.
type Manager struct {
	// CacheDir holds one venv per spec hash.
	CacheDir string
	// Python creates the venvs; its site packages show through.
	Python string
}

// Ensure returns the directory of s's venv, creating it when it is not
// cached. pip's output goes to out as well as into the error on failure.
func (m *Manager) Ensure(ctx context.Context, s Spec, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	dir := filepath.Join(m.CacheDir, s.Hash())
	if ready(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(m.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("creating the pip env cache %s: %w", m.CacheDir, err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("opening the lock of pip env %s: %w", dir, err)
	}
	defer lock.Close()
	// flock serialises creators across processes of the node, and the
	// kernel drops it if a creator dies.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking pip env %s: %w", dir, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if ready(dir) {
		return dir, nil
	}
	// A half-built venv (a creator that failed or died) starts over.
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("removing the incomplete pip env %s: %w", dir, err)
	}
	python := m.Python
	if python == "" {
		// Debian's interpreter, where another python3 may come first on PATH.
		python = "python3"
		if _, err := os.Stat("/usr/bin/python3"); err == nil {
			python = "/usr/bin/python3"
		}
	}
	if err := run(ctx, out, python, "-m", "venv", "--system-site-packages", dir); err != nil {
		return "", fmt.Errorf("creating a virtualenv with %s -m venv: %w", python, err)
	}
	pip := []string{"-m", "pip", "install", "--disable-pip-version-check", "--no-input"}
	if err := run(ctx, out, filepath.Join(dir, "bin", "python"), append(pip, s.Packages...)...); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("pip install %s: %w", strings.Join(s.Packages, " "), err)
	}
	if s.PipCheck {
		if err := run(ctx, out, filepath.Join(dir, "bin", "python"), "-m", "pip", "check", "--disable-pip-version-check"); err != nil {
			_ = os.RemoveAll(dir)
			return "", fmt.Errorf("pip check: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, readyFile), []byte(s.JSON()), 0o644); err != nil {
		return "", fmt.Errorf("marking pip env %s ready: %w", dir, err)
	}
	return dir, nil
}

// Python is the interpreter of the venv at dir.
func Python(dir string) string { return filepath.Join(dir, "bin", "python") }

func ready(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, readyFile))
	return err == nil
}

// run runs a command, copying its output to out, and on failure returns an
// error carrying the tail of that output (pip says why it failed there).
func run(ctx context.Context, out io.Writer, name string, args ...string) error {
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = io.MultiWriter(out, &buf)
	cmd.Stderr = cmd.Stdout
	// Variables of an enclosing venv would point pip at the wrong prefix.
	cmd.Env = withoutVenv(os.Environ())
	if err := cmd.Run(); err != nil {
		tail := buf.Bytes()
		if len(tail) > outputTailBytes {
			tail = tail[len(tail)-outputTailBytes:]
		}
		return fmt.Errorf("%w:\n%s", err, strings.TrimSpace(string(tail)))
	}
	return nil
}

func withoutVenv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, "VIRTUAL_ENV=") || strings.HasPrefix(kv, "PYTHONHOME=") || strings.HasPrefix(kv, "PIP_REQUIRE_VIRTUALENV=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Activate returns env (KEY=VALUE entries) with the venv at dir first on
// PATH and VIRTUAL_ENV set, as `source bin/activate` would leave it.
func Activate(env []string, dir string) []string {
	out := make([]string, 0, len(env)+2)
	path := os.Getenv("PATH")
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "PATH="):
			path = strings.TrimPrefix(kv, "PATH=")
		case strings.HasPrefix(kv, "VIRTUAL_ENV="), strings.HasPrefix(kv, "PYTHONHOME="):
		default:
			out = append(out, kv)
		}
	}
	bin := filepath.Join(dir, "bin")
	if path == "" {
		path = bin
	} else {
		path = bin + ":" + path
	}
	return append(out, "PATH="+path, "VIRTUAL_ENV="+dir)
}
