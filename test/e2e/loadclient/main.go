// Command loadclient sends HTTP requests at a steady rate and counts the failures: the e2e suite
// runs it in a pod, against a RayService's serve Service, while it upgrades the service. It is an
// open-loop generator (requests leave on a fixed schedule, whether or not earlier ones finished),
// so a stall shows up as failures or as a backlog instead of a silently lower rate.
//
//	loadclient -url http://svc:8000/ -rate 200 -listen :9000
//
// GET /stats on the listen address returns the counts so far as JSON; POST /window starts a new
// window for the windowed latencies (maximum, p50, p99); POST /rate?rps=N changes the rate (a
// ramp is a series of these); POST /stop stops sending, waits for the requests in
// flight and returns the final counts. A request fails when it gets a
// transport error or a status other than 2xx, or when its body lacks -expect.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rayk8s/rayk8s/test/e2e/loadclient/stats"
)

// maxWindowSamples bounds the latencies kept for the window's percentiles (8 MB); later ones
// in the same window are not counted in them.
const maxWindowSamples = 1 << 20

type counter struct {
	mu sync.Mutex
	s  stats.Stats
	// windowMs are the latencies of the window's successful requests.
	windowMs []float64
	rate     atomic.Int64
}

func (c *counter) record(start time.Time, code int, d time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code != 0 {
		c.s.Codes[code]++
	}
	if err != nil {
		c.s.Failed++
		if len(c.s.Errors) < stats.MaxListed {
			c.s.Errors = append(c.s.Errors, time.Now().UTC().Format("15:04:05.000")+" "+err.Error())
		}
		return
	}
	c.s.OK++
	c.s.MaxLatencyMs = max(c.s.MaxLatencyMs, float64(d.Microseconds())/1000)
	if !start.Before(c.s.WindowStart) {
		ms := float64(d.Microseconds()) / 1000
		c.s.WindowMaxLatencyMs = max(c.s.WindowMaxLatencyMs, ms)
		c.s.WindowOK++
		if len(c.windowMs) < maxWindowSamples {
			c.windowMs = append(c.windowMs, ms)
		}
	}
	if d > stats.SlowThreshold && len(c.s.Slow) < stats.MaxListed {
		c.s.Slow = append(c.s.Slow, fmt.Sprintf("%s took %s", start.UTC().Format("15:04:05.000"), d.Round(time.Millisecond)))
	}
}

func (c *counter) snapshot() stats.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.s
	out.Codes = make(map[int]int64, len(c.s.Codes))
	for k, v := range c.s.Codes {
		out.Codes[k] = v
	}
	out.Errors = append([]string(nil), c.s.Errors...)
	out.Slow = append([]string(nil), c.s.Slow...)
	out.Rate = c.rate.Load()
	sorted := slices.Clone(c.windowMs)
	slices.Sort(sorted)
	out.WindowP50Ms, out.WindowP99Ms = stats.Percentile(sorted, 50), stats.Percentile(sorted, 99)
	return out
}

func main() {
	target := flag.String("url", "", "URL to GET (required)")
	rate := flag.Int("rate", 200, "requests per second")
	workers := flag.Int("workers", 64, "most requests in flight at once")
	listen := flag.String("listen", ":9000", "address of the /stats and /stop endpoints")
	expect := flag.String("expect", "", "substring every successful response body must contain")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	keepAlive := flag.Bool("keepalive", true, "reuse connections, as most HTTP clients do")
	flag.Parse()
	if *target == "" || *rate <= 0 || *workers <= 0 {
		fmt.Fprintln(os.Stderr, "loadclient: -url is required, -rate and -workers must be positive")
		os.Exit(2)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = *workers
	tr.DisableKeepAlives = !*keepAlive
	hc := &http.Client{Transport: tr, Timeout: *timeout}

	now := time.Now().UTC()
	c := &counter{s: stats.Stats{Started: now, WindowStart: now, Codes: map[int]int64{}}}
	c.rate.Store(int64(*rate))
	ctx, stop := context.WithCancel(context.Background())
	var inflight sync.WaitGroup
	done := make(chan struct{})
	go func() {
		defer close(done)
		send(ctx, hc, *target, *expect, *workers, c, &inflight)
	}()

	var stopOnce sync.Once
	stopAll := func() {
		stopOnce.Do(func() {
			stop()
			<-done
			inflight.Wait()
			c.mu.Lock()
			c.s.Stopped = true
			c.mu.Unlock()
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, c.snapshot()) })
	// A window isolates one step of a test from what came before (such as the first
	// connections' set-up).
	mux.HandleFunc("POST /window", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		c.s.WindowStart, c.s.WindowMaxLatencyMs, c.s.WindowOK = time.Now().UTC(), 0, 0
		c.windowMs = nil
		c.mu.Unlock()
		writeJSON(w, c.snapshot())
	})
	mux.HandleFunc("POST /rate", func(w http.ResponseWriter, r *http.Request) {
		rps, err := strconv.Atoi(r.URL.Query().Get("rps"))
		if err != nil || rps <= 0 {
			http.Error(w, "rps: want a positive integer, got "+strconv.Quote(r.URL.Query().Get("rps")), http.StatusBadRequest)
			return
		}
		c.rate.Store(int64(rps))
		log.Printf("Rate set to %d/s", rps)
		writeJSON(w, c.snapshot())
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, _ *http.Request) {
		stopAll()
		writeJSON(w, c.snapshot())
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		stopAll()
		b, _ := json.Marshal(c.snapshot())
		log.Printf("Stopped: %s", b)
		_ = srv.Close()
	}()
	log.Printf("Sending GET %s at %d/s; stats on %s", *target, c.rate.Load(), *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// send starts one request per tick until ctx is done, with at most workers in flight; the tick
// follows the current rate.
func send(ctx context.Context, hc *http.Client, target, expect string, workers int, c *counter, inflight *sync.WaitGroup) {
	slots := make(chan struct{}, workers)
	next := time.Now()
	for {
		next = next.Add(time.Second / time.Duration(c.rate.Load()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		select {
		case slots <- struct{}{}:
		default:
			c.mu.Lock()
			c.s.Late++
			c.mu.Unlock()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		c.mu.Lock()
		c.s.Sent++
		c.mu.Unlock()
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-slots }()
			start := time.Now()
			code, d, err := get(hc, target, expect)
			c.record(start, code, d, err)
		}()
	}
}

// get does one request; requests already sent are finished even when the client stops.
func get(hc *http.Client, target, expect string) (int, time.Duration, error) {
	start := time.Now()
	resp, err := hc.Get(target)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, 0, fmt.Errorf("timeout: %w", err)
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	d := time.Since(start)
	switch {
	case err != nil:
		return resp.StatusCode, d, fmt.Errorf("reading the body: %w", err)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return resp.StatusCode, d, fmt.Errorf("status %d: %.200s", resp.StatusCode, strings.TrimSpace(string(body)))
	case expect != "" && !strings.Contains(string(body), expect):
		return resp.StatusCode, d, fmt.Errorf("body lacks %q: %.200s", expect, strings.TrimSpace(string(body)))
	}
	return resp.StatusCode, d, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
