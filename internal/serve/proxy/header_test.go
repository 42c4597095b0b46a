package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"testing"
)

// writeHeader must write what Header.WriteSubset writes.
func TestWriteHeaderMatchesWriteSubset(t *testing.T) {
	many := http.Header{}
	for i := range 20 {
		many[fmt.Sprintf("X-K%02d", 19-i)] = []string{fmt.Sprint(i)}
	}
	cases := []struct {
		name    string
		h       http.Header
		exclude map[string]bool
	}{
		{"empty", http.Header{}, nil},
		{"one", http.Header{"Content-Type": {"text/plain"}}, nil},
		{"sorted", http.Header{"X-Request-Id": {"abc"}, "Content-Type": {"a"}, "B": {"1", "2"}, "A": {"0"}}, nil},
		{"newlines and spaces", http.Header{"X": {" a\r\nb \t", "\nc\r"}, "Y": {"\xff\n"}}, nil},
		{"invalid names", http.Header{"Bad Key": {"1"}, "": {"2"}, "Ok": {"3"}, "Ké": {"4"}}, nil},
		{"excluded", http.Header{"Trailer:A": {"1"}, "B": {"2"}}, map[string]bool{"Trailer:A": true}},
		{"more keys than the array", many, map[string]bool{"X-K03": true}},
	}
	for _, tc := range cases {
		var want bytes.Buffer
		if err := tc.h.WriteSubset(&want, tc.exclude); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		bw := bufio.NewWriter(&got)
		writeHeader(bw, tc.h, tc.exclude)
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: wrote %q, WriteSubset writes %q", tc.name, got.String(), want.String())
		}
	}
}
