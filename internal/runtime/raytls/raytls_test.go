package raytls_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls/raytlstest"
)

func TestFromEnv(t *testing.T) {
	full := map[string]string{raytls.EnvServerCert: "/c", raytls.EnvServerKey: "/k", raytls.EnvCACert: "/ca"}
	env := func(use string, m map[string]string) func(string) string {
		return func(k string) string {
			if k == raytls.EnvUseTLS {
				return use
			}
			return m[k]
		}
	}
	for _, off := range []string{"", "0", "false", "FALSE"} {
		if f, err := raytls.FromEnv(env(off, full)); f != nil || err != nil {
			t.Errorf("RAY_USE_TLS=%q: %v, %v; want TLS off", off, f, err)
		}
	}
	for _, on := range []string{"1", "true", "True"} {
		f, err := raytls.FromEnv(env(on, full))
		if err != nil || f == nil || *f != (raytls.Files{CertFile: "/c", KeyFile: "/k", CAFile: "/ca"}) {
			t.Errorf("RAY_USE_TLS=%q: %+v, %v", on, f, err)
		}
	}
	if _, err := raytls.FromEnv(env("yes", full)); err == nil || !strings.Contains(err.Error(), raytls.EnvUseTLS) {
		t.Errorf("RAY_USE_TLS=yes: error %v, want one naming the variable", err)
	}
	_, err := raytls.FromEnv(env("1", map[string]string{raytls.EnvServerCert: "/c"}))
	if err == nil || !strings.Contains(err.Error(), raytls.EnvServerKey) || !strings.Contains(err.Error(), raytls.EnvCACert) {
		t.Errorf("missing files: error %v, want one naming both variables", err)
	}
	f := &raytls.Files{CertFile: "/nonexistent/tls.crt", KeyFile: "/nonexistent/tls.key", CAFile: "/nonexistent/ca.crt"}
	if _, err := f.Server(); err == nil || !strings.Contains(err.Error(), raytls.EnvServerCert) {
		t.Errorf("unreadable files: error %v, want one naming the variable", err)
	}
}

// startSplitServer serves, on one port, an HTTP handler over mutual TLS and a guarded plain one,
// as a node's agent port does.
func startSplitServer(t *testing.T, files *raytls.Files) string {
	t.Helper()
	cfg, err := files.Server()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsConns, plainConns := raytls.Split(l)
	t.Cleanup(func() { _ = tlsConns.Close() })
	mux := http.NewServeMux()
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "work done over "+r.Proto) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "success") })
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	go func() { _ = (&http.Server{Handler: mux, Protocols: &p}).Serve(tls.NewListener(tlsConns, cfg)) }()
	go func() { _ = (&http.Server{Handler: raytls.PlainGuard(mux, "/work")}).Serve(plainConns) }()
	return l.Addr().String()
}

func get(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestMutualTLSOnASplitPort(t *testing.T) {
	dir := t.TempDir()
	ca := raytlstest.NewCA(t, "cluster")
	server := ca.Issue(t, filepath.Join(dir, "server"), []string{"127.0.0.1"}, "localhost")
	peer := ca.Issue(t, filepath.Join(dir, "peer"), []string{"127.0.0.2"})
	stranger := raytlstest.NewCA(t, "other").Issue(t, filepath.Join(dir, "stranger"), []string{"127.0.0.1"})
	addr := startSplitServer(t, server)

	peerCfg, err := peer.Client()
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := get(t, raytls.HTTPClient(peerCfg), "http://"+addr+"/work")
	if err != nil || code != 200 || body != "work done over HTTP/2.0" {
		t.Errorf("a peer of the cluster's CA: %d %q %v, want the work done over HTTP/2", code, body, err)
	}

	code, body, err = get(t, http.DefaultClient, "http://"+addr+"/work")
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, "mutual TLS") {
		t.Errorf("a plain-text peer: %d %q %v, want 403", code, body, err)
	}
	if code, body, err := get(t, http.DefaultClient, "http://"+addr+"/healthz"); err != nil || code != 200 || body != "success" {
		t.Errorf("a plain-text health probe: %d %q %v, want it answered", code, body, err)
	}

	strangerCfg, err := stranger.Client()
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := get(t, raytls.HTTPClient(strangerCfg), "http://"+addr+"/work"); err == nil {
		t.Errorf("a peer of another CA got %d %q, want the handshake refused", code, body)
	}
	// A client that trusts the server but brings no certificate of its own.
	anonymous := peerCfg.Clone()
	anonymous.Certificates = nil
	if code, body, err := get(t, raytls.HTTPClient(anonymous), "http://"+addr+"/work"); err == nil {
		t.Errorf("a peer without a certificate got %d %q, want the handshake refused", code, body)
	}
}
