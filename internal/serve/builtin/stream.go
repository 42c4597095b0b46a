package builtin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// Defaults of builtin:stream.
const (
	defaultStreamChunks    = 10
	defaultStreamInterval  = 0.1
	defaultStreamChunkSize = 64
	maxStreamChunkSize     = 16 << 20
)

func (o options) validate() error {
	if o.Chunks != nil && *o.Chunks < 0 {
		return fmt.Errorf("chunks: must be >= 0, got %d", *o.Chunks)
	}
	if o.IntervalS != nil && *o.IntervalS < 0 {
		return fmt.Errorf("interval_s: must be >= 0, got %v", *o.IntervalS)
	}
	if o.ChunkSize != nil && (*o.ChunkSize < 1 || *o.ChunkSize > maxStreamChunkSize) {
		return fmt.Errorf("chunk_size: must be between 1 and %d, got %d", maxStreamChunkSize, *o.ChunkSize)
	}
	return nil
}

// streamer answers with chunks, interval_s apart, each chunk_size bytes
// (at least its header) starting with "<index> <unix nanoseconds>\n", so a
// client can tell when each chunk was produced. The query overrides the
// configuration per request: ?chunks=&interval_s=&chunk_size=. GET
// ?stats=1 reports how many streams finished and how many were cancelled
// by their caller. Over gRPC the request message is the query string and
// each chunk one response message.
type streamer struct {
	*base
	mu        sync.Mutex
	finished  int
	cancelled int
	active    int
}

func (s *streamer) Handle(ctx context.Context, req *replica.Request) (*replica.Response, error) {
	return nil, errors.New("builtin:stream only streams")
}

type streamShape struct {
	chunks   int
	interval time.Duration
	size     int
}

func (s *streamer) shape(query string) (streamShape, error) {
	cfg, _ := s.config()
	o := options{Chunks: cfg.Chunks, IntervalS: cfg.IntervalS, ChunkSize: cfg.ChunkSize}
	q, err := url.ParseQuery(query)
	if err != nil {
		return streamShape{}, fmt.Errorf("query: %w", err)
	}
	if v := q.Get("chunks"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return streamShape{}, fmt.Errorf("chunks: %w", err)
		}
		o.Chunks = &n
	}
	if v := q.Get("interval_s"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return streamShape{}, fmt.Errorf("interval_s: %w", err)
		}
		o.IntervalS = &f
	}
	if v := q.Get("chunk_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return streamShape{}, fmt.Errorf("chunk_size: %w", err)
		}
		o.ChunkSize = &n
	}
	if err := o.validate(); err != nil {
		return streamShape{}, err
	}
	sh := streamShape{chunks: defaultStreamChunks, interval: time.Duration(defaultStreamInterval * float64(time.Second)), size: defaultStreamChunkSize}
	if o.Chunks != nil {
		sh.chunks = *o.Chunks
	}
	if o.IntervalS != nil {
		sh.interval = time.Duration(*o.IntervalS * float64(time.Second))
	}
	if o.ChunkSize != nil {
		sh.size = *o.ChunkSize
	}
	return sh, nil
}

func (s *streamer) HandleStream(ctx context.Context, req *replica.Request, w *replica.ResponseStream) error {
	query := req.Meta.Query
	if req.Meta.Kind == wire.KindGRPC {
		// gRPC has no query string: the request message's bytes are one,
		// and each chunk is one response message.
		query = string(req.Body)
	}
	q, _ := url.ParseQuery(query)
	if q.Get("stats") != "" {
		s.mu.Lock()
		body := fmt.Sprintf(`{"finished":%d,"cancelled":%d,"active":%d}`, s.finished, s.cancelled, s.active)
		s.mu.Unlock()
		if err := w.WriteHead(http.StatusOK, [][2]string{{"content-type", "application/json"}}); err != nil {
			return err
		}
		return w.Write(ctx, []byte(body))
	}
	sh, err := s.shape(query)
	if err != nil {
		if err := w.WriteHead(http.StatusBadRequest, [][2]string{{"content-type", "text/plain; charset=utf-8"}}); err != nil {
			return err
		}
		return w.Write(ctx, []byte(err.Error()))
	}
	s.count(func() { s.active++ })
	defer s.count(func() { s.active-- })
	if err := w.WriteHead(http.StatusOK, [][2]string{{"content-type", "text/plain; charset=utf-8"}}); err != nil {
		return err
	}
	for i := range sh.chunks {
		if i > 0 && sh.interval > 0 {
			t := time.NewTimer(sh.interval)
			select {
			case <-ctx.Done():
				t.Stop()
				s.count(func() { s.cancelled++ })
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := w.Write(ctx, chunk(i, sh.size)); err != nil {
			if ctx.Err() != nil {
				s.count(func() { s.cancelled++ })
			}
			return err
		}
	}
	s.count(func() { s.finished++ })
	return nil
}

func (s *streamer) count(fn func()) {
	s.mu.Lock()
	fn()
	s.mu.Unlock()
}

// chunk is "<i> <unix ns>\n", padded with '.' before the newline to size.
func chunk(i, size int) []byte {
	head := strconv.Itoa(i) + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
	b := make([]byte, 0, max(size, len(head)+1))
	b = append(b, head...)
	for len(b) < size-1 {
		b = append(b, '.')
	}
	return append(b, '\n')
}
