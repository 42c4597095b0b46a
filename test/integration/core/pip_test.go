package core_test

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// TestRuntimeEnvPip runs jobs, tasks and actors whose runtime_env pip
// installs a wheel the test writes into a local directory: these machines
// reach no Python index, so pip reads PIP_FIND_LINKS with PIP_NO_INDEX, as
// the node's environment configures it. One head shares one venv cache, so
// the venv is built once.
func TestRuntimeEnvPip(t *testing.T) {
	wheels := t.TempDir()
	writeWheel(t, wheels, "rayk8s_pipdemo", "1.0", "VALUE = 'from the wheel'\n")
	h := startHeadWithEnv(t, 2, "127.0.0.1", "PIP_FIND_LINKS="+wheels, "PIP_NO_INDEX=1")
	venvs := filepath.Join(h.tmp, "ray", "runtime_resources", "pip")

	t.Run("job", func(t *testing.T) {
		dir := t.TempDir()
		script, err := os.ReadFile(filepath.Join("testdata", "pipjob.py"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "pipjob.py"), script, 0o644); err != nil {
			t.Fatal(err)
		}
		out, exit := rayproc.Run(t, rayBin, h.env, "job", "submit", "--address", h.dashURL, "--working-dir", dir,
			"--submission-id", "pip-ok", "--runtime-env-json", `{"pip": ["rayk8s-pipdemo"]}`, "--", "python", "pipjob.py")
		if exit != 0 {
			t.Fatalf("ray job submit exited %d:\n%s", exit, out)
		}
		if st := jobStatus(t, h, "pip-ok"); st.Status != "SUCCEEDED" {
			t.Errorf("job status = %s (%s), want SUCCEEDED", st.Status, st.Message)
		}
		// Every interpreter of the job is the venv's, and imports the package from its site-packages.
		for _, prefix := range []string{"driver prefix ", "driver imports ", "task imports ", "task python ", "actor imports "} {
			line := lineWith(out, prefix)
			if !strings.Contains(line, venvs+"/") {
				t.Errorf("%q is not in the venv cache %s; output:\n%s", line, venvs, out)
			}
		}
		if !strings.Contains(lineWith(out, "driver imports "), "site-packages/rayk8s_pipdemo/__init__.py from the wheel") {
			t.Errorf("the driver did not import the wheel's module; output:\n%s", out)
		}
	})

	t.Run("job with a package no index has", func(t *testing.T) {
		out, exit := rayproc.Run(t, rayBin, h.env, "job", "submit", "--address", h.dashURL, "--submission-id", "pip-missing",
			"--runtime-env-json", `{"pip": ["rayk8s-no-such-package"]}`, "--", "python", "-c", "print('ran')")
		if exit != 1 {
			t.Errorf("ray job submit exited %d, want 1:\n%s", exit, out)
		}
		st := jobStatus(t, h, "pip-missing")
		if st.Status != "FAILED" || st.ErrorType != "RUNTIME_ENV_SETUP_FAILURE" {
			t.Errorf("job = %s/%s, want FAILED/RUNTIME_ENV_SETUP_FAILURE", st.Status, st.ErrorType)
		}
		if !strings.Contains(st.Message, "No matching distribution found for rayk8s-no-such-package") {
			t.Errorf("job message lacks pip's error:\n%s", st.Message)
		}
		if strings.Contains(out, "\nran\n") {
			t.Errorf("the entrypoint ran without its env:\n%s", out)
		}
	})

	t.Run("tasks and actors", func(t *testing.T) {
		out := runPython(t, h.env, false, "piptask.py")
		wantLines(t, out, "driver lacks the package", "plain task ModuleNotFoundError", "missing package: RuntimeEnvSetupError")
		for _, prefix := range []string{"task imports ", "actor imports "} {
			if line := lineWith(out, prefix); !strings.Contains(line, venvs+"/") {
				t.Errorf("%q is not in the venv cache %s; output:\n%s", line, venvs, out)
			}
		}
		if !strings.Contains(out, "No matching distribution found for rayk8s-no-such-package") {
			t.Errorf("the task's error lacks pip's output:\n%s", out)
		}
	})

	// One venv per package list: the job's and the tasks' lists are the same.
	ready, _ := filepath.Glob(filepath.Join(venvs, "*", ".rayk8s-ready"))
	if len(ready) != 1 {
		t.Errorf("venvs built = %v, want exactly one", ready)
	}
}

type jobState struct {
	Status    string `json:"status"`
	Message   string `json:"message"`
	ErrorType string `json:"error_type"`
}

func jobStatus(t *testing.T, h *head, id string) jobState {
	t.Helper()
	resp, err := http.Get(h.dashURL + "/api/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st jobState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding job %s: %v", id, err)
	}
	return st
}

// lineWith is the first line of out that starts with prefix ("" if none).
func lineWith(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// writeWheel writes a pure-Python wheel of one module into dir: a zip
// with the module and the dist-info's METADATA, WHEEL and RECORD.
func writeWheel(t *testing.T, dir, name, version, code string) {
	t.Helper()
	distInfo := name + "-" + version + ".dist-info"
	files := []struct{ path, body string }{
		{name + "/__init__.py", code},
		{distInfo + "/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", strings.ReplaceAll(name, "_", "-"), version)},
		{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: rayk8s-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	f, err := os.Create(filepath.Join(dir, name+"-"+version+"-py3-none-any.whl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	var record strings.Builder
	for _, file := range files {
		w, err := zw.Create(file.path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(file.body)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(file.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", file.path, base64.RawURLEncoding.EncodeToString(sum[:]), len(file.body))
	}
	record.WriteString(distInfo + "/RECORD,,\n")
	w, err := zw.Create(distInfo + "/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(record.String())); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
