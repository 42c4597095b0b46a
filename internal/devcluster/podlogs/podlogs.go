// Package podlogs writes container output to files in the CRI log format kubelets use
// ("<RFC3339Nano time> <stdout|stderr> <F|P> <text>") and reads them back for `kubectl logs`
// with tail, since, timestamps, byte limits and follow.
package podlogs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// maxLine is the longest line written as one record; longer ones are split into partial ("P")
// records, as kubelets do.
const maxLine = 16 * 1024

// File is one container's log file, shared by its stdout and stderr writers.
type File struct {
	mu    sync.Mutex
	f     *os.File
	clock clock.PassiveClock
}

// Create opens path for appending (a restarted container keeps writing to a new file; the
// caller rotates the previous one away first).
func Create(path string, clk clock.PassiveClock) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &File{f: f, clock: clk}, nil
}

// Close closes the file.
func (l *File) Close() error { return l.f.Close() }

// Stream returns a writer for one stream ("stdout" or "stderr"); Close it to flush a last
// unterminated line.
func (l *File) Stream(name string) io.WriteCloser { return &streamWriter{file: l, stream: name} }

func (l *File) record(stream string, partial bool, text []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tag := "F"
	if partial {
		tag = "P"
	}
	var b bytes.Buffer
	b.WriteString(l.clock.Now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')
	_, err := l.f.Write(b.Bytes())
	return err
}

type streamWriter struct {
	file   *File
	stream string
	buf    []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if err := w.file.record(w.stream, false, w.buf[:i]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLine {
		if err := w.file.record(w.stream, true, w.buf[:maxLine]); err != nil {
			return 0, err
		}
		w.buf = w.buf[maxLine:]
	}
	return len(p), nil
}

func (w *streamWriter) Close() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.file.record(w.stream, false, w.buf)
	w.buf = nil
	return err
}

// Options select what Read returns; they mirror the kubelet's log options.
type Options struct {
	// Tail keeps only the last Tail lines when positive.
	Tail int
	// LimitBytes stops after that many bytes when positive.
	LimitBytes int
	// Timestamps prefixes each line with its RFC3339Nano time.
	Timestamps bool
	// Since drops lines written before it when not zero.
	Since time.Time
	// Follow keeps reading until ctx ends or Running reports false.
	Follow bool
	// Running reports whether the container may still write (used with Follow).
	Running func() bool
	// Poll is how often Follow looks for new lines (default 200ms).
	Poll time.Duration
}

// Read writes the log at path to w as plain text.
func Read(ctx context.Context, path string, opts Options, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	lw := &limitWriter{w: w, left: opts.LimitBytes}
	r := bufio.NewReaderSize(f, 64*1024)
	var lines [][]byte
	var pending []byte
	emit := func(line []byte) error {
		out, ok := format(line, opts)
		if !ok {
			return nil
		}
		if opts.Tail > 0 && lines != nil {
			lines = append(lines, out)
			if len(lines) > opts.Tail {
				lines = lines[1:]
			}
			return nil
		}
		_, err := lw.Write(out)
		return err
	}
	if opts.Tail > 0 {
		lines = make([][]byte, 0, opts.Tail+1)
	}
	readAvailable := func() error {
		for {
			chunk, err := r.ReadBytes('\n')
			pending = append(pending, chunk...)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			line := pending
			pending = nil
			if err := emit(bytes.TrimSuffix(line, []byte{'\n'})); err != nil {
				return err
			}
		}
	}
	if err := readAvailable(); err != nil {
		return ignoreLimit(err)
	}
	if lines != nil {
		for _, l := range lines {
			if _, err := lw.Write(l); err != nil {
				return ignoreLimit(err)
			}
		}
		lines = nil
	}
	if !opts.Follow {
		return nil
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		running := opts.Running == nil || opts.Running()
		if err := readAvailable(); err != nil {
			return ignoreLimit(err)
		}
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// format turns one CRI record into output text; ok is false for malformed or filtered lines.
func format(rec []byte, opts Options) ([]byte, bool) {
	ts, rest, ok := bytes.Cut(rec, []byte{' '})
	if !ok {
		return nil, false
	}
	_, rest, ok = bytes.Cut(rest, []byte{' '}) // stream
	if !ok {
		return nil, false
	}
	tag, text, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return nil, false
	}
	if !opts.Since.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		if err == nil && t.Before(opts.Since) {
			return nil, false
		}
	}
	var out []byte
	if opts.Timestamps {
		out = append(out, ts...)
		out = append(out, ' ')
	}
	out = append(out, text...)
	if string(tag) != "P" {
		out = append(out, '\n')
	}
	return out, true
}

var errLimit = errors.New("log byte limit reached")

type limitWriter struct {
	w    io.Writer
	left int // <=0 with limit unset means unlimited; see Write
	used bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 && !l.used {
		return l.w.Write(p)
	}
	l.used = true
	if l.left <= 0 {
		return 0, errLimit
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.w.Write(p)
	l.left -= n
	if err == nil && l.left <= 0 {
		return n, errLimit
	}
	return n, err
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}
