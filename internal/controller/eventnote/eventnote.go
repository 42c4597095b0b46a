// Package eventnote keeps event notes (and condition messages) within what the API accepts: a longer note
// makes the API server reject the event, and the recorder drops it silently.
package eventnote

import "unicode/utf8"

// Max is the longest note events.k8s.io accepts, in bytes.
const Max = 1024

// Fit shortens a note to Max bytes at a UTF-8 boundary, marking the cut with "...".
func Fit(s string) string {
	if len(s) <= Max {
		return s
	}
	return Truncate(s, Max-3) + "..."
}

// Truncate shortens s to at most n bytes at a UTF-8 boundary.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
