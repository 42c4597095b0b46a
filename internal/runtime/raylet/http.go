package raylet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// GCSCheck reports whether the control service is healthy. Worker nodes
// pass nil: they have no local control service.
type GCSCheck func(ctx context.Context) error

// Handler serves the agent port: the health endpoints KubeRay probes and
// the node's process logs (which the head's dashboard reads from here).
func Handler(logsDir string, gcsCheck GCSCheck) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/local_raylet_healthz", func(w http.ResponseWriter, _ *http.Request) {
		dashboard.WriteText(w, http.StatusOK, "success")
	})
	mux.HandleFunc("GET /api/healthz", func(w http.ResponseWriter, r *http.Request) {
		gcs := "gcs: success (no local gcs)"
		if gcsCheck != nil {
			if err := gcsCheck(r.Context()); err != nil {
				dashboard.WriteText(w, http.StatusServiceUnavailable, fmt.Sprintf("raylet: success\ngcs: Health check failed due to: %v", err))
				return
			}
			gcs = "gcs: success"
		}
		dashboard.WriteText(w, http.StatusOK, "raylet: success\n"+gcs)
	})
	mux.HandleFunc("GET /api/local_logs/{file}", func(w http.ResponseWriter, r *http.Request) {
		serveLog(w, r, logsDir)
	})
	return mux
}

// LogSizeHeader carries the size of the whole log file in log responses.
const LogSizeHeader = "X-Log-Size"

// serveLog writes the log file's bytes from ?offset= on. A file that does
// not exist yet is an empty log, since processes create theirs on start.
func serveLog(w http.ResponseWriter, r *http.Request, logsDir string) {
	name := r.PathValue("file")
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		dashboard.WriteText(w, http.StatusBadRequest, "invalid log file name")
		return
	}
	offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil && r.URL.Query().Get("offset") != "" || offset < 0 {
		dashboard.WriteText(w, http.StatusBadRequest, "offset must be a non-negative integer")
		return
	}
	f, err := os.Open(filepath.Join(logsDir, name))
	if os.IsNotExist(err) {
		w.Header().Set(LogSizeHeader, "0")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		dashboard.WriteText(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		dashboard.WriteText(w, http.StatusInternalServerError, err.Error())
		return
	}
	size := st.Size()
	w.Header().Set(LogSizeHeader, strconv.FormatInt(size, 10))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if offset < size {
		_, _ = io.Copy(w, io.NewSectionReader(f, offset, size-offset))
	}
}
