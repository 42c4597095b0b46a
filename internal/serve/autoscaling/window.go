package autoscaling

import (
	"sort"
	"time"
)

// Sample is one reading of a caller's requests for a deployment: those in
// flight at replicas plus those waiting in its queue.
type Sample struct {
	At    time.Time
	Value float64
}

// MetricsHealth says whether the window has current reports from every
// caller (Ray's healthy / delayed / unavailable).
type MetricsHealth string

// The metrics health values Ray's observability reports.
const (
	MetricsHealthy     MetricsHealth = "healthy"
	MetricsDelayed     MetricsHealth = "delayed"
	MetricsUnavailable MetricsHealth = "unavailable"
)

// Window keeps each source's samples of the last look-back period. A source
// is one reporter (a node's routers, a node's replicas).
type Window struct {
	sources map[string][]Sample
}

// NewWindow returns an empty window.
func NewWindow() *Window { return &Window{sources: map[string][]Sample{}} }

// Record adds samples of source; they need not be in order.
func (w *Window) Record(source string, samples ...Sample) {
	s := append(w.sources[source], samples...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].At.Before(s[j].At) })
	w.sources[source] = s
}

// Forget drops a source (its node is gone, and its load with it).
func (w *Window) Forget(source string) { delete(w.sources, source) }

// Reading is the window's aggregate at one time.
type Reading struct {
	// Total is the sum over sources of each one's aggregate.
	Total float64
	// Sources counts the sources with samples in the window.
	Sources int
	Health  MetricsHealth
}

// Read drops samples older than the look-back period and aggregates the
// rest: per source with the config's function, summed over sources. A
// source whose newest sample is older than staleAfter makes the reading
// delayed; no source at all makes it unavailable.
func (w *Window) Read(now time.Time, c Config, staleAfter time.Duration) Reading {
	r := Reading{Health: MetricsHealthy}
	cutoff := now.Add(-c.LookBackPeriod)
	for src, s := range w.sources {
		i := sort.Search(len(s), func(i int) bool { return !s[i].At.Before(cutoff) })
		s = s[i:]
		if len(s) == 0 {
			delete(w.sources, src)
			continue
		}
		w.sources[src] = s
		r.Sources++
		r.Total += aggregate(s, c.Aggregation)
		if now.Sub(s[len(s)-1].At) > staleAfter {
			r.Health = MetricsDelayed
		}
	}
	if r.Sources == 0 {
		r.Health = MetricsUnavailable
	}
	return r
}

func aggregate(s []Sample, a Aggregation) float64 {
	out := s[0].Value
	sum := 0.0
	for _, x := range s {
		sum += x.Value
		switch a {
		case AggregateMax:
			out = max(out, x.Value)
		case AggregateMin:
			out = min(out, x.Value)
		}
	}
	if a == AggregateMax || a == AggregateMin {
		return out
	}
	return sum / float64(len(s))
}
