package gcfloor

import (
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvVar {
				return v
			}
			return ""
		}
	}
	for raw, want := range map[string]int{"": 7, "0": 0, "32": 32, "65536": 65536} {
		if got, err := FromEnv(env(raw), 7); err != nil || got != want {
			t.Errorf("FromEnv(%q) = %d, %v; want %d", raw, got, err, want)
		}
	}
	for _, raw := range []string{"-1", "x", "1.5", "65537", " 8"} {
		_, err := FromEnv(env(raw), 7)
		if err == nil || !strings.Contains(err.Error(), EnvVar) || !strings.Contains(err.Error(), raw) {
			t.Errorf("FromEnv(%q) error = %v, want one naming %s and the value", raw, err, EnvVar)
		}
	}
}

// heapGoal is the heap size at which the collector starts its next cycle.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestHoldRaisesTheHeapGoalUntilReleased(t *testing.T) {
	runtime.GC()
	base := heapGoal()
	f := Hold(64)
	if f.Size() != 64<<20 {
		t.Fatalf("Size = %d, want 64 MiB", f.Size())
	}
	runtime.GC()
	if held := heapGoal(); held < base+64<<20 {
		t.Errorf("heap goal with a 64 MiB floor = %d, want at least %d (without: %d)", held, base+64<<20, base)
	}
	f.Release()
	runtime.GC()
	if after := heapGoal(); after >= base+64<<20 {
		t.Errorf("heap goal after Release = %d, want it back near %d", after, base)
	}
	if Hold(0).Size() != 0 {
		t.Error("Hold(0) holds memory")
	}
}
