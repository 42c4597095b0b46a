package agent

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-logr/logr"
)

// TestServeObjectDataStreamsSpilledValues checks that another node's fetch
// of a spilled value streams it from its file, with its length and error
// flag, the same as a value in memory.
func TestServeObjectDataStreamsSpilledValues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill")
	a := &Agent{opts: Options{NodeID: "n1"}, store: NewStore(StoreOptions{Limit: 3 << 20, SpillDir: dir, Logger: logr.Discard()})}
	spilled, inMemory := value(1, 2<<20+7), value(2, 2<<20)
	a.store.Put("spilled", "j", spilled, true)
	a.store.Put("memory", "j", inMemory, false)
	if st := a.store.Stats(); st.SpilledObjects != 1 {
		t.Fatalf("stats = %+v; want the first value spilled", st)
	}
	for _, c := range []struct {
		id    string
		want  []byte
		isErr string
	}{{"spilled", spilled, "true"}, {"memory", inMemory, "false"}} {
		rec := httptest.NewRecorder()
		a.serveObjectData(rec, httptest.NewRequest(http.MethodGet, "/?id="+c.id, nil))
		if rec.Code != http.StatusOK || rec.Header().Get(hdrObjectIsError) != c.isErr ||
			rec.Header().Get("Content-Length") != strconv.Itoa(len(c.want)) || !bytes.Equal(rec.Body.Bytes(), c.want) {
			t.Errorf("%s: status %d, error flag %q, length %q, %d bytes; want 200, %q, %d bytes equal to the value",
				c.id, rec.Code, rec.Header().Get(hdrObjectIsError), rec.Header().Get("Content-Length"), rec.Body.Len(), c.isErr, len(c.want))
		}
	}
	a.store.DropJob("j")
	rec := httptest.NewRecorder()
	a.serveObjectData(rec, httptest.NewRequest(http.MethodGet, "/?id=spilled", nil))
	if rec.Code != http.StatusConflict || rec.Header().Get(hdrErrorType) != "ObjectLostError" {
		t.Errorf("a freed value: status %d, type %q; want 409 ObjectLostError", rec.Code, rec.Header().Get(hdrErrorType))
	}
}
