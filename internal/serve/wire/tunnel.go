package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Tunnel carries one call's frames over one HTTP/2 request between nodes:
// the request body holds the caller's frames, the response body the
// replica's. Cancelling the request cancels the call.

// TunnelContentType marks tunnelled frame bodies.
const TunnelContentType = "application/x-rayk8s-serve-frames"

// NewH2CClient returns an HTTP client that speaks HTTP/2 without TLS, so
// every call to a peer shares one connection per peer.
func NewH2CClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p, MaxIdleConnsPerHost: 4}}
}

// OpenTunnel starts a call to url (a node agent's replica endpoint). The
// stream lives until Close or ctx ends.
func OpenTunnel(ctx context.Context, client *http.Client, url string) (Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("building tunnel request: %w", err)
	}
	req.Header.Set("Content-Type", TunnelContentType)
	t := &tunnelStream{frameQueue: newFrameQueue(), pw: pw, cancel: cancel}
	go t.run(client, req)
	return t, nil
}

type tunnelStream struct {
	frameQueue
	wmu    sync.Mutex
	pw     *io.PipeWriter
	buf    []byte
	cancel context.CancelFunc
}

func (t *tunnelStream) run(client *http.Client, req *http.Request) {
	resp, err := client.Do(req)
	if err != nil {
		t.fail(fmt.Errorf("calling %s: %w", req.URL.Host, err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		t.fail(fmt.Errorf("calling %s: HTTP %d: %s", req.URL.Host, resp.StatusCode, body))
		return
	}
	r := bufio.NewReader(resp.Body)
	for {
		f, err := ReadFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = ErrClosed
			}
			t.fail(err)
			return
		}
		t.push(f)
	}
}

func (t *tunnelStream) Send(frames ...Out) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	b := t.buf[:0]
	for _, f := range frames {
		b = AppendFrame(b, 0, f.Type, f.Payload)
	}
	t.buf = b
	if _, err := t.pw.Write(b); err != nil {
		return fmt.Errorf("sending to peer: %w", err)
	}
	return nil
}

func (t *tunnelStream) Close() {
	t.cancel()
	_ = t.pw.Close()
	t.fail(ErrClosed)
}

// ServeTunnel bridges an incoming tunnel request to stream s: frames from
// the request body go to s, frames from s to the response, until s ends a
// call (END or ERROR after HEAD, or a rejecting ACCEPT) or the caller goes
// away.
func ServeTunnel(w http.ResponseWriter, r *http.Request, s Stream) {
	defer s.Close()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", TunnelContentType)
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	ctx := r.Context()
	go func() {
		br := bufio.NewReader(r.Body)
		for {
			f, err := ReadFrame(br)
			if err != nil {
				return
			}
			if s.Send(Out{Type: f.Type, Payload: f.Payload}) != nil {
				return
			}
			if f.Type == TypeCancel {
				return
			}
		}
	}()
	var buf []byte
	for {
		f, err := s.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				_ = s.Send(Out{Type: TypeCancel})
				return
			}
			buf = AppendFrame(buf[:0], 0, TypeError, JSON(Error{Kind: ErrUnavailable, Message: err.Error()}))
			_, _ = w.Write(buf)
			return
		}
		buf = AppendFrame(buf[:0], 0, f.Type, f.Payload)
		if _, err := w.Write(buf); err != nil {
			_ = s.Send(Out{Type: TypeCancel})
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if Terminal(f) {
			return
		}
	}
}

// Terminal reports whether f ends a call seen from the caller's side.
func Terminal(f Frame) bool {
	switch f.Type {
	case TypeEnd, TypeError:
		return true
	case TypeAccept:
		return !DecodeAccept(f.Payload).Accepted
	}
	return false
}
