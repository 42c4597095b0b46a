package eventnote

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFit(t *testing.T) {
	if got := Fit("short"); got != "short" {
		t.Errorf("Fit(short) = %q", got)
	}
	long := strings.Repeat("é", Max) // 2 bytes each
	got := Fit(long)
	if len(got) > Max || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("Fit(long): %d bytes, valid UTF-8 %v, suffix %q", len(got), utf8.ValidString(got), got[len(got)-3:])
	}
	if got := Truncate("aé", 2); got != "a" {
		t.Errorf("Truncate cut inside a character: %q", got)
	}
}
