package raycluster

import (
	"fmt"
	"strings"
	"testing"
)

func TestListNames(t *testing.T) {
	names := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("p%d", i)
		}
		return out
	}
	if got, want := listNames(names(3)), "p0, p1, p2"; got != want {
		t.Fatalf("listNames(3) = %q, want %q", got, want)
	}
	got := listNames(names(25))
	if !strings.HasPrefix(got, "p0, p1,") || !strings.HasSuffix(got, "p9 and 15 more") || strings.Contains(got, "p10") {
		t.Fatalf("listNames(25) = %q, want the first %d names and a count of the rest", got, maxNamesInEvent)
	}
}
