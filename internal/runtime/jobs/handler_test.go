package jobs

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr"
)

func TestSubmitRejectsOversizedBody(t *testing.T) {
	// Neither request reaches the manager: the body is refused first.
	h := NewHandler(nil, logr.Discard())
	post := func(body []byte) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/jobs/", bytes.NewReader(body)))
		return rec
	}

	// A body of exactly the limit is read whole and parsed.
	atLimit := append([]byte("[1]"), bytes.Repeat([]byte(" "), maxSubmitBody-3)...)
	if rec := post(atLimit); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "must be a JSON object") {
		t.Errorf("body at the limit: %d %q, want 400 from parsing", rec.Code, rec.Body.String())
	}

	over := append(atLimit, ' ')
	rec := post(over)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), strconv.Itoa(maxSubmitBody)+" bytes") {
		t.Errorf("oversized body: message %q does not name the limit", rec.Body.String())
	}
}
