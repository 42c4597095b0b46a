package proxy

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// setPlainURL must make exactly what url.ParseRequestURI makes of the
// targets it takes, and leave the others to it.
func TestSetPlainURLMatchesParseRequestURI(t *testing.T) {
	for _, target := range []string{
		"/", "/noop", "/a/b.c-d_e~f", "/a?b=c", "/a?", "/a??", "/a?b?", "/a?b=%20c&d", "//double/slash",
		"/$&+,:;=@", "/p%20q", "/a b", "/a#frag", "/caf\u00e9", "/a!b", "/a'b", "/a*b", "/(x)", "/a\"b",
	} {
		want, err := url.ParseRequestURI(target)
		var got url.URL
		if !setPlainURL(&got, target) {
			continue
		}
		if err != nil {
			t.Errorf("%q: taken, but url.ParseRequestURI fails: %v", target, err)
			continue
		}
		if !reflect.DeepEqual(&got, want) {
			t.Errorf("%q: got %#v, url.ParseRequestURI makes %#v", target, got, *want)
		}
	}
	for _, target := range []string{"/p%20q", "/a#frag", "/a!b", "/a\"b"} {
		var u url.URL
		if setPlainURL(&u, target) {
			t.Errorf("%q: taken; it needs url.ParseRequestURI", target)
		}
	}
}

// The loop's header is in canonical form, so the model ID is looked up
// by its canonical key.
func TestModelIDHeaderIsCanonical(t *testing.T) {
	if c := http.CanonicalHeaderKey("serve_multiplexed_model_id"); c != modelIDHeader {
		t.Fatalf("canonical form is %q, modelIDHeader is %q", c, modelIDHeader)
	}
}

// A connection reuses its request, URL and header values: nothing of one
// request may show in the next.
func TestLoopRequestsShareNothing(t *testing.T) {
	_, addr := startLoop(t, &echo{})
	c := dialRaw(t, addr)
	c.send("POST /echo/a?x=1 HTTP/1.1\r\nHost: one\r\nX-Foo: first\r\nX-Bar: b\r\nContent-Length: 3\r\n\r\nabc")
	if _, body := c.answer("POST"); body != "POST /echo/a?x=1 host=one foo=first body=abc" {
		t.Fatalf("first answer %q", body)
	}
	c.send("GET /echo/b%20c HTTP/1.1\r\nHost: two\r\n\r\n")
	if _, body := c.answer("GET"); body != "GET /echo/b c? host=two foo= body=" {
		t.Fatalf("second answer %q", body)
	}
	c.send("GET /echo/d? HTTP/1.1\r\nHost: three\r\nX-Foo: third\r\n\r\n")
	if _, body := c.answer("GET"); body != "GET /echo/d? host=three foo=third body=" {
		t.Fatalf("third answer %q", body)
	}
}
