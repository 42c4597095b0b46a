package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var metaCases = []Meta{
	{Kind: KindHealth},
	{},
	{Kind: KindHTTP, RequestID: "3f2b8c1e-7a4d-4e9b-9c1a-0d6e5f4a3b2c", Method: "GET", Path: "/noop", Query: "a=1&b=<2>",
		RoutePrefix: "/noop", Headers: [][2]string{{"host", "127.0.0.1:8000"}, {"user-agent", "wrk"}, {"empty", ""}},
		Client: "127.0.0.1:50000", MultiplexedModelID: "m1", Window: DefaultWindow},
	{Kind: KindHandle, App: "app", Deployment: "Model", Method: "predict", Encoding: "pickle", TimeoutMS: 1500, Stream: true, Window: -3},
	{Kind: KindGRPC, Method: "Predict", Path: "/pkg.Service/Predict", GRPCServicerFunctions: []string{"a.b.add_Servicer", "c"}},
	// What the fast path leaves to encoding/json: escapes, control
	// characters, non-ASCII and invalid UTF-8.
	{Kind: KindHTTP, Path: `/say "hi"\`, Query: "x=é&y=\u2028", Headers: [][2]string{{"ctl", "a\tb\n\x01\x7f"}, {"bad", "\xff\xfe"}}},
	{Kind: KindHTTP, Headers: [][2]string{}, GRPCServicerFunctions: []string{}},
}

// EncodeMeta and DecodeMeta agree with each other and with encoding/json
// both ways, so the Python side (json.loads/json.dumps) reads and writes the
// same objects.
func TestMetaCodecMatchesJSON(t *testing.T) {
	for _, m := range metaCases {
		var want Meta
		if err := json.Unmarshal(JSON(m), &want); err != nil {
			t.Fatal(err)
		}
		enc := EncodeMeta(&m)
		if app := AppendMeta([]byte("prefix"), &m); string(app) != "prefix"+string(enc) {
			t.Errorf("AppendMeta after a prefix = %s, want prefix%s", app, enc)
		}
		var viaJSON Meta
		if err := json.Unmarshal(enc, &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, want) {
			t.Errorf("EncodeMeta(%+v) = %s, which encoding/json reads as %+v (%v), want %+v", m, enc, viaJSON, err, want)
		}
		for _, in := range [][]byte{enc, JSON(m)} {
			got, err := DecodeMeta(in)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("DecodeMeta(%s) = %+v, %v; want %+v", in, got, err, want)
			}
		}
	}
}

// Whatever DecodeMeta is given, it decodes as encoding/json does, or fails
// where that fails: Python's json.dumps spacing, key order, escapes,
// differently cased keys, nulls and malformed input.
func TestDecodeMetaFallsBackToJSON(t *testing.T) {
	for _, in := range []string{
		`{"kind": "http", "method": "GET", "headers": [["a", "b"], ["c", "d"]], "window": 262144}`,
		` { "window" : 5 , "kind" : "handle" , "stream" : false } `,
		`{"kind":"http","path":"/a\u0026b","query":"\"x\""}`,
		`{"Kind":"http","ROUTE_PREFIX":"/r"}`,
		`{"kind":null,"headers":null,"grpc_servicer_functions":null}`,
		`{"kind":"http","headers":[["only-one"]]}`,
		`{"kind":"http","headers":[["a","b","c"]]}`,
		`{"kind":"http","extra":{"nested":[1,2]}}`,
		`{"kind":"http","timeout_ms":1.5}`,
		`{"kind":"http","timeout_ms":1e3}`,
		`{"kind":"http","window":0123}`,
		`{"kind":"http","window":-0}`,
		`{"kind":"http","window":99999999999999999999}`,
		`{"kind":"http","stream":1}`,
		`{"kind":"http","kind":"handle"}`,
		`{"kind":"http"} trailing`,
		`{"kind":"http"`,
		`{"kind":"a` + "\x01" + `"}`,
		`{"kind":"` + "\xff" + `"}`,
		`[]`,
		`{}`,
		``,
		`{"kind":"é"}`,
	} {
		var want Meta
		wantErr := json.Unmarshal([]byte(in), &want)
		got, err := DecodeMeta([]byte(in))
		if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("DecodeMeta(%q) = %+v, %v; encoding/json: %+v, %v", in, got, err, want, wantErr)
		}
	}
}

// BenchmarkMetaCodec measures OPEN's Meta through the reflection-free
// codec, next to BenchmarkCodec's encoding/json rows.
func BenchmarkMetaCodec(b *testing.B) {
	meta := Meta{Kind: KindHTTP, RequestID: "3f2b8c1e-7a4d-4e9b-9c1a-0d6e5f4a3b2c", Method: "GET", Path: "/noop", RoutePrefix: "/noop",
		Headers: [][2]string{{"host", "127.0.0.1:8000"}, {"user-agent", "wrk"}}, Client: "127.0.0.1:50000", Window: DefaultWindow}
	enc := EncodeMeta(&meta)
	if strings.Contains(string(enc), `\`) {
		b.Fatalf("unexpected escapes in %s", enc)
	}
	b.Run("encode-meta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = EncodeMeta(&meta)
		}
	})
	b.Run("decode-meta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeMeta(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
