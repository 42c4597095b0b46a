package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The answers every call carries (ACCEPT, HEAD) have fast paths for the
// shapes both replica runtimes produce: JSON all the same, but encoded and
// decoded without reflection. Anything else (models in an ACCEPT, escapes
// in a header) goes through encoding/json.

var (
	acceptTrue  = []byte(`{"accepted":true,"ongoing":`)
	acceptFalse = []byte(`{"accepted":false,"ongoing":`)
)

// EncodeAccept encodes an ACCEPT payload.
func EncodeAccept(a Accept) []byte {
	if a.Models != nil || a.Ongoing < 0 {
		return JSON(a)
	}
	b := make([]byte, 0, len(acceptFalse)+12)
	if a.Accepted {
		b = append(b, acceptTrue...)
	} else {
		b = append(b, acceptFalse...)
	}
	b = strconv.AppendInt(b, int64(a.Ongoing), 10)
	return append(b, '}')
}

// DecodeAccept decodes an ACCEPT payload (a malformed one rejects).
func DecodeAccept(p []byte) Accept {
	if a, ok := decodeAcceptFast(p); ok {
		return a
	}
	var a Accept
	if json.Unmarshal(p, &a) != nil {
		return Accept{}
	}
	return a
}

func decodeAcceptFast(p []byte) (Accept, bool) {
	var a Accept
	switch {
	case bytes.HasPrefix(p, acceptTrue):
		a.Accepted = true
		p = p[len(acceptTrue):]
	case bytes.HasPrefix(p, acceptFalse):
		p = p[len(acceptFalse):]
	default:
		return a, false
	}
	n, rest, ok := leadingInt(p)
	if !ok || len(rest) != 1 || rest[0] != '}' {
		return Accept{}, false
	}
	a.Ongoing = n
	return a, true
}

// leadingInt parses the digits p starts with (at most 9 of them).
func leadingInt(p []byte) (int, []byte, bool) {
	n, i := 0, 0
	for ; i < len(p) && i < 10 && p[i] >= '0' && p[i] <= '9'; i++ {
		n = n*10 + int(p[i]-'0')
	}
	if i == 0 || i == 10 {
		return 0, p, false
	}
	return n, p[i:], true
}

// EncodeHead encodes a HEAD payload.
func EncodeHead(h Head) []byte {
	b := make([]byte, 0, 32+32*len(h.Headers))
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(h.Status), 10)
	if len(h.Headers) > 0 {
		b = append(b, `,"headers":[`...)
		for i, kv := range h.Headers {
			if !plainString(kv[0]) || !plainString(kv[1]) {
				return JSON(h)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `["`...)
			b = append(b, kv[0]...)
			b = append(b, `","`...)
			b = append(b, kv[1]...)
			b = append(b, `"]`...)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// plainString reports whether s encodes in JSON as itself between quotes
// (printable ASCII without '"' and '\').
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// DecodeHead decodes a HEAD payload.
func DecodeHead(p []byte) (Head, error) {
	if h, ok := decodeHeadFast(p); ok {
		return h, nil
	}
	var h Head
	err := json.Unmarshal(p, &h)
	return h, err
}

// decodeHeadFast reads {"status":N} and {"status":N,"headers":[["k","v"],...]}
// with plain strings, as EncodeHead and the Python replica write them.
func decodeHeadFast(p []byte) (Head, bool) {
	var h Head
	const status = `{"status":`
	if !bytes.HasPrefix(p, []byte(status)) {
		return h, false
	}
	n, p, ok := leadingInt(p[len(status):])
	if !ok {
		return h, false
	}
	h.Status = n
	if len(p) == 1 && p[0] == '}' {
		return h, true
	}
	const headers = `,"headers":[`
	if !bytes.HasPrefix(p, []byte(headers)) {
		return h, false
	}
	p = p[len(headers):]
	for len(p) > 0 && p[0] != ']' {
		if len(h.Headers) > 0 {
			if p[0] != ',' {
				return h, false
			}
			p = p[1:]
		}
		var k, v string
		if !bytes.HasPrefix(p, []byte(`["`)) {
			return h, false
		}
		if k, p, ok = plainPrefix(p[2:]); !ok || !bytes.HasPrefix(p, []byte(`","`)) {
			return h, false
		}
		if v, p, ok = plainPrefix(p[3:]); !ok || !bytes.HasPrefix(p, []byte(`"]`)) {
			return h, false
		}
		p = p[2:]
		h.Headers = append(h.Headers, [2]string{k, v})
	}
	if len(p) != 2 || p[0] != ']' || p[1] != '}' {
		return h, false
	}
	return h, true
}

// plainPrefix returns the plain string before the next '"' of p.
func plainPrefix(p []byte) (string, []byte, bool) {
	i := bytes.IndexByte(p, '"')
	if i < 0 {
		return "", p, false
	}
	for _, c := range p[:i] {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return "", p, false
		}
	}
	return string(p[:i]), p[i:], true
}
