package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
)

// Objects move between nodes on their own streamed call rather than as one
// corewire message: the owner writes the value in chunks as the connection
// takes them, and the fetching node reads it straight into the one buffer
// its store keeps, sized from Content-Length up front.
const (
	objectDataOp = "object_data"
	// transferChunk bounds each write, so a slow reader holds back the
	// writer instead of the whole value queueing in socket buffers.
	transferChunk = 1 << 20
	// Headers of an object_data response.
	hdrObjectIsError = "X-Rayk8s-Object-Error"
	hdrErrorType     = "X-Rayk8s-Error-Type"
)

// serveObjectData streams a value held here to another node once it exists.
func (a *Agent) serveObjectData(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		http.Error(w, "the object_data call needs an id query parameter", http.StatusBadRequest)
		return
	}
	fail := func(err error) {
		typ := "ObjectLostError"
		var re *corewire.RemoteError
		if errors.As(err, &re) && re.Type != "" {
			typ = re.Type
		}
		w.Header().Set(hdrErrorType, typ)
		http.Error(w, strings.ReplaceAll(err.Error(), "\n", " "), http.StatusConflict)
	}
	if err := a.checkKnown(id, ""); err != nil {
		fail(err)
		return
	}
	if err := a.store.WaitAll(r.Context(), []string{id}); err != nil {
		fail(err)
		return
	}
	obj, err := a.store.Open(id)
	if err != nil {
		fail(errorf("ObjectLostError", "Object %s is lost: its job has exited", id))
		return
	}
	// The value stays pinned in memory, or its file open, until written out.
	defer func() { _ = obj.Close() }()
	w.Header().Set(hdrObjectIsError, strconv.FormatBool(obj.IsErr))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, transferChunk)
	_, _ = io.CopyBuffer(onlyWriter{w}, onlyReader{obj}, buf)
}

// onlyWriter and onlyReader hide ReadFrom and WriteTo, so that
// io.CopyBuffer moves the value in transferChunk pieces.
type (
	onlyWriter struct{ io.Writer }
	onlyReader struct{ io.Reader }
)

// fetchObject streams object id from nodeID's agent; isErr reports whether
// the value is an error object.
func (a *Agent) fetchObject(ctx context.Context, nodeID, id string) (data []byte, isErr bool, err error) {
	addr, err := a.peers.addr(ctx, nodeID)
	if err != nil {
		return nil, false, err
	}
	u := "http://" + addr + HTTPPath + objectDataOp + "?id=" + url.QueryEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := a.peers.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("fetching object %s from node %s: %w", id, nodeID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, false, &corewire.RemoteError{Type: resp.Header.Get(hdrErrorType), Message: strings.TrimSpace(string(msg))}
	}
	if resp.ContentLength < 0 {
		return nil, false, fmt.Errorf("fetching object %s from node %s: the reply has no Content-Length", id, nodeID)
	}
	data = make([]byte, resp.ContentLength)
	if _, err := io.ReadFull(resp.Body, data); err != nil {
		return nil, false, fmt.Errorf("fetching object %s from node %s: %w", id, nodeID, err)
	}
	return data, resp.Header.Get(hdrObjectIsError) == "true", nil
}
