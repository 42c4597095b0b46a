package builtin

import "testing"

func TestThreadBudget(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	unset := func(string) string { return "" }
	pinned := func(k string) string {
		if k == "GOMAXPROCS" {
			return "3"
		}
		return ""
	}
	for _, tc := range []struct {
		name    string
		numCPUs *float64
		current int
		getenv  func(string) string
		want    int
		wantSet bool
	}{
		{"no num_cpus: one thread", nil, 8, unset, 1, true},
		{"a fraction of a CPU: one thread", f(0.1), 8, unset, 1, true},
		{"zero CPUs: still one thread", f(0), 8, unset, 1, true},
		{"whole CPUs", f(2), 8, unset, 2, true},
		{"rounded up", f(2.5), 8, unset, 3, true},
		{"never above the runtime's own choice", f(16), 4, unset, 4, false},
		{"equal to the runtime's choice: left alone", f(1), 1, unset, 1, false},
		{"GOMAXPROCS in the environment wins", f(1), 8, pinned, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, set := threadBudget(tc.numCPUs, tc.current, tc.getenv)
			if n != tc.want || set != tc.wantSet {
				t.Errorf("threadBudget = %d, %v; want %d, %v", n, set, tc.want, tc.wantSet)
			}
		})
	}
}
