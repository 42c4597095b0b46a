package wire

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// OPEN's Meta is the largest JSON every call carries, and the agent's
// proxy encodes it while the replica decodes it on every call. EncodeMeta
// and DecodeMeta write and read it without reflection: still JSON, with
// encoding/json's field names and omitempty rules, so the Python side and
// any other JSON reader see the same object. What the fast paths do not
// handle (escapes in a string, invalid UTF-8, unknown or differently cased
// keys, null, numbers that are not plain integers) goes through
// encoding/json, which then decides.

// EncodeMeta encodes an OPEN payload.
func EncodeMeta(m *Meta) []byte { return AppendMeta(nil, m) }

// AppendMeta appends the encoding of an OPEN payload to b.
func AppendMeta(b []byte, m *Meta) []byte {
	n := 64 + len(m.Kind) + len(m.RequestID) + len(m.App) + len(m.Deployment) + len(m.Method) + len(m.Path) +
		len(m.Query) + len(m.RoutePrefix) + len(m.Client) + len(m.Encoding) + len(m.MultiplexedModelID)
	for _, kv := range m.Headers {
		n += len(kv[0]) + len(kv[1]) + 8
	}
	b = slices.Grow(b, n+160)
	open := len(b)
	ok := true
	field := func(name, v string, always bool) {
		if v == "" && !always {
			return
		}
		if len(b) > open+1 {
			b = append(b, ',')
		}
		b = append(b, name...)
		var fine bool
		b, fine = appendString(b, v)
		ok = ok && fine
	}
	b = append(b, '{')
	field(`"kind":`, m.Kind, true)
	field(`"request_id":`, m.RequestID, false)
	field(`"app":`, m.App, false)
	field(`"deployment":`, m.Deployment, false)
	field(`"method":`, m.Method, false)
	field(`"path":`, m.Path, false)
	field(`"query":`, m.Query, false)
	field(`"route_prefix":`, m.RoutePrefix, false)
	if len(m.Headers) > 0 {
		b = append(b, `,"headers":[`...)
		for i, kv := range m.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			var f1, f2 bool
			b = append(b, '[')
			b, f1 = appendString(b, kv[0])
			b = append(b, ',')
			b, f2 = appendString(b, kv[1])
			b = append(b, ']')
			ok = ok && f1 && f2
		}
		b = append(b, ']')
	}
	field(`"client":`, m.Client, false)
	field(`"encoding":`, m.Encoding, false)
	field(`"multiplexed_model_id":`, m.MultiplexedModelID, false)
	if m.TimeoutMS != 0 {
		b = append(b, `,"timeout_ms":`...)
		b = strconv.AppendInt(b, m.TimeoutMS, 10)
	}
	if m.Stream {
		b = append(b, `,"stream":true`...)
	}
	if m.Window != 0 {
		b = append(b, `,"window":`...)
		b = strconv.AppendInt(b, int64(m.Window), 10)
	}
	if len(m.GRPCServicerFunctions) > 0 {
		b = append(b, `,"grpc_servicer_functions":[`...)
		for i, s := range m.GRPCServicerFunctions {
			if i > 0 {
				b = append(b, ',')
			}
			var fine bool
			b, fine = appendString(b, s)
			ok = ok && fine
		}
		b = append(b, ']')
	}
	if !ok {
		// A copy: handing m itself to an interface would move every
		// caller's Meta to the heap.
		cp := *m
		return append(b[:open], JSON(cp)...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string; it reports false for what it
// leaves to encoding/json (invalid UTF-8, which that replaces).
func appendString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			continue
		}
		if c >= utf8.RuneSelf {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"'), utf8.ValidString(s)
}

// DecodeMeta decodes an OPEN payload.
func DecodeMeta(p []byte) (Meta, error) {
	if m, ok := decodeMetaFast(p); ok {
		return m, nil
	}
	var m Meta
	err := json.Unmarshal(p, &m)
	return m, err
}

// metaParser reads the payload from one string, so the Meta's strings are
// slices of a single allocation.
type metaParser struct {
	s string
	i int
}

func (p *metaParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next.
func (p *metaParser) next(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *metaParser) peek() byte {
	p.space()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// str reads a string without escapes (those go to encoding/json).
func (p *metaParser) str() (string, bool) {
	if !p.next('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// integer reads a plain integer (no fraction or exponent) of up to 18
// digits.
func (p *metaParser) integer() (int64, bool) {
	p.space()
	neg := p.i < len(p.s) && p.s[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	var n int64
	for ; p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9'; p.i++ {
		n = n*10 + int64(p.s[p.i]-'0')
	}
	d := p.i - start
	if d == 0 || d > 18 || (d > 1 && p.s[start] == '0') {
		return 0, false
	}
	if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// strings reads an array of strings.
func (p *metaParser) strings() ([]string, bool) {
	if !p.next('[') {
		return nil, false
	}
	var out []string
	if p.next(']') {
		return []string{}, true
	}
	for {
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if p.next(']') {
			return out, true
		}
		if !p.next(',') {
			return nil, false
		}
	}
}

func (p *metaParser) headers() ([][2]string, bool) {
	if !p.next('[') {
		return nil, false
	}
	if p.next(']') {
		return [][2]string{}, true
	}
	out := make([][2]string, 0, 8)
	for {
		var kv [2]string
		var ok bool
		if !p.next('[') {
			return nil, false
		}
		if kv[0], ok = p.str(); !ok || !p.next(',') {
			return nil, false
		}
		if kv[1], ok = p.str(); !ok || !p.next(']') {
			return nil, false
		}
		out = append(out, kv)
		if p.next(']') {
			return out, true
		}
		if !p.next(',') {
			return nil, false
		}
	}
}

func decodeMetaFast(b []byte) (Meta, bool) {
	var m Meta
	if !utf8.Valid(b) {
		return m, false
	}
	p := &metaParser{s: string(b)}
	if !p.next('{') {
		return m, false
	}
	if p.next('}') {
		p.space()
		return m, p.i == len(p.s)
	}
	for {
		key, ok := p.str()
		if !ok || !p.next(':') {
			return m, false
		}
		var s *string
		switch key {
		case "kind":
			s = &m.Kind
		case "request_id":
			s = &m.RequestID
		case "app":
			s = &m.App
		case "deployment":
			s = &m.Deployment
		case "method":
			s = &m.Method
		case "path":
			s = &m.Path
		case "query":
			s = &m.Query
		case "route_prefix":
			s = &m.RoutePrefix
		case "client":
			s = &m.Client
		case "encoding":
			s = &m.Encoding
		case "multiplexed_model_id":
			s = &m.MultiplexedModelID
		case "headers":
			if m.Headers, ok = p.headers(); !ok {
				return m, false
			}
		case "grpc_servicer_functions":
			if m.GRPCServicerFunctions, ok = p.strings(); !ok {
				return m, false
			}
		case "timeout_ms":
			if m.TimeoutMS, ok = p.integer(); !ok {
				return m, false
			}
		case "window":
			n, ok := p.integer()
			if !ok {
				return m, false
			}
			m.Window = int(n)
		case "stream":
			switch {
			case p.peek() == 't' && len(p.s)-p.i >= 4 && p.s[p.i:p.i+4] == "true":
				m.Stream, p.i = true, p.i+4
			case p.peek() == 'f' && len(p.s)-p.i >= 5 && p.s[p.i:p.i+5] == "false":
				m.Stream, p.i = false, p.i+5
			default:
				return m, false
			}
		default:
			return m, false
		}
		if s != nil {
			if *s, ok = p.str(); !ok {
				return m, false
			}
		}
		if p.next('}') {
			p.space()
			return m, p.i == len(p.s)
		}
		if !p.next(',') {
			return m, false
		}
	}
}
