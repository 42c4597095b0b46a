package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/go-logr/logr"
)

// ServerOptions configures the dashboard head server.
type ServerOptions struct {
	SessionName string
	// GCSCheck reports whether the control service answers.
	GCSCheck func(ctx context.Context) error
	// AuthToken, when set, is required on every route but HealthPaths.
	AuthToken string
	Logger    logr.Logger
}

// Server is the dashboard's HTTP mux. It serves /api/version and
// /api/gcs_healthz itself; feature handlers are mounted with Handle: the job
// manager at /api/jobs/, the Serve controller at /api/serve/. With an
// AuthToken every route but the health checks requires it.
type Server struct {
	opts    ServerOptions
	mux     *http.ServeMux
	handler http.Handler
}

// NewServer returns a Server with the built-in routes registered.
func NewServer(opts ServerOptions) *Server {
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.handler = s.mux
	if opts.AuthToken != "" {
		s.handler = RequireToken(opts.AuthToken, HealthPaths, s.mux)
	}
	s.mux.HandleFunc("GET /api/version", s.version)
	// The Serve module mirrors the version here; the `serve` CLI reads it.
	s.mux.HandleFunc("GET /api/ray/version", s.version)
	s.mux.HandleFunc("GET /api/gcs_healthz", s.gcsHealthz)
	return s
}

// Handle mounts h at pattern (net/http ServeMux syntax).
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, VersionResponse{
		Version:     JobsAPIVersion,
		RayVersion:  RayVersion,
		RayCommit:   "rayk8s",
		SessionName: s.opts.SessionName,
	})
}

func (s *Server) gcsHealthz(w http.ResponseWriter, r *http.Request) {
	if s.opts.GCSCheck != nil {
		if err := s.opts.GCSCheck(r.Context()); err != nil {
			WriteText(w, http.StatusServiceUnavailable, fmt.Sprintf("Health check failed: %v", err))
			return
		}
	}
	// Ray answers with this content type; probes only grep for "success".
	w.Header().Set("Content-Type", "application/text")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "success")
}

// WriteJSON writes v as a JSON answer.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		WriteText(w, http.StatusInternalServerError, fmt.Sprintf("encoding response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(raw)
}

// WriteText writes a text/plain answer; Ray's errors are always plain text.
func WriteText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}
