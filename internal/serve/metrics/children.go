package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The series every request touches are looked up once per label set and
// kept here: WithLabelValues validates and hashes every label value and
// allocates on each call, which at proxy rates cost more than the rest of
// the metrics together. The keys are the same labels as the series', so
// the cache is bounded by what the vectors themselves hold; a replica's
// entries go when its series are deleted (Forget).

type httpKey struct {
	app, route, method string
	status             int
}

type httpChildren struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

type routerKey struct{ app, deployment, route string }

type replicaKey struct{ app, deployment, replica string }

type replicaRouteKey struct {
	replicaKey
	route string
}

type replicaChildren struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// children caches the series of the request paths. The HTTP and router
// maps have their own locks (the proxy's requests run in parallel); the
// replica maps are guarded by Metrics.mu, which their callers hold anyway.
type children struct {
	httpMu sync.RWMutex
	http   map[httpKey]httpChildren

	routerMu sync.RWMutex
	router   map[routerKey]prometheus.Counter

	processing map[replicaKey]prometheus.Gauge
	replica    map[replicaRouteKey]replicaChildren
}

func newChildren() children {
	return children{
		http:       map[httpKey]httpChildren{},
		router:     map[routerKey]prometheus.Counter{},
		processing: map[replicaKey]prometheus.Gauge{},
		replica:    map[replicaRouteKey]replicaChildren{},
	}
}

func (m *Metrics) httpChildren(k httpKey) httpChildren {
	m.children.httpMu.RLock()
	c, ok := m.children.http[k]
	m.children.httpMu.RUnlock()
	if ok {
		return c
	}
	code := statusCode(k.status)
	c = httpChildren{
		requests: m.httpRequests.WithLabelValues(k.app, k.route, k.method, code),
		latency:  m.httpLatency.WithLabelValues(k.app, k.route, k.method, code),
	}
	m.children.httpMu.Lock()
	m.children.http[k] = c
	m.children.httpMu.Unlock()
	return c
}

func (m *Metrics) routerChild(k routerKey) prometheus.Counter {
	m.children.routerMu.RLock()
	c, ok := m.children.router[k]
	m.children.routerMu.RUnlock()
	if ok {
		return c
	}
	c = m.routerRequests.WithLabelValues(k.app, k.deployment, k.route)
	m.children.routerMu.Lock()
	m.children.router[k] = c
	m.children.routerMu.Unlock()
	return c
}

// processingLocked and replicaLocked need m.mu held.
func (m *Metrics) processingLocked(k replicaKey) prometheus.Gauge {
	g, ok := m.children.processing[k]
	if !ok {
		g = m.replicaProcessing.WithLabelValues(k.app, k.deployment, k.replica)
		m.children.processing[k] = g
	}
	return g
}

func (m *Metrics) replicaLocked(k replicaRouteKey) replicaChildren {
	c, ok := m.children.replica[k]
	if !ok {
		c = replicaChildren{
			requests: m.replicaRequests.WithLabelValues(k.app, k.deployment, k.replica, k.route),
			latency:  m.replicaLatency.WithLabelValues(k.app, k.deployment, k.replica, k.route),
		}
		m.children.replica[k] = c
	}
	return c
}

// forgetLocked drops a replica's cached series (their series are being
// deleted; new calls create new ones). Needs m.mu held.
func (m *Metrics) forgetLocked(replica string) {
	for k := range m.children.processing {
		if k.replica == replica {
			delete(m.children.processing, k)
		}
	}
	for k := range m.children.replica {
		if k.replica == replica {
			delete(m.children.replica, k)
		}
	}
}
