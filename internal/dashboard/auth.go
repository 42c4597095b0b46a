package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
)

// Ray's token authentication (https://docs.ray.io/en/latest/ray-security/token-auth.html):
// with RAY_AUTH_MODE=token every node requires the cluster's token on the dashboard and the
// GCS port. Clients send it as "Authorization: Bearer <token>"; behind a proxy that consumes
// Authorization (the kube-apiserver's service proxy) as X-Ray-Authorization, which is what
// KubeRay and Client.WithAuthToken send; browsers as the ray-authentication-token cookie.
const (
	EnvAuthMode      = "RAY_AUTH_MODE"
	EnvAuthToken     = "RAY_AUTH_TOKEN"
	EnvAuthTokenPath = "RAY_AUTH_TOKEN_PATH"
	// EnvK8sTokenAuth delegates token checks to Kubernetes TokenReview (KubeRay's
	// authOptions.enableK8sTokenAuth).
	EnvK8sTokenAuth = "RAY_ENABLE_K8S_TOKEN_AUTH"

	AuthorizationHeader = "Authorization"
	AuthCookie          = "ray-authentication-token"
	BearerPrefix        = "Bearer "
)

// HealthPaths stay open when token authentication is on: Kubernetes probes and KubeRay's
// readiness checks carry no token.
var HealthPaths = []string{"/api/gcs_healthz", "/api/healthz", "/api/local_raylet_healthz", "/-/healthz"}

// AuthTokenFromEnv returns the token a node requires, or "" when RAY_AUTH_MODE is unset or
// "disabled". The token comes from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names,
// else ~/.ray/auth_token, Ray's order; token mode without a token is an error, never an
// open cluster.
func AuthTokenFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	switch mode := getenv(EnvAuthMode); mode {
	case "", "disabled":
		return "", nil
	case "token":
	default:
		return "", fmt.Errorf("invalid %s %q: want token or disabled", EnvAuthMode, mode)
	}
	if strings.EqualFold(getenv(EnvK8sTokenAuth), "true") {
		return "", errors.New(EnvK8sTokenAuth + "=true (authOptions.enableK8sTokenAuth) is not supported by this runtime; use a token Secret")
	}
	if tok := strings.TrimSpace(getenv(EnvAuthToken)); tok != "" {
		return tok, nil
	}
	path := getenv(EnvAuthTokenPath)
	source := EnvAuthTokenPath
	if path == "" {
		home := getenv("HOME")
		if home == "" {
			return "", fmt.Errorf("%s=token but %s is empty, %s is unset and there is no HOME for ~/.ray/auth_token", EnvAuthMode, EnvAuthToken, EnvAuthTokenPath)
		}
		path, source = filepath.Join(home, ".ray", "auth_token"), "the default token file"
	}
	raw, err := readFile(path)
	if err != nil {
		return "", fmt.Errorf("%s=token and %s is empty: reading %s %s: %w", EnvAuthMode, EnvAuthToken, source, path, err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("%s=token but %s %s is empty", EnvAuthMode, source, path)
	}
	return tok, nil
}

// TokenMatches compares a presented token with the required one in constant time; hashing
// first keeps the comparison from revealing the required token's length too.
func TokenMatches(presented, want string) bool {
	p, w := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(p[:], w[:]) == 1
}

// TokenFromAuthorization extracts the token of a "Bearer <token>" header value; ok is false
// for any other scheme, which is then no valid credential.
func TokenFromAuthorization(v string) (token string, ok bool) {
	if len(v) > len(BearerPrefix) && strings.EqualFold(v[:len(BearerPrefix)], BearerPrefix) {
		return strings.TrimSpace(v[len(BearerPrefix):]), true
	}
	return "", false
}

// requestToken finds the credential a request carries, in Ray's order of precedence:
// present reports whether there is one at all, valid whether it is the required token.
func requestToken(r *http.Request, want string) (present, valid bool) {
	for _, h := range []string{AuthorizationHeader, AuthHeader} {
		if v := r.Header.Get(h); v != "" {
			tok, ok := TokenFromAuthorization(v)
			return true, ok && TokenMatches(tok, want)
		}
	}
	if c, err := r.Cookie(AuthCookie); err == nil && c.Value != "" {
		return true, TokenMatches(c.Value, want)
	}
	return false, false
}

// RequireToken wraps h so that requests, except those to the exact paths in open, must carry
// token: without one they get 401, with a wrong one 403, as Ray's dashboard answers, each
// with a one-line text/plain reason.
func RequireToken(token string, open []string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(open, r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		present, valid := requestToken(r, token)
		switch {
		case !present:
			WriteText(w, http.StatusUnauthorized, "Unauthorized: missing authentication token; send it as Authorization: Bearer <token>")
		case !valid:
			WriteText(w, http.StatusForbidden, "Forbidden: invalid authentication token")
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// TokenTransport sends Token as "Authorization: Bearer <token>" on every request that carries
// no Authorization of its own, for calls between a cluster's nodes (the agent port), which
// require the token as the dashboard does.
type TokenTransport struct {
	Token string
	// Base makes the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper on a copy of req, which a RoundTripper may not change.
func (t *TokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base()
	if req.Header.Get(AuthorizationHeader) != "" {
		return base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.Header.Set(AuthorizationHeader, BearerPrefix+t.Token)
	return base.RoundTrip(r)
}

// CloseIdleConnections passes http.Client.CloseIdleConnections on to the base transport.
func (t *TokenTransport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *TokenTransport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

// ClientWithToken returns a copy of c that sends token on every request, or c itself when token is
// empty (a cluster without token authentication).
func ClientWithToken(c *http.Client, token string) *http.Client {
	if token == "" {
		return c
	}
	authed := *c
	authed.Transport = &TokenTransport{Token: token, Base: c.Transport}
	return &authed
}
