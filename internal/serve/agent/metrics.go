package agent

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	"github.com/rayk8s/rayk8s/internal/serve/wire"
)

// meter wraps a stream to a local replica so the calls it carries count in
// the replica's metrics, whoever routed them (this node or, through the
// tunnel, another). Control calls (health, reconfigure, stats) do not count.
func (a *Agent) meter(replicaID string, s wire.Stream) wire.Stream {
	if a.opts.Metrics == nil {
		return s
	}
	ms := &meteredStream{Stream: s, m: a.opts.Metrics, replica: replicaID}
	if t, ok := a.handles.Target(replicaID); ok {
		ms.app, ms.deployment = t.App, t.Deployment
	}
	return ms
}

type meteredStream struct {
	wire.Stream
	m                        *metrics.Metrics
	app, deployment, replica string

	mu sync.Mutex
	// metaKnown: OpenMeta gave the OPEN frame's kind and route.
	metaKnown bool
	kind      string
	counted   bool // an http or handle call
	route     string
	accepted  bool
	start     time.Time
	done      bool
}

// OpenMeta implements wire.MetaOpener: a local caller says what its OPEN
// frame holds.
func (s *meteredStream) OpenMeta(kind, routePrefix string) {
	s.mu.Lock()
	s.metaKnown, s.kind, s.route = true, kind, routePrefix
	s.mu.Unlock()
}

func (s *meteredStream) Send(frames ...wire.Out) error {
	for _, f := range frames {
		if f.Type != wire.TypeOpen {
			continue
		}
		s.mu.Lock()
		kind, route := s.kind, s.route
		if !s.metaKnown {
			// A tunnelled call: only the frame says.
			var meta struct {
				Kind        string `json:"kind"`
				RoutePrefix string `json:"route_prefix"`
			}
			if json.Unmarshal(f.Payload, &meta) == nil {
				kind, route = meta.Kind, meta.RoutePrefix
			}
		}
		if kind == wire.KindHTTP || kind == wire.KindHandle {
			// Processing starts as the replica gets the call (its ACCEPT
			// reaches us after the handler may have run).
			s.counted, s.route, s.start = true, route, s.m.Now()
		}
		s.mu.Unlock()
	}
	return s.Stream.Send(frames...)
}

func (s *meteredStream) Recv(ctx context.Context) (wire.Frame, error) {
	f, err := s.Stream.Recv(ctx)
	switch {
	case err != nil:
		// A connection that ends mid-call fails it; a caller that stops
		// waiting closes the stream next.
		if ctx.Err() == nil {
			s.finish(true)
		}
	case f.Type == wire.TypeAccept:
		if wire.DecodeAccept(f.Payload).Accepted {
			s.mu.Lock()
			if s.counted && !s.accepted && !s.done {
				s.accepted = true
				s.m.ReplicaStarted(s.app, s.deployment, s.replica)
			}
			s.mu.Unlock()
		} else {
			s.finish(false)
		}
	case f.Type == wire.TypeEnd:
		s.finish(false)
	case f.Type == wire.TypeError:
		var e wire.Error
		_ = json.Unmarshal(f.Payload, &e)
		s.finish(e.Kind != wire.ErrCancelled)
	}
	return f, err
}

func (s *meteredStream) Close() {
	s.finish(false)
	s.Stream.Close()
}

// Buffered keeps the proxy's flush decisions working through the wrapper.
func (s *meteredStream) Buffered() bool {
	b, ok := s.Stream.(interface{ Buffered() bool })
	return ok && b.Buffered()
}

func (s *meteredStream) finish(failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	if s.accepted {
		s.m.ReplicaDone(s.app, s.deployment, s.replica, s.route, s.start, failed)
	}
}
