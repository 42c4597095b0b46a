package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// HTTPError is a non-2xx answer from the dashboard. Body is the text/plain
// error Ray sends.
type HTTPError struct {
	Method     string
	Path       string
	StatusCode int
	Body       string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.StatusCode, strings.TrimSpace(e.Body))
}

// IsNotFound reports whether err is a 404 from the dashboard (unknown job).
func IsNotFound(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.StatusCode == http.StatusNotFound
}

// IsDuplicateSubmission reports whether err is Ray's answer to submitting an
// id that already exists (500 with DuplicateSubmissionIDMessage).
func IsDuplicateSubmission(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.StatusCode == http.StatusInternalServerError &&
		strings.Contains(he.Body, DuplicateSubmissionIDMessage)
}

// Client talks to a Ray dashboard (ours or Ray's own).
type Client struct {
	base    *url.URL
	http    *http.Client
	dialer  *websocket.Dialer
	headers http.Header
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (for timeouts, transports, proxies).
func WithHTTPClient(c *http.Client) ClientOption {
	return func(cl *Client) { cl.http = c }
}

// WithAuthToken sends the token the way KubeRay does, in X-Ray-Authorization: the
// kube-apiserver's service proxy, which the operator may go through, consumes Authorization.
func WithAuthToken(token string) ClientOption {
	return WithHeader(AuthHeader, BearerPrefix+token)
}

// WithBearerToken sends the token the way Ray's CLI and SDK do, as Authorization: Bearer.
func WithBearerToken(token string) ClientOption {
	return WithHeader(AuthorizationHeader, BearerPrefix+token)
}

// WithHeader adds a header to every request.
func WithHeader(key, value string) ClientOption {
	return func(cl *Client) { cl.headers.Add(key, value) }
}

// NewClient returns a client for the dashboard at baseURL
// (http(s)://host:port, optionally with a path prefix such as a kube-apiserver
// service proxy path).
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("parsing dashboard address %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("dashboard address %q: scheme must be http or https", baseURL)
	}
	c := &Client{
		base:    u,
		http:    &http.Client{Timeout: 10 * time.Second},
		dialer:  &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment},
		headers: http.Header{},
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// BaseURL is the dashboard address the client talks to.
func (c *Client) BaseURL() string { return c.base.String() }

func (c *Client) url(path string) string {
	u := *c.base
	path, query, _ := strings.Cut(path, "?")
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = query
	return u.String()
}

// do sends a request and decodes a JSON answer into out (when non-nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), rd)
	if err != nil {
		return fmt.Errorf("building %s %s: %w", method, path, err)
	}
	for k, vs := range c.headers {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &HTTPError{Method: method, Path: path, StatusCode: resp.StatusCode, Body: string(raw)}
	}
	if out == nil {
		return nil
	}
	if s, ok := out.(*string); ok {
		*s = string(raw)
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s %s: %w", method, path, err)
	}
	return nil
}

// Version calls GET /api/version.
func (c *Client) Version(ctx context.Context) (*VersionResponse, error) {
	var v VersionResponse
	if err := c.do(ctx, http.MethodGet, "/api/version", nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// GCSHealthz calls GET /api/gcs_healthz and checks the body says success.
func (c *Client) GCSHealthz(ctx context.Context) error {
	var body string
	if err := c.do(ctx, http.MethodGet, "/api/gcs_healthz", nil, &body); err != nil {
		return err
	}
	if !strings.Contains(body, "success") {
		return fmt.Errorf("GET /api/gcs_healthz: unexpected body %q", body)
	}
	return nil
}

// SubmitJob calls POST /api/jobs/.
func (c *Client) SubmitJob(ctx context.Context, req *JobSubmitRequest) (*JobSubmitResponse, error) {
	var out JobSubmitResponse
	if err := c.do(ctx, http.MethodPost, "/api/jobs/", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetJob calls GET /api/jobs/{id}; IsNotFound tells a missing job.
func (c *Client) GetJob(ctx context.Context, id string) (*JobDetails, error) {
	var out JobDetails
	if err := c.do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListJobs calls GET /api/jobs/.
func (c *Client) ListJobs(ctx context.Context) ([]JobDetails, error) {
	var out []JobDetails
	if err := c.do(ctx, http.MethodGet, "/api/jobs/", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// StopJob calls POST /api/jobs/{id}/stop and returns whether a running job
// was signalled.
func (c *Client) StopJob(ctx context.Context, id string) (bool, error) {
	var out JobStopResponse
	if err := c.do(ctx, http.MethodPost, "/api/jobs/"+url.PathEscape(id)+"/stop", nil, &out); err != nil {
		return false, err
	}
	return out.Stopped, nil
}

// DeleteJob calls DELETE /api/jobs/{id}.
func (c *Client) DeleteJob(ctx context.Context, id string) (bool, error) {
	var out JobDeleteResponse
	if err := c.do(ctx, http.MethodDelete, "/api/jobs/"+url.PathEscape(id), nil, &out); err != nil {
		return false, err
	}
	return out.Deleted, nil
}

// GetJobLogs calls GET /api/jobs/{id}/logs.
func (c *Client) GetJobLogs(ctx context.Context, id string) (string, error) {
	var out JobLogsResponse
	if err := c.do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id)+"/logs", nil, &out); err != nil {
		return "", err
	}
	return out.Logs, nil
}

// TailJobLogs follows GET /api/jobs/{id}/logs/tail over WebSocket and calls
// fn with every text frame. It returns nil when the server closes the socket
// normally (1000, the job is done and its log drained) and an error on any
// other end, as Ray's SDK does.
func (c *Client) TailJobLogs(ctx context.Context, id string, fn func(chunk string) error) error {
	u, err := url.Parse(c.url("/api/jobs/" + url.PathEscape(id) + "/logs/tail"))
	if err != nil {
		return fmt.Errorf("building tail URL: %w", err)
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	conn, resp, err := c.dialer.DialContext(ctx, u.String(), c.headers.Clone())
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return &HTTPError{Method: http.MethodGet, Path: u.Path, StatusCode: resp.StatusCode, Body: string(body)}
		}
		return fmt.Errorf("tailing logs of %s: %w", id, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("tailing logs of %s: %w", id, err)
		}
		if err := fn(string(msg)); err != nil {
			return err
		}
	}
}

// UploadPackage stores a runtime_env package (a zip) with PUT
// /api/packages/{protocol}/{name}, unless GET says it exists already.
func (c *Client) UploadPackage(ctx context.Context, protocol, name string, data []byte) error {
	path := "/api/packages/" + url.PathEscape(protocol) + "/" + url.PathEscape(name)
	err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err == nil {
		return nil
	}
	if !IsNotFound(err) {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url(path), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("building PUT %s: %w", path, err)
	}
	for k, vs := range c.headers {
		req.Header[k] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Method: http.MethodPut, Path: path, StatusCode: resp.StatusCode, Body: string(body)}
	}
	return nil
}
