package main

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseUsage(t *testing.T) {
	status := "Name:\tmanager\nVmPeak:\t  900 kB\nVmHWM:\t   133120 kB\nVmRSS:\t  100000 kB\n"
	// A command name with a space and a parenthesis must not shift the fields.
	stat := "4242 (my (mgr) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 1520 230 0 0 20 0 12 0 100 0 0"
	u, err := parseUsage(status, stat)
	if err != nil {
		t.Fatal(err)
	}
	if u.peakRSSKiB != 133120 || u.cpu != 17500*time.Millisecond {
		t.Fatalf("parseUsage = %+v, want 133120 KiB and 17.5s of CPU (1520+230 ticks)", u)
	}
	if _, err := parseUsage("VmRSS: 1 kB\n", stat); err == nil || !strings.Contains(err.Error(), "VmHWM") {
		t.Errorf("parseUsage without VmHWM: err = %v, want one naming VmHWM", err)
	}
	if _, err := parseUsage(status, "4242 (mgr) S 1"); err == nil {
		t.Error("parseUsage of a truncated stat line: no error")
	}
}

// TestReadUsageOfAStandInOperator reads the usage of a running process, as the bench does for
// each operator binary; sleep stands in for an operator.
func TestReadUsageOfAStandInOperator(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("no sleep binary to stand in for an operator: %v", err)
	}
	cmd := exec.Command(sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	u, err := readUsage(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if u.peakRSSKiB <= 0 || u.cpu < 0 {
		t.Fatalf("readUsage = %+v, want a positive peak RSS", u)
	}
	if _, err := readUsage(-1); err == nil {
		t.Error("readUsage of no process: no error")
	}
}

func TestOperatorArgsWatchTheRunAndTheSharedNamespace(t *testing.T) {
	args := operatorArgs(benchRun{namespace: "bench-kuberay", shared: "bench-unrelated"}, "127.0.0.1:4242")
	for _, want := range []string{"--watch-namespace=bench-kuberay,bench-unrelated", "--enable-leader-election=false", "--metrics-addr=127.0.0.1:4242"} {
		if !slices.Contains(args, want) {
			t.Errorf("operatorArgs = %v, missing %s", args, want)
		}
	}
}

func TestRowPrintsWritesWithAndWithoutEvents(t *testing.T) {
	r := result{operator: "kuberay", clusters: 500, unrelated: 10000, podsAt: 40 * time.Second, readyAt: 64100 * time.Millisecond,
		writes: 10, eventWrites: 4, peakRSSKiB: 130 * 1024, cpu: 28800 * time.Millisecond}
	f := strings.Fields(r.row())
	want := []string{"kuberay", "500", "10000", "40.00", "64.10", "10.00", "6.00", "130.0", "cpu_s=28.8", "throttled_s=n/a"}
	if !slices.Equal(f, want) {
		t.Fatalf("row = %q, want fields %v", r.row(), want)
	}
	r.throttled, r.throttledKnown = 0.25, true
	if f := strings.Fields(r.row()); f[len(f)-1] != "throttled_s=0.25" {
		t.Fatalf("row = %q, want it to end with throttled_s=0.25", r.row())
	}
}

func TestRunTimeoutGrowsWithClusters(t *testing.T) {
	if got := runTimeout(100); got != 5*time.Minute+100*time.Second {
		t.Errorf("runTimeout(100) = %v", got)
	}
	if got := runTimeout(500); got != 5*time.Minute+500*time.Second {
		t.Errorf("runTimeout(500) = %v", got)
	}
}

func TestKubeRayCRDs(t *testing.T) {
	dir := t.TempDir()
	if got, err := kubeRayCRDs(dir, "/nowhere"); err != nil || got != dir {
		t.Errorf("kubeRayCRDs(%q) = %q, %v; want the directory itself", dir, got, err)
	}
	if _, err := kubeRayCRDs("", ""); err == nil || !strings.Contains(err.Error(), "KUBERAY_CRDS") {
		t.Errorf("without KUBERAY_CRDS or shared/: err = %v, want one naming KUBERAY_CRDS", err)
	}
	if _, err := kubeRayCRDs(dir+"/missing", ""); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a missing directory: err = %v", err)
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{31.6, 108.7, 62.2}
	if got := median(xs); got != 62.2 {
		t.Errorf("median(%v) = %v, want 62.2", xs, got)
	}
	if xs[0] != 31.6 || xs[1] != 108.7 {
		t.Errorf("median reordered its argument: %v", xs)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of an even count = %v, want the mean of the middle two (2.5)", got)
	}
}

func TestRoundOrderAlternates(t *testing.T) {
	ops := []operator{{name: "rayk8s"}, {name: "kuberay"}}
	if got := operatorNames(roundOrder(ops, 1)); !slices.Equal(got, []string{"rayk8s", "kuberay"}) {
		t.Errorf("round 1 order = %v", got)
	}
	if got := operatorNames(roundOrder(ops, 2)); !slices.Equal(got, []string{"kuberay", "rayk8s"}) {
		t.Errorf("round 2 order = %v", got)
	}
	if ops[0].name != "rayk8s" {
		t.Errorf("roundOrder reordered its argument: %v", operatorNames(ops))
	}
}

func TestSummarizeReportsMinMedianAndTheRatio(t *testing.T) {
	run := func(op string, ready float64) result {
		return result{operator: op, clusters: 500, podsAt: time.Duration(ready/2*1000) * time.Millisecond,
			readyAt: time.Duration(ready*1000) * time.Millisecond, writes: 6, peakRSSKiB: 64 * 1024, cpu: 10 * time.Second}
	}
	results := []result{run("rayk8s", 62.2), run("kuberay", 111.7), run("kuberay", 77.4), run("rayk8s", 108.7), run("rayk8s", 31.6), run("kuberay", 67.8)}
	lines := strings.Split(strings.TrimSpace(summarize(results, []string{"rayk8s", "kuberay"})), "\n")
	if len(lines) != 4 {
		t.Fatalf("summary has %d lines, want a header, two operators and the ratio:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	want := map[int][]string{
		1: {"rayk8s", "3", "15.80", "31.10", "31.60", "62.20", "6.00", "64.0", "10.0"},
		2: {"kuberay", "3", "33.90", "38.70", "67.80", "77.40", "6.00", "64.0", "10.0"},
	}
	for i, w := range want {
		if f := strings.Fields(lines[i]); !slices.Equal(f, w) {
			t.Errorf("summary line %d = %q, want fields %v", i, lines[i], w)
		}
	}
	if lines[3] != "median all_ready_s kuberay/rayk8s: 1.24x" {
		t.Errorf("ratio line = %q, want 77.4/62.2 = 1.24x", lines[3])
	}
	// Without KubeRay there is no ratio.
	if s := summarize(results[:1], []string{"rayk8s"}); strings.Contains(s, "kuberay/rayk8s") {
		t.Errorf("a ratio without a KubeRay run:\n%s", s)
	}
}

func TestForEachBoundsConcurrencyAndReportsFailures(t *testing.T) {
	var mu sync.Mutex
	inFlight, most, calls := 0, 0, 0
	err := forEach(40, 3, func(i int) error {
		mu.Lock()
		inFlight++
		calls++
		most = max(most, inFlight)
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		if i%10 == 0 {
			return fmt.Errorf("item %d", i)
		}
		return nil
	})
	if calls != 40 || most > 3 {
		t.Errorf("forEach made %d calls with up to %d at once, want 40 with at most 3", calls, most)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "4 of 40 failed, first: item ") {
		t.Errorf("err = %v, want one counting the 4 failures", err)
	}
	if err := forEach(0, 3, func(int) error { return errors.New("called") }); err != nil {
		t.Errorf("forEach of nothing: %v", err)
	}
}
