package requestapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
)

// newServer serves the handler over the head's real autoscaling state.
func newServer(t *testing.T) (*httptest.Server, *gcs.AutoscalingState) {
	t.Helper()
	srv, err := gcs.NewServer(t.Context(), gcs.Options{Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	state := gcs.NewAutoscalingState(srv, gcs.AutoscalingOptions{})
	mux := http.NewServeMux()
	mux.Handle(Path, NewHandler(state, logr.Discard()))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, state
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func standing(state *gcs.AutoscalingState) []map[string]float64 {
	out := []map[string]float64{}
	for _, b := range state.ClusterState().Requested {
		out = append(out, b.GetResources())
	}
	return out
}

func TestRequestsReplaceAndWithdraw(t *testing.T) {
	ts, state := newServer(t)
	url := ts.URL + Path

	code, body := call(t, http.MethodPost, url, `{"num_cpus": 2, "bundles": [{"GPU": 1, "CPU": 0.5}, {"custom": 3}]}`)
	if code != http.StatusOK {
		t.Fatalf("POST = %d %s", code, body)
	}
	want := []map[string]float64{{"CPU": 1}, {"CPU": 1}, {"GPU": 1, "CPU": 0.5}, {"custom": 3}}
	if diff := cmp.Diff(want, standing(state)); diff != "" {
		t.Errorf("standing requests after POST (-want +got):\n%s", diff)
	}
	var resp Response
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("POST answer %q: %v", body, err)
	}
	if diff := cmp.Diff(want, resp.Bundles); diff != "" {
		t.Errorf("POST answer (-want +got):\n%s", diff)
	}

	code, body = call(t, http.MethodGet, url, "")
	if code != http.StatusOK || !strings.Contains(body, `"custom":3`) {
		t.Errorf("GET = %d %s", code, body)
	}

	// A new call replaces the requests, as Ray's request_resources does.
	if code, body := call(t, http.MethodPut, url, `{"bundles": [{"CPU": 4}]}`); code != http.StatusOK {
		t.Fatalf("PUT = %d %s", code, body)
	}
	if diff := cmp.Diff([]map[string]float64{{"CPU": 4}}, standing(state)); diff != "" {
		t.Errorf("standing requests after the second call (-want +got):\n%s", diff)
	}

	// An empty call withdraws them.
	if code, body := call(t, http.MethodPost, url, `{"num_cpus": null, "bundles": []}`); code != http.StatusOK || !strings.Contains(body, `"bundles":[]`) {
		t.Fatalf("withdrawing POST = %d %s", code, body)
	}
	if got := standing(state); len(got) != 0 {
		t.Errorf("standing requests after withdrawing = %v", got)
	}
}

func TestMalformedRequestsNameTheField(t *testing.T) {
	ts, state := newServer(t)
	url := ts.URL + Path
	if code, body := call(t, http.MethodPost, url, `{"num_cpus": 1}`); code != http.StatusOK {
		t.Fatalf("POST = %d %s", code, body)
	}
	for _, tc := range []struct{ body, want string }{
		{``, "request body: empty"},
		{`[1]`, "request body: not a JSON object"},
		{`{"num_cpu": 2}`, "num_cpu: unknown field"},
		{`{"num_cpus": -1}`, "num_cpus: -1 is not a non-negative integer"},
		{`{"num_cpus": 1.5}`, "num_cpus: 1.5 is not a non-negative integer"},
		{`{"num_cpus": "2"}`, `num_cpus: "2" is not a number`},
		{`{"num_cpus": 20000}`, "num_cpus: 20000 is more than the 10000 bundles"},
		{`{"bundles": {"CPU": 1}}`, "bundles: must be a list"},
		{`{"bundles": [{"CPU": 1}, 5]}`, "bundles[1]: must be an object"},
		{`{"bundles": [{"CPU": 1}, {"GPU": -1}]}`, "bundles[1].GPU: -1 is not a non-negative number"},
		{`{"bundles": [{"CPU": "one"}]}`, `bundles[0].CPU: "one" is not a number`},
		{`{"bundles": [{"": 1}]}`, "bundles[0]: a resource name is empty"},
	} {
		code, body := call(t, http.MethodPost, url, tc.body)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s = %d %q, want 400 containing %q", tc.body, code, body, tc.want)
		}
	}
	// A refused call leaves the standing requests as they were.
	if diff := cmp.Diff([]map[string]float64{{"CPU": 1}}, standing(state)); diff != "" {
		t.Errorf("standing requests after refused calls (-want +got):\n%s", diff)
	}
	if code, _ := call(t, http.MethodDelete, url, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d, want 405", code)
	}
}
