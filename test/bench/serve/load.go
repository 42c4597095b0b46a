package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sample is one load run of one path.
type sample struct {
	qps      float64
	p50, p99 time.Duration
	errors   int
	// cpu is the serving side's CPU time per request (0: not measured;
	// see serverCPU), and cpuSplit the same by process (serverCPUSplit).
	cpu      time.Duration
	cpuSplit map[string]time.Duration
	// clientCPU is the load generator's own CPU time for the run (wrk's
	// rusage; 0: not measured). A path whose answers cost the client more
	// to read leaves less of a shared machine to the servers.
	clientCPU    time.Duration
	clientPerReq time.Duration
}

// loader runs closed-loop HTTP load against a URL: conns connections, each
// sending its next request as soon as the last answer arrived.
type loader interface {
	name() string
	run(url string, conns int, d time.Duration) (sample, error)
}

// wrkLoader drives wrk with one thread, as the figures were taken:
// a C client leaves the most of the machine's two cores to the servers.
type wrkLoader struct{ path string }

func (w wrkLoader) name() string { return "wrk (" + w.path + ", 1 thread)" }

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct    = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func (w wrkLoader) run(url string, conns int, d time.Duration) (sample, error) {
	cmd := exec.Command(w.path, "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(max(1, int(d.Seconds())))+"s", "--latency", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	s, err := parseWrk(string(out))
	if err == nil {
		s.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return s, err
}

func parseWrk(out string) (sample, error) {
	var s sample
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return s, fmt.Errorf("no Requests/sec in wrk's output: %s", out)
	}
	s.qps, _ = strconv.ParseFloat(m[1], 64)
	for _, pm := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(pm[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[pm[3]]
		dur := time.Duration(v * float64(unit))
		if pm[1] == "50" {
			s.p50 = dur
		} else {
			s.p99 = dur
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		s.errors += n
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.Atoi(v)
			s.errors += n
		}
	}
	return s, nil
}

// goLoader is the same closed loop in Go, for machines without wrk: it
// shares the bench process (and so its cores) with the proxy.
type goLoader struct{}

func (goLoader) name() string { return "Go closed-loop client (in the bench process)" }

func (goLoader) run(url string, conns int, d time.Duration) (sample, error) {
	r := measure(d, conns, httpCaller(url))
	return r.sample(), nil
}

func (r result) sample() sample {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
	}
	return sample{qps: float64(r.n) / r.elapsed.Seconds(), p50: pct(0.5), p99: pct(0.99), errors: r.errors}
}

type caller func() error

func httpCaller(url string) func() caller {
	tr := &http.Transport{MaxIdleConnsPerHost: 1024}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return func() caller {
		return func() error {
			resp, err := client.Get(url)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			return nil
		}
	}
}

type result struct {
	n         int
	errors    int
	elapsed   time.Duration
	latencies []time.Duration
}

func measure(d time.Duration, concurrency int, newCaller func() caller) result {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	start := time.Now()
	stop := start.Add(d)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := newCaller()
			var lat []time.Duration
			e := 0
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := call(); err != nil {
					e++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	return result{n: len(all), errors: errs, elapsed: time.Since(start), latencies: all}
}

// series is the samples of one path at one connection count, across rounds.
type series struct {
	name    string
	conns   int
	samples []sample
}

func (s *series) minMed() (qMin, qMed float64, p50Min, p50Med, p99Med time.Duration, errs int) {
	if len(s.samples) == 0 {
		return
	}
	q := make([]float64, 0, len(s.samples))
	p := make([]time.Duration, 0, len(s.samples))
	p9 := make([]time.Duration, 0, len(s.samples))
	for _, x := range s.samples {
		q = append(q, x.qps)
		p = append(p, x.p50)
		p9 = append(p9, x.p99)
		errs += x.errors
	}
	slices.Sort(q)
	slices.Sort(p)
	slices.Sort(p9)
	return q[0], median(q), p[0], median(p), median(p9), errs
}

func median[T int64 | float64 | time.Duration](v []T) T {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func (s *series) medQPS() float64 {
	_, m, _, _, _, _ := s.minMed()
	return m
}

func (s *series) medP50() time.Duration {
	_, _, _, m, _, _ := s.minMed()
	return m
}

// medCPU is the median CPU per request over the rounds (0: not measured).
func (s *series) medCPU() time.Duration {
	c := make([]time.Duration, 0, len(s.samples))
	for _, x := range s.samples {
		if x.cpu <= 0 {
			return 0
		}
		c = append(c, x.cpu)
	}
	if len(c) == 0 {
		return 0
	}
	slices.Sort(c)
	return median(c)
}

// cpuSplitLine is the median CPU per request of each process over the
// rounds, largest first, then the load generator's, which is not part of
// the serving side.
func (s *series) cpuSplitLine() string {
	per := map[string][]time.Duration{}
	for _, x := range s.samples {
		for name, d := range x.cpuSplit {
			per[name] = append(per[name], d)
		}
	}
	type share struct {
		name string
		d    time.Duration
	}
	var shares []share
	for name, ds := range per {
		// A round where the process used no CPU counts as zero.
		for len(ds) < len(s.samples) {
			ds = append(ds, 0)
		}
		slices.Sort(ds)
		if m := median(ds); m >= 500*time.Nanosecond {
			shares = append(shares, share{name, m})
		}
	}
	slices.SortFunc(shares, func(a, b share) int { return int(b.d - a.d) })
	parts := make([]string, 0, len(shares))
	for _, sh := range shares {
		parts = append(parts, sh.name+" "+fmtMicros(sh.d))
	}
	if len(parts) == 0 {
		return "-"
	}
	line := strings.Join(parts, ", ")
	var client []time.Duration
	for _, x := range s.samples {
		if x.clientPerReq > 0 {
			client = append(client, x.clientPerReq)
		}
	}
	if len(client) > 0 {
		slices.Sort(client)
		line += "; client (wrk) " + fmtMicros(median(client))
	}
	return line
}

func fmtMicros(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Nanoseconds())/1000, 'f', 1, 64) + "µs"
}

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + "ms"
}

// table prints min and median QPS and p50 over the rounds, and the p99
// median.
func table(rows []*series) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-36s %5s %9s %9s %9s %9s %9s %9s\n", "path", "conns", "QPS min", "QPS med", "p50 min", "p50 med", "p99 med", "CPU/req")
	for _, s := range rows {
		qMin, qMed, pMin, pMed, p99, errs := s.minMed()
		cpu := "-"
		if c := s.medCPU(); c > 0 {
			cpu = fmtMicros(c)
		}
		line := fmt.Sprintf("%-36s %5d %9.0f %9.0f %9s %9s %9s %9s", s.name, s.conns, qMin, qMed, fmtDur(pMin), fmtDur(pMed), fmtDur(p99), cpu)
		if errs > 0 {
			line += fmt.Sprintf("  (%d errors)", errs)
		}
		fmt.Fprintln(&b, line)
	}
	return b.String()
}

var errNoNginx = errors.New("nginx not found")
