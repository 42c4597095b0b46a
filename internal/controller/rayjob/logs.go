package rayjob

import (
	"strings"
	"unicode/utf8"
)

// LogTailBytes is how much of the end of a driver log is kept when a job ends.
const LogTailBytes = 4096

// logTail returns at most n bytes from the end of s, starting at a line boundary when one is near
// and always at a UTF-8 character boundary.
func logTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	t := s[len(s)-n:]
	if i := strings.IndexByte(t, '\n'); i >= 0 && i < 256 && i+1 < len(t) {
		return t[i+1:]
	}
	for len(t) > 0 && !utf8.RuneStart(t[0]) {
		t = t[1:]
	}
	return t
}

// splitNote cuts s into pieces of at most n bytes at UTF-8 boundaries.
func splitNote(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
