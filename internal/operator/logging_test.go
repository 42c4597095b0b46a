package operator

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoggerWritesFile(t *testing.T) {
	for _, enc := range []string{"json", "console"} {
		t.Run(enc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "operator.log")
			var stdout bytes.Buffer
			o := Options{LogEncoder: "json", LogLevel: "info", LogFilePath: path, LogFileEncoder: enc}
			log, closeLog, err := NewLogger(o, &stdout)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("Reconciled a cluster", "cluster", "rc")
			log.V(1).Info("Debug line below the level")
			if err := closeLog(); err != nil {
				t.Fatal(err)
			}
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for what, out := range map[string]string{"stdout": stdout.String(), "file": string(file)} {
				if !strings.Contains(out, "Reconciled a cluster") || strings.Contains(out, "Debug line") {
					t.Errorf("%s = %q, want the info line only", what, out)
				}
			}
			line := strings.TrimSpace(string(file))
			isJSON := json.Valid([]byte(line))
			if isJSON != (enc == "json") {
				t.Errorf("file encoder %s wrote %q", enc, line)
			}
		})
	}
}

func TestLoggerWithoutFile(t *testing.T) {
	var stdout bytes.Buffer
	log, closeLog, err := NewLogger(Options{LogEncoder: "console", LogLevel: "info"}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("Hello")
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "Hello") || json.Valid(bytes.TrimSpace(stdout.Bytes())) {
		t.Errorf("console output = %q", stdout.String())
	}
}

func TestLoggerUnwritableFile(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path below a regular file can never be created, whoever runs the test.
	_, _, err := NewLogger(Options{LogEncoder: "json", LogLevel: "info", LogFilePath: filepath.Join(blocker, "op.log"), LogFileEncoder: "json"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--log-file-path") {
		t.Errorf("error = %v, want one naming --log-file-path", err)
	}
}
