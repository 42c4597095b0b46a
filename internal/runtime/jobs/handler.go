package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"

	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// maxSubmitBody bounds a submit request body.
const maxSubmitBody = 8 << 20

// Handler serves the Jobs REST API under /api/jobs/.
type Handler struct {
	m        *Manager
	log      logr.Logger
	upgrader websocket.Upgrader
	mux      *http.ServeMux
}

// NewHandler returns the Jobs REST handler; mount it on the dashboard at
// "/api/jobs/" and "/api/jobs".
func NewHandler(m *Manager, log logr.Logger) *Handler {
	h := &Handler{
		m:   m,
		log: log,
		// The dashboard is reached through services and port-forwards under
		// any host name, so origins are not checked (Ray does not either).
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		mux:      http.NewServeMux(),
	}
	h.mux.HandleFunc("POST /api/jobs/{$}", h.submit)
	h.mux.HandleFunc("POST /api/jobs", h.submit)
	h.mux.HandleFunc("GET /api/jobs/{$}", h.list)
	h.mux.HandleFunc("GET /api/jobs", h.list)
	h.mux.HandleFunc("GET /api/jobs/{id}", h.get)
	h.mux.HandleFunc("DELETE /api/jobs/{id}", h.delete)
	h.mux.HandleFunc("POST /api/jobs/{id}/stop", h.stop)
	h.mux.HandleFunc("GET /api/jobs/{id}/logs", h.logs)
	h.mux.HandleFunc("GET /api/jobs/{id}/logs/tail", h.tail)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// writeError maps manager errors onto Ray's codes and text/plain bodies.
func (h *Handler) writeError(w http.ResponseWriter, id string, err error) {
	var bad *BadRequestError
	var dup *DuplicateError
	var nonTerm *NonTerminalError
	switch {
	case errors.As(err, &bad):
		dashboard.WriteText(w, http.StatusBadRequest, bad.Msg)
	case errors.Is(err, ErrNotFound):
		dashboard.WriteText(w, http.StatusNotFound, fmt.Sprintf("Job %s does not exist", id))
	case errors.As(err, &dup):
		dashboard.WriteText(w, http.StatusInternalServerError, dup.Error())
	case errors.As(err, &nonTerm):
		dashboard.WriteText(w, http.StatusInternalServerError, nonTerm.Error())
	default:
		dashboard.WriteText(w, http.StatusInternalServerError, err.Error())
	}
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSubmitBody+1))
	if err != nil {
		dashboard.WriteText(w, http.StatusBadRequest, fmt.Sprintf("Reading the request body: %v", err))
		return
	}
	if len(body) > maxSubmitBody {
		dashboard.WriteText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The job submit request exceeds %d bytes.", maxSubmitBody))
		return
	}
	req, err := ParseSubmitRequest(body)
	if err != nil {
		h.writeError(w, "", err)
		return
	}
	id, err := h.m.Submit(r.Context(), req)
	if err != nil {
		h.writeError(w, req.SubmissionID, err)
		return
	}
	dashboard.WriteJSON(w, http.StatusOK, dashboard.JobSubmitResponse{JobID: id, SubmissionID: id})
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	jobs, err := h.m.List(r.Context())
	if err != nil {
		h.writeError(w, "", err)
		return
	}
	dashboard.WriteJSON(w, http.StatusOK, jobs)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	job, err := h.m.Get(r.Context(), id)
	if err != nil {
		h.writeError(w, id, err)
		return
	}
	dashboard.WriteJSON(w, http.StatusOK, job)
}

func (h *Handler) stop(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stopped, err := h.m.Stop(r.Context(), id)
	if err != nil {
		h.writeError(w, id, err)
		return
	}
	dashboard.WriteJSON(w, http.StatusOK, dashboard.JobStopResponse{Stopped: stopped})
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.m.Delete(r.Context(), id); err != nil {
		h.writeError(w, id, err)
		return
	}
	dashboard.WriteJSON(w, http.StatusOK, dashboard.JobDeleteResponse{Deleted: true})
}

func (h *Handler) logs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	logs, err := h.m.Logs(r.Context(), id)
	if err != nil {
		h.writeError(w, id, err)
		return
	}
	dashboard.WriteJSON(w, http.StatusOK, dashboard.JobLogsResponse{Logs: logs})
}

// tail streams the job's log over a WebSocket: text frames of whole lines
// until the job is terminal and its log drained, then a normal (1000)
// close, which clients such as KubeRay's submitter rely on.
func (h *Handler) tail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := h.m.Get(r.Context(), id); err != nil {
		h.writeError(w, id, err)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered the client already.
		return
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Reading is needed to see the client's close and pings.
	go func() {
		defer cancel()
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()

	reason, err := h.pump(ctx, conn, id)
	if err != nil {
		h.log.V(1).Info("Log tail ended", "submissionID", id, "reason", err.Error())
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, err.Error()), time.Now().Add(time.Second))
		return
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason), time.Now().Add(time.Second))
	// Give the client a moment to answer the close before dropping TCP.
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

func (h *Handler) pump(ctx context.Context, conn *websocket.Conn, id string) (string, error) {
	var offset int64
	var partial []byte
	interval := h.m.LogPollInterval()
	for {
		data, terminal, located, err := h.m.ReadLogFrom(ctx, id, offset)
		switch {
		case errors.Is(err, ErrNotFound):
			return "job deleted", nil
		case err != nil && ctx.Err() != nil:
			return "", ctx.Err()
		case err != nil && terminal:
			// The node that ran the job is gone: nothing more to read.
			return "logs unavailable", nil
		case err != nil:
			h.log.V(1).Info("Reading job logs failed; retrying", "submissionID", id, "err", err.Error())
		}
		offset += int64(len(data))
		partial = append(partial, data...)
		if cut := bytes.LastIndexByte(partial, '\n'); cut >= 0 || terminal && len(partial) > 0 && len(data) == 0 {
			n := len(partial)
			if cut >= 0 && (!terminal || len(data) != 0) {
				n = cut + 1
			}
			if err := conn.WriteMessage(websocket.TextMessage, partial[:n]); err != nil {
				return "", err
			}
			partial = append([]byte(nil), partial[n:]...)
		}
		if terminal && (len(data) == 0 || !located) && len(partial) == 0 {
			return "job finished", nil
		}
		if len(data) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(interval):
		}
	}
}
