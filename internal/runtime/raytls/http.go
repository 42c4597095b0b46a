package raytls

import (
	"crypto/tls"
	"net/http"
)

// HTTPClient returns an HTTP/2 client that reaches peers over mutual TLS with cfg (from
// Files.Client). Callers keep building "http://" URLs: the client sends them as https, so code
// that names peers by address does not change when TLS is switched on.
func HTTPClient(cfg *tls.Config) *http.Client {
	var p http.Protocols
	p.SetHTTP2(true)
	return &http.Client{Transport: httpsOnly{&http.Transport{
		TLSClientConfig:     cfg.Clone(),
		Protocols:           &p,
		MaxIdleConnsPerHost: 4,
	}}}
}

// httpsOnly sends every request over TLS.
type httpsOnly struct{ next http.RoundTripper }

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" {
		r = r.Clone(r.Context())
		r.URL.Scheme = "https"
	}
	return h.next.RoundTrip(r)
}

// PlainGuard refuses, with 403, requests to the given path prefixes on a plain connection (one
// that Split did not classify as TLS): those carry work and data between nodes and must come
// from a peer with a certificate of the cluster's CA. Other paths (health, logs) stay open to
// clients that cannot speak TLS, as Ray's dashboard agent does.
func PlainGuard(h http.Handler, prefixes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range prefixes {
			if len(r.URL.Path) >= len(p) && r.URL.Path[:len(p)] == p {
				http.Error(w, ErrPlaintext.Error(), http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
