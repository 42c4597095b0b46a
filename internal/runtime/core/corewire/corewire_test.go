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
