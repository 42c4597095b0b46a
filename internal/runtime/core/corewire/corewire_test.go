package corewire

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := &Message{Header: Header{ID: 7, Op: "put", Body: JSON(map[string]string{"object_id": "x"})}, Parts: [][]byte{[]byte("abc"), {}, []byte("defg")}}
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != 7 || out.Op != "put" || len(out.Parts) != 3 || string(out.Parts[0]) != "abc" || len(out.Parts[1]) != 0 || string(out.Parts[2]) != "defg" {
		t.Fatalf("round trip = %+v", out)
	}
	var body map[string]string
	if err := out.Decode(&body); err != nil || body["object_id"] != "x" {
		t.Fatalf("body = %v, %v", body, err)
	}
}

func TestReadRejectsPartsBeyondTheBody(t *testing.T) {
	var buf bytes.Buffer
	m := &Message{Header: Header{Op: "x"}, Parts: [][]byte{[]byte("ab")}}
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	// Claim a 5-byte part in a 2-byte body.
	raw = bytes.Replace(raw, []byte(`"b":[2]`), []byte(`"b":[5]`), 1)
	if _, err := Read(bufio.NewReader(bytes.NewReader(raw))); err == nil {
		t.Fatal("a part larger than the body was accepted")
	}
}

func TestCallsBothWaysAndErrors(t *testing.T) {
	a, b := net.Pipe()
	server := NewConn(a, func(c *Conn, m *Message) (*Message, error) {
		switch m.Op {
		case "echo":
			return &Message{Parts: m.Parts}, nil
		case "ask_back":
			// The server calls the client while answering.
			reply, err := c.Call(&Message{Header: Header{Op: "name"}})
			if err != nil {
				return nil, err
			}
			return &Message{Parts: reply.Parts}, nil
		}
		return nil, &RemoteError{Type: "ValueError", Message: "unknown op " + m.Op}
	})
	client := NewConn(b, func(*Conn, *Message) (*Message, error) {
		return &Message{Parts: [][]byte{[]byte("client")}}, nil
	})
	go func() { _ = server.Serve() }()
	go func() { _ = client.Serve() }()
	defer client.Close()

	reply, err := client.Call(&Message{Header: Header{Op: "echo"}, Parts: [][]byte{[]byte("hi")}})
	if err != nil || string(reply.Parts[0]) != "hi" {
		t.Fatalf("echo = %v, %v", reply, err)
	}
	reply, err = client.Call(&Message{Header: Header{Op: "ask_back"}})
	if err != nil || string(reply.Parts[0]) != "client" {
		t.Fatalf("ask_back = %v, %v", reply, err)
	}
	_, err = client.Call(&Message{Header: Header{Op: "nope"}})
	var re *RemoteError
	if !errors.As(err, &re) || re.Type != "ValueError" || re.Message != "unknown op nope" {
		t.Fatalf("error reply = %v", err)
	}
	server.Close()
	if _, err := client.Call(&Message{Header: Header{Op: "echo"}}); !errors.Is(err, ErrClosed) && err == nil {
		t.Fatalf("call on a closed connection = %v", err)
	}
}

func TestInlineNotificationsKeepOrderBeforeLaterRequests(t *testing.T) {
	a, b := net.Pipe()
	var seen []string
	server := NewConn(a, func(_ *Conn, m *Message) (*Message, error) {
		if m.Op == "read" {
			out := &Message{}
			for _, s := range seen {
				out.Parts = append(out.Parts, []byte(s))
			}
			return out, nil
		}
		seen = append(seen, string(m.Parts[0]))
		return nil, nil
	})
	server.Inline("push")
	client := NewConn(b, func(*Conn, *Message) (*Message, error) { return nil, nil })
	go func() { _ = server.Serve() }()
	go func() { _ = client.Serve() }()
	defer client.Close()
	for _, s := range []string{"1", "2", "3", "4", "5"} {
		if err := client.Send(&Message{Header: Header{Op: "push"}, Parts: [][]byte{[]byte(s)}}); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := client.Call(&Message{Header: Header{Op: "read"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range reply.Parts {
		got = append(got, string(p))
	}
	if len(got) != 5 || got[0] != "1" || got[4] != "5" {
		t.Fatalf("seen = %v, want 1..5 in order", got)
	}
}

type startFuncResult struct {
	reply *Message
	err   error
}

func TestStartFuncDeliversRepliesErrorsAndTheEnd(t *testing.T) {
	a, b := net.Pipe()
	hold := make(chan struct{})
	server := NewConn(a, func(_ *Conn, m *Message) (*Message, error) {
		switch m.Op {
		case "echo":
			return &Message{Parts: m.Parts}, nil
		case "hold":
			<-hold
			return nil, nil
		}
		return nil, &RemoteError{Type: "ValueError", Message: "unknown op " + m.Op}
	})
	client := NewConn(b, func(*Conn, *Message) (*Message, error) { return nil, nil })
	go func() { _ = server.Serve() }()
	go func() { _ = client.Serve() }()
	defer close(hold)

	start := func(op string) chan startFuncResult {
		out := make(chan startFuncResult, 1)
		err := client.StartFunc(&Message{Header: Header{Op: op}, Parts: [][]byte{[]byte(op)}}, func(m *Message, err error) {
			out <- startFuncResult{m, err}
		})
		if err != nil {
			t.Fatalf("StartFunc(%s) = %v", op, err)
		}
		return out
	}
	if r := <-start("echo"); r.err != nil || string(r.reply.Parts[0]) != "echo" {
		t.Fatalf("echo = %v, %v", r.reply, r.err)
	}
	var re *RemoteError
	if r := <-start("nope"); !errors.As(r.err, &re) || re.Type != "ValueError" {
		t.Fatalf("error reply = %v", r.err)
	}
	held := start("hold")
	client.Close()
	if r := <-held; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("a call pending when the connection ended = %v, %v", r.reply, r.err)
	}
	err := client.StartFunc(&Message{Header: Header{Op: "echo"}}, func(*Message, error) {
		t.Error("done ran for a call that was never sent")
	})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("StartFunc on a closed connection = %v", err)
	}
}

func TestInlineRequestsAnsweredLaterKeepTheirIDs(t *testing.T) {
	a, b := net.Pipe()
	waiting := make(chan *Message, 2)
	server := NewConn(a, func(c *Conn, m *Message) (*Message, error) {
		switch m.Op {
		case "later":
			waiting <- m
			return nil, ErrLater
		case "now":
			return &Message{Parts: [][]byte{[]byte("now")}}, nil
		}
		return nil, &RemoteError{Type: "ValueError", Message: "unknown op " + m.Op}
	})
	server.Inline("later", "now")
	client := NewConn(b, func(*Conn, *Message) (*Message, error) { return nil, nil })
	go func() { _ = server.Serve() }()
	go func() { _ = client.Serve() }()
	defer client.Close()

	first, err := client.Start(&Message{Header: Header{Op: "later"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Start(&Message{Header: Header{Op: "later"}})
	if err != nil {
		t.Fatal(err)
	}
	// The handler ran on the reading goroutine and returned: an inline
	// request after them is answered while they wait.
	if r, err := client.Call(&Message{Header: Header{Op: "now"}}); err != nil || string(r.Parts[0]) != "now" {
		t.Fatalf("now = %v, %v", r, err)
	}
	m1, m2 := <-waiting, <-waiting
	// Answered in the other order, each reply finds its own caller.
	server.Answer(m2, nil, &RemoteError{Type: "GetTimeoutError", Message: "late"})
	server.Answer(m1, &Message{Parts: [][]byte{[]byte("one")}}, nil)
	if r, err := first(); err != nil || string(r.Parts[0]) != "one" {
		t.Fatalf("first = %v, %v", r, err)
	}
	var re *RemoteError
	if _, err := second(); !errors.As(err, &re) || re.Type != "GetTimeoutError" {
		t.Fatalf("second = %v, want a GetTimeoutError reply", err)
	}
}

// BenchmarkMessageWriteRead is one request through the codec both ways, as
// every core call makes it.
func BenchmarkMessageWriteRead(b *testing.B) {
	body := JSON(map[string]any{"kind": "actor_call", "task_id": "0123456789abcdef0123456789abcdef0123456789abcdef01234567", "job": "01020304", "method": "noop", "num_returns": 1, "namespace": "ns"})
	args := bytes.Repeat([]byte{1}, 40)
	var buf bytes.Buffer
	r := bufio.NewReader(&buf)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		r.Reset(&buf)
		m := &Message{Header: Header{ID: uint64(i + 1), Op: "execute", Body: body}, Parts: [][]byte{args}}
		if err := Write(&buf, m); err != nil {
			b.Fatal(err)
		}
		if _, err := Read(r); err != nil {
			b.Fatal(err)
		}
	}
}
