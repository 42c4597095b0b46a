// Package raytls reads Ray's TLS settings (RAY_USE_TLS, RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY,
// RAY_TLS_CA_CERT, see https://docs.ray.io/en/latest/ray-core/configure.html#tls-authentication)
// and turns them into mutual-TLS configurations: every peer presents the node's certificate and
// must present one signed by the cluster's CA. The files are read when a configuration is built,
// as Ray reads them once at start.
package raytls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Ray's TLS environment variables.
const (
	EnvUseTLS     = "RAY_USE_TLS"
	EnvServerCert = "RAY_TLS_SERVER_CERT"
	EnvServerKey  = "RAY_TLS_SERVER_KEY"
	EnvCACert     = "RAY_TLS_CA_CERT"
)

// Files are the PEM files of one node: its certificate and key, and the CA that signs its peers.
type Files struct {
	CertFile, KeyFile, CAFile string
}

// FromEnv returns the files named by the environment when RAY_USE_TLS is "1" or "true", and nil
// when it is unset, "0" or "false". Any other value, or a missing file variable, is an error
// naming the variable.
func FromEnv(getenv func(string) string) (*Files, error) {
	switch v := strings.ToLower(strings.TrimSpace(getenv(EnvUseTLS))); v {
	case "", "0", "false":
		return nil, nil
	case "1", "true":
	default:
		return nil, fmt.Errorf("%s=%q: want 1, true, 0 or false", EnvUseTLS, getenv(EnvUseTLS))
	}
	f := &Files{CertFile: getenv(EnvServerCert), KeyFile: getenv(EnvServerKey), CAFile: getenv(EnvCACert)}
	var errs []error
	for _, v := range []struct{ name, value string }{{EnvServerCert, f.CertFile}, {EnvServerKey, f.KeyFile}, {EnvCACert, f.CAFile}} {
		if v.value == "" {
			errs = append(errs, fmt.Errorf("%s is required when %s is set", v.name, EnvUseTLS))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Files) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("loading the TLS key pair (%s, %s): %w", EnvServerCert, EnvServerKey, err)
	}
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("reading %s: %w", EnvCACert, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("%s %s holds no PEM certificate", EnvCACert, f.CAFile)
	}
	return cert, pool, nil
}

// Server is the configuration of a listener: it presents the node's certificate and accepts only
// peers whose certificate the CA signed.
func (f *Files) Server() (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// Client is the configuration of a dialer: it presents the node's certificate and trusts only
// servers whose certificate the CA signed for the name or IP dialled.
func (f *Files) Client() (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		NextProtos:   []string{"h2"},
	}, nil
}

// ClientFromEnv is FromEnv then Client: nil when TLS is off.
func ClientFromEnv(getenv func(string) string) (*tls.Config, error) {
	f, err := FromEnv(getenv)
	if err != nil || f == nil {
		return nil, err
	}
	return f.Client()
}
