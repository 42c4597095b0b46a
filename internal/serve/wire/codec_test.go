package wire

import (
	"bytes"
	"encoding/json"
	"net"
	"reflect"
	"testing"
)

// The fast paths must agree with encoding/json both ways, and fall back to
// it for every shape they do not handle.
func TestAcceptCodecMatchesJSON(t *testing.T) {
	for _, a := range []Accept{
		{Accepted: true, Ongoing: 0},
		{Accepted: true, Ongoing: 123456},
		{Accepted: false, Ongoing: 7},
		{Accepted: true, Ongoing: 2, Models: []string{"m1", "m2"}},
		{Accepted: false},
	} {
		enc := EncodeAccept(a)
		var viaJSON Accept
		if err := json.Unmarshal(enc, &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, a) {
			t.Errorf("EncodeAccept(%+v) = %s, which encoding/json reads as %+v (%v)", a, enc, viaJSON, err)
		}
		if got := DecodeAccept(JSON(a)); !reflect.DeepEqual(got, a) {
			t.Errorf("DecodeAccept(%s) = %+v, want %+v", JSON(a), got, a)
		}
	}
	// What the Python replica writes, and what neither side writes.
	for in, want := range map[string]Accept{
		`{"accepted":true,"ongoing":3}`:                 {Accepted: true, Ongoing: 3},
		`{"accepted": true, "ongoing": 3}`:              {Accepted: true, Ongoing: 3},
		`{"accepted":true,"ongoing":3,"models":["a"]}`:  {Accepted: true, Ongoing: 3, Models: []string{"a"}},
		`{"accepted":true,"ongoing":99999999999}`:       {Accepted: true, Ongoing: 99999999999},
		`{"accepted":true,"ongoing":}`:                  {},
		`not json`:                                      {},
		`{"accepted":true,"ongoing":3}trailing garbage`: {},
	} {
		if got := DecodeAccept([]byte(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeAccept(%s) = %+v, want %+v", in, got, want)
		}
	}
}

func TestHeadCodecMatchesJSON(t *testing.T) {
	for _, h := range []Head{
		{Status: 200},
		{Status: 404, Headers: [][2]string{{"content-type", "text/plain; charset=utf-8"}}},
		{Status: 200, Headers: [][2]string{{"a", "1"}, {"b", ""}, {"x-serve-encoding", "pickle"}}},
		{Status: 500, Headers: [][2]string{{"quote", `say "hi"`}, {"back", `a\b`}, {"utf8", "é"}, {"ctl", "a\tb"}, {"html", "<&>"}}},
	} {
		enc := EncodeHead(h)
		var viaJSON Head
		if err := json.Unmarshal(enc, &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, h) {
			t.Errorf("EncodeHead(%+v) = %s, which encoding/json reads as %+v (%v)", h, enc, viaJSON, err)
		}
		for _, in := range [][]byte{enc, JSON(h)} {
			got, err := DecodeHead(in)
			if err != nil || !reflect.DeepEqual(got, h) {
				t.Errorf("DecodeHead(%s) = %+v, %v; want %+v", in, got, err, h)
			}
		}
	}
	// The Python replica's encoding, and malformed payloads.
	got, err := DecodeHead([]byte(`{"status":200,"headers":[["content-type","application/octet-stream"]]}`))
	if err != nil || got.Status != 200 || len(got.Headers) != 1 || got.Headers[0] != [2]string{"content-type", "application/octet-stream"} {
		t.Errorf("Python HEAD decoded as %+v, %v", got, err)
	}
	for _, bad := range []string{`{"status":`, `{"status":200,"headers":[["a","b"]`, `{}x`} {
		if _, err := DecodeHead([]byte(bad)); err == nil {
			t.Errorf("DecodeHead(%s) succeeded, want an error", bad)
		}
	}
}

// BenchmarkCodec measures what every call encodes and decodes: OPEN's Meta
// (JSON), ACCEPT and HEAD (fast paths) and a frame's header.
func BenchmarkCodec(b *testing.B) {
	meta := Meta{Kind: KindHTTP, RequestID: "3f2b8c1e-7a4d-4e9b-9c1a-0d6e5f4a3b2c", Method: "GET", Path: "/noop", RoutePrefix: "/noop",
		Headers: [][2]string{{"host", "127.0.0.1:8000"}, {"user-agent", "wrk"}}, Client: "127.0.0.1:50000", Window: DefaultWindow}
	metaJSON := JSON(meta)
	head := Head{Status: 200, Headers: [][2]string{{"content-type", "application/octet-stream"}}}
	headJSON := EncodeHead(head)
	accept := EncodeAccept(Accept{Accepted: true, Ongoing: 3})
	b.Run("encode-meta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = JSON(meta)
		}
	})
	b.Run("decode-meta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m Meta
			if err := json.Unmarshal(metaJSON, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-accept", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = EncodeAccept(Accept{Accepted: true, Ongoing: 3})
		}
	})
	b.Run("decode-accept", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !DecodeAccept(accept).Accepted {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("encode-head", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = EncodeHead(head)
		}
	})
	b.Run("decode-head", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeHead(headJSON); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("frame-roundtrip", func(b *testing.B) {
		b.ReportAllocs()
		buf := AppendFrame(nil, 7, TypeOpen, metaJSON)
		r := bytes.NewReader(buf)
		for b.Loop() {
			r.Reset(buf)
			if _, err := ReadFrame(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkConnCall is a whole no-op call over a Conn pair (the agent and
// a replica): OPEN+END one way, ACCEPT, HEAD and END back.
func BenchmarkConnCall(b *testing.B) {
	a, c := net.Pipe()
	replica := NewConn(c, false, func(s *ConnStream) {
		go func() {
			defer s.Close()
			for {
				f, err := s.Recv(b.Context())
				if err != nil || f.Type == TypeEnd {
					break
				}
			}
			_ = s.SendLater(Out{Type: TypeAccept, Payload: EncodeAccept(Accept{Accepted: true, Ongoing: 1})})
			_ = s.Send(Out{Type: TypeHead, Payload: EncodeHead(Head{Status: 200})}, Out{Type: TypeEnd})
		}()
	})
	defer func() { _ = replica.Close() }()
	agent := NewConn(a, true, nil)
	defer func() { _ = agent.Close() }()
	meta := Meta{Kind: KindHTTP, Method: "GET", Path: "/"}
	b.ReportAllocs()
	for b.Loop() {
		s, err := agent.Open()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Call(b.Context(), s, meta, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// OnControl takes the CANCEL and CREDIT frames already received and those
// that follow, leaves other frames to Recv, and reports the stream's end
// once.
func TestOnControlTakesControlFrames(t *testing.T) {
	q := newFrameQueue()
	q.push(Frame{Type: TypeCredit, Payload: Credit(5)})
	q.push(Frame{Type: TypeData, Payload: []byte("x")})
	var got []byte
	ends := 0
	q.OnControl(func(f *Frame) {
		if f == nil {
			ends++
			return
		}
		got = append(got, f.Type)
	})
	q.push(Frame{Type: TypeCancel})
	q.push(Frame{Type: TypeEnd})
	q.fail(ErrClosed)
	q.fail(ErrClosed)
	if !bytes.Equal(got, []byte{TypeCredit, TypeCancel}) || ends != 1 {
		t.Fatalf("control frames %v, ends %d; want [CREDIT CANCEL] and 1", got, ends)
	}
	for _, want := range []byte{TypeData, TypeEnd} {
		f, err := q.Recv(t.Context())
		if err != nil || f.Type != want {
			t.Fatalf("Recv = %v, %v; want type %d", f.Type, err, want)
		}
	}
	if _, err := q.Recv(t.Context()); err == nil {
		t.Fatal("Recv after the frames succeeded, want the failure")
	}
}
