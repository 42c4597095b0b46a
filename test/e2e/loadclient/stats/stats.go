// Package stats is what the e2e load client (test/e2e/loadclient) reports on /stats and /stop,
// shared by the client and the specs that read it.
package stats

import (
	"fmt"
	"math"
	"time"
)

// SlowThreshold makes a successful request slow enough to be listed in Stats.Slow.
const SlowThreshold = 250 * time.Millisecond

// MaxListed bounds Stats.Errors and Stats.Slow.
const MaxListed = 20

// Stats are the load client's counts.
type Stats struct {
	Started time.Time `json:"started"`
	// Sent counts requests started; OK and Failed those finished.
	Sent   int64 `json:"sent"`
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
	// Late counts ticks at which every worker was busy (the request left late, not dropped).
	Late int64 `json:"late"`
	// Codes counts responses by status code.
	Codes map[int]int64 `json:"codes"`
	// Errors are the first failures, with the time they happened.
	Errors  []string `json:"errors,omitempty"`
	Stopped bool     `json:"stopped"`
	// MaxLatencyMs is the slowest successful request.
	MaxLatencyMs float64 `json:"maxLatencyMs"`
	// WindowMaxLatencyMs is the slowest successful request that started since the window
	// began (POST /window), WindowStart.
	WindowMaxLatencyMs float64   `json:"windowMaxLatencyMs"`
	WindowStart        time.Time `json:"windowStart"`
	// Slow are the first successful requests that took over SlowThreshold, with the time they
	// started: where a stall happened.
	Slow []string `json:"slow,omitempty"`
	// Rate is the current request rate per second (POST /rate changes it).
	Rate int64 `json:"rate"`
	// WindowOK counts the successful requests that started since the window began, and
	// WindowP50Ms and WindowP99Ms are their latency percentiles.
	WindowOK    int64   `json:"windowOK"`
	WindowP50Ms float64 `json:"windowP50Ms"`
	WindowP99Ms float64 `json:"windowP99Ms"`
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted values; 0 for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func (s Stats) String() string {
	return fmt.Sprintf("rate=%d/s sent=%d ok=%d failed=%d late=%d max_latency=%.1fms (since %s: max %.1fms p50 %.1fms p99 %.1fms of %d) codes=%v errors=%q slow=%q",
		s.Rate, s.Sent, s.OK, s.Failed, s.Late, s.MaxLatencyMs, s.WindowStart.Format("15:04:05.000"), s.WindowMaxLatencyMs,
		s.WindowP50Ms, s.WindowP99Ms, s.WindowOK, s.Codes, s.Errors, s.Slow)
}
