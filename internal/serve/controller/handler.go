package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/config"
)

// maxConfigBytes bounds a PUT body.
const maxConfigBytes = 16 << 20

// shutdownTimeout bounds DELETE, which waits for every replica to stop.
const shutdownTimeout = 2 * time.Minute

// NewHandler returns the Serve REST handlers to mount on the dashboard at
// /api/serve/.
func NewHandler(c *Controller, log logr.Logger) http.Handler {
	h := &restHandler{c: c, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT "+dashboard.ServeApplicationsPath, h.put)
	mux.HandleFunc("GET "+dashboard.ServeApplicationsPath, h.get)
	mux.HandleFunc("DELETE "+dashboard.ServeApplicationsPath, h.delete)
	mux.HandleFunc("GET "+dashboard.ServeAutoscalingObservabilityPath, func(w http.ResponseWriter, _ *http.Request) {
		dashboard.WriteJSON(w, http.StatusOK, c.AutoscalingObservability())
	})
	return mux
}

type restHandler struct {
	c   *Controller
	log logr.Logger
}

func (h *restHandler) put(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxConfigBytes+1))
	if err != nil {
		dashboard.WriteText(w, http.StatusBadRequest, fmt.Sprintf("Reading the request body failed: %v", err))
		return
	}
	if len(raw) > maxConfigBytes {
		dashboard.WriteText(w, http.StatusBadRequest, fmt.Sprintf("The config exceeds %d bytes.", maxConfigBytes))
		return
	}
	parsed, err := config.Parse(raw)
	if err != nil {
		dashboard.WriteText(w, http.StatusBadRequest, err.Error())
		return
	}
	// Deploy fails only writing the checkpoint: the config is valid here.
	if err := h.c.Deploy(r.Context(), parsed); err != nil {
		dashboard.WriteText(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *restHandler) get(w http.ResponseWriter, r *http.Request) {
	apiType := r.URL.Query().Get("api_type")
	switch apiType {
	case "", "declarative", "imperative":
	default:
		dashboard.WriteText(w, http.StatusBadRequest, fmt.Sprintf("Invalid 'api_type' value: '%s'. Must be one of 'imperative', 'declarative'", apiType))
		return
	}
	d := h.c.Details()
	if apiType == "imperative" {
		// Every application here was deployed through the REST API.
		d.Applications = map[string]dashboard.ApplicationDetails{}
	}
	dashboard.WriteJSON(w, http.StatusOK, d)
}

func (h *restHandler) delete(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), shutdownTimeout)
	defer cancel()
	if err := h.c.Shutdown(ctx); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusServiceUnavailable
		}
		dashboard.WriteText(w, status, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}
