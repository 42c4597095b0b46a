package wire

import (
	"context"
	"sync"
)

// Window is the sender's side of a call's flow control: Take blocks until
// the caller has returned enough credit. A zero-sized window never blocks
// (the caller did not ask for flow control).
type Window struct {
	mu      sync.Mutex
	size    int
	avail   int
	changed chan struct{}
}

// NewWindow returns a window of size bytes (0: unlimited).
func NewWindow(size int) *Window {
	return &Window{size: size, avail: size, changed: make(chan struct{}, 1)}
}

// Take waits until n bytes fit, then uses them. A frame larger than the
// whole window waits for the window to be entirely free, so it is sent
// alone rather than never.
func (w *Window) Take(ctx context.Context, n int) error {
	if w.size <= 0 {
		return nil
	}
	need := min(n, w.size)
	for {
		w.mu.Lock()
		if w.avail >= need {
			w.avail -= n
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		select {
		case <-w.changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Give returns n bytes of credit.
func (w *Window) Give(n int) {
	if w.size <= 0 || n <= 0 {
		return
	}
	w.mu.Lock()
	w.avail = min(w.avail+n, w.size)
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}
