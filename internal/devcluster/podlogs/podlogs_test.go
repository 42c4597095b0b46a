package podlogs

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func write(t *testing.T) (string, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "0.log")
	f, err := Create(path, clk)
	if err != nil {
		t.Fatal(err)
	}
	out, errw := f.Stream("stdout"), f.Stream("stderr")
	_, _ = out.Write([]byte("one\ntw"))
	clk.Step(time.Second)
	_, _ = out.Write([]byte("o\n"))
	_, _ = errw.Write([]byte("oops\n"))
	clk.Step(time.Second)
	_, _ = out.Write([]byte("three"))
	_ = out.Close()
	_ = errw.Close()
	_ = f.Close()
	return path, clk
}

func read(t *testing.T, path string, o Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := Read(context.Background(), path, o, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRead(t *testing.T) {
	path, _ := write(t)
	if got := read(t, path, Options{}); got != "one\ntwo\noops\nthree\n" {
		t.Errorf("all = %q", got)
	}
	if got := read(t, path, Options{Tail: 2}); got != "oops\nthree\n" {
		t.Errorf("tail 2 = %q", got)
	}
	if got := read(t, path, Options{LimitBytes: 6}); got != "one\ntw" {
		t.Errorf("limit 6 = %q", got)
	}
	if got := read(t, path, Options{Since: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)}); got != "two\noops\nthree\n" {
		t.Errorf("since = %q", got)
	}
	got := read(t, path, Options{Timestamps: true, Tail: 1})
	if got != "2026-01-02T03:04:07Z three\n" {
		t.Errorf("timestamps = %q", got)
	}
}

func TestLongLinesArePartial(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	path := filepath.Join(t.TempDir(), "0.log")
	f, _ := Create(path, clk)
	w := f.Stream("stdout")
	long := strings.Repeat("x", maxLine+10)
	_, _ = w.Write([]byte(long + "\n"))
	_ = w.Close()
	_ = f.Close()
	if got := read(t, path, Options{}); got != long+"\n" {
		t.Errorf("long line read back as %d bytes, want %d", len(got), len(long)+1)
	}
}

func TestFollowStopsWhenContainerStops(t *testing.T) {
	path, _ := write(t)
	polls := 0
	var b bytes.Buffer
	err := Read(context.Background(), path, Options{Follow: true, Poll: time.Millisecond, Running: func() bool {
		polls++
		return polls < 3
	}}, &b)
	if err != nil || b.String() != "one\ntwo\noops\nthree\n" || polls != 3 {
		t.Fatalf("follow: %q, %v, %d polls", b.String(), err, polls)
	}
}
