// Package stats is what the e2e load client (test/e2e/loadclient) reports on /stats and /stop,
// shared by the client and the specs that read it.
package stats

import (
	"fmt"
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
}

func (s Stats) String() string {
	return fmt.Sprintf("sent=%d ok=%d failed=%d late=%d max_latency=%.1fms (%.1fms since %s) codes=%v errors=%q slow=%q",
		s.Sent, s.OK, s.Failed, s.Late, s.MaxLatencyMs, s.WindowMaxLatencyMs, s.WindowStart.Format("15:04:05.000"),
		s.Codes, s.Errors, s.Slow)
}
