package handle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/rayk8s/rayk8s/internal/serve/handle"
	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// digest answers with the SHA-256 of the request body.
type digest struct{}

func (digest) Handle(_ context.Context, req *replica.Request) (*replica.Response, error) {
	sum := sha256.Sum256(req.Body)
	return &replica.Response{Status: 200, Body: []byte(hex.EncodeToString(sum[:]))}, nil
}
func (digest) Reconfigure(json.RawMessage) error { return nil }
func (digest) CheckHealth(context.Context) error { return nil }

// Bodies above the inline limit stream after ACCEPT in chunks read into
// reused buffers; concurrent calls with different bodies each arrive whole
// and unmixed, as do the inline ones whose OPEN buffers are reused.
func TestRequestBodiesArriveWholeUnderConcurrency(t *testing.T) {
	h := startReplica(t, digest{})
	sizes := []int{0, 10, handle.InlineBodyLimit, handle.InlineBodyLimit + 1, 3*wire.ChunkSize + 17, 1 << 20}
	var wg sync.WaitGroup
	for i, size := range sizes {
		for j := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := bytes.Repeat([]byte{byte('a' + i), byte('0' + j)}, size/2+1)[:size]
				c := handle.Call{App: "app", Meta: wire.Meta{Kind: wire.KindHTTP, Method: "POST", Path: "/", RequestID: string(rune('a'+i)) + string(rune('0'+j))}}
				if size > handle.InlineBodyLimit {
					// As the proxy hands over a body it has not read whole.
					c.Body, c.BodyStream = body[:100], bytes.NewReader(body[100:])
				} else {
					c.Body = body
				}
				resp, err := h.Invoke(context.Background(), c)
				if err != nil {
					t.Errorf("body of %d bytes: %v", size, err)
					return
				}
				defer resp.Close()
				var got []byte
				for {
					chunk, err := resp.Next(context.Background())
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Errorf("body of %d bytes: %v", size, err)
						return
					}
					got = append(got, chunk...)
				}
				sum := sha256.Sum256(body)
				if want := hex.EncodeToString(sum[:]); string(got) != want {
					t.Errorf("body of %d bytes: replica saw digest %s, want %s", size, got, want)
				}
			}()
		}
	}
	wg.Wait()
}
