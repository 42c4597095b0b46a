// Package builtin holds the Go deployments `import_path: builtin:<name>`
// names: echo, noop, sleep and stream. They exist for tests, samples and benchmarks:
// no Python is needed to serve them.
package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rayk8s/rayk8s/internal/serve/replica"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// ImportPrefix marks built-in import paths.
const ImportPrefix = "builtin:"

// Names lists the built-ins.
func Names() []string { return []string{"echo", "noop", "sleep", "stream"} }

// Known reports whether name is a built-in.
func Known(name string) bool { return slices.Contains(Names(), name) }

// Context is what a built-in knows about itself.
type Context struct {
	ReplicaID  string
	App        string
	Deployment string
	// Args is the application's args.
	Args json.RawMessage
}

// options are the knobs every built-in reads from args and user_config.
type options struct {
	// FailConstructor makes the constructor fail with this message.
	FailConstructor string `json:"fail_constructor,omitempty"`
	// Unhealthy makes health checks fail.
	Unhealthy bool `json:"unhealthy,omitempty"`
	// SleepS is how long sleep sleeps.
	SleepS *float64 `json:"sleep_s,omitempty"`
	// Message is returned by echo.
	Message string `json:"message,omitempty"`
	// Chunks, IntervalS and ChunkSize shape stream's answer.
	Chunks    *int     `json:"chunks,omitempty"`
	IntervalS *float64 `json:"interval_s,omitempty"`
	ChunkSize *int     `json:"chunk_size,omitempty"`
}

// New constructs a built-in; an error is a constructor failure.
func New(name string, c Context) (replica.Deployment, error) {
	var args options
	if len(c.Args) > 0 && string(c.Args) != "null" {
		if err := json.Unmarshal(c.Args, &args); err != nil {
			return nil, fmt.Errorf("invalid args for builtin:%s: %w", name, err)
		}
	}
	if err := args.validate(); err != nil {
		return nil, fmt.Errorf("invalid args for builtin:%s: %w", name, err)
	}
	if args.FailConstructor != "" {
		return nil, errors.New(args.FailConstructor)
	}
	b := &base{ctx: c, args: args, cfg: args}
	switch name {
	case "echo":
		return &echo{base: b}, nil
	case "noop":
		return &noop{base: b}, nil
	case "sleep":
		return &sleeper{base: b}, nil
	case "stream":
		return &streamer{base: b}, nil
	}
	return nil, fmt.Errorf("unknown built-in deployment %q (known: %v)", name, Names())
}

type base struct {
	ctx  Context
	args options

	mu         sync.Mutex
	cfg        options
	userConfig json.RawMessage
}

func (b *base) Reconfigure(uc json.RawMessage) error {
	cfg := b.args
	if len(uc) > 0 && string(uc) != "null" {
		if err := json.Unmarshal(uc, &cfg); err != nil {
			return fmt.Errorf("invalid user_config: %w", err)
		}
	}
	b.mu.Lock()
	b.cfg, b.userConfig = cfg, uc
	b.mu.Unlock()
	return nil
}

func (b *base) config() (options, json.RawMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg, b.userConfig
}

func (b *base) CheckHealth(context.Context) error {
	if cfg, _ := b.config(); cfg.Unhealthy {
		return replica.ErrUnhealthy
	}
	return nil
}

func jsonResponse(v any) (*replica.Response, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &replica.Response{Status: http.StatusOK, Headers: [][2]string{{"content-type", "application/json"}}, Body: raw}, nil
}

// echo describes the request it got.
type echo struct{ *base }

func (e *echo) Handle(_ context.Context, req *replica.Request) (*replica.Response, error) {
	cfg, uc := e.config()
	m := req.Meta
	if m.Kind == wire.KindGRPC {
		// gRPC: the request message's bytes back, whatever the method.
		return &replica.Response{Status: http.StatusOK, Body: req.Body}, nil
	}
	return jsonResponse(map[string]any{
		"kind":         m.Kind,
		"method":       m.Method,
		"path":         m.Path,
		"query":        m.Query,
		"route_prefix": m.RoutePrefix,
		"request_id":   m.RequestID,
		"body":         string(req.Body),
		"replica_id":   e.ctx.ReplicaID,
		"app":          e.ctx.App,
		"deployment":   e.ctx.Deployment,
		"message":      cfg.Message,
		"user_config":  orNull(uc),
		// The threads the replica's Go code runs on (its num_cpus, or
		// GOMAXPROCS from its environment).
		"gomaxprocs": runtime.GOMAXPROCS(0),
	})
}

func orNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// noop answers 200 with an empty body.
type noop struct{ *base }

func (*noop) Handle(context.Context, *replica.Request) (*replica.Response, error) {
	return &replica.Response{Status: http.StatusOK}, nil
}

// sleeper sleeps (sleep_s from user_config or args, ?s= per request) and
// reports the concurrency it observed, so tests can check the hard cap.
type sleeper struct {
	*base
	mu            sync.Mutex
	concurrent    int
	maxConcurrent int
}

func (s *sleeper) Handle(ctx context.Context, req *replica.Request) (*replica.Response, error) {
	cfg, _ := s.config()
	d := 0.1
	if cfg.SleepS != nil {
		d = *cfg.SleepS
	}
	if q, err := url.ParseQuery(req.Meta.Query); err == nil && q.Get("s") != "" {
		if v, err := strconv.ParseFloat(q.Get("s"), 64); err == nil {
			d = v
		}
	}
	s.mu.Lock()
	s.concurrent++
	now := s.concurrent
	s.maxConcurrent = max(s.maxConcurrent, now)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.concurrent--
		s.mu.Unlock()
	}()
	t := time.NewTimer(time.Duration(d * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	s.mu.Lock()
	maxSeen := s.maxConcurrent
	s.mu.Unlock()
	return jsonResponse(map[string]any{"replica_id": s.ctx.ReplicaID, "slept_s": d, "concurrent": now, "max_concurrent": maxSeen})
}
