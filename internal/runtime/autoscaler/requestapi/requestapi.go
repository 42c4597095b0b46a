// Package requestapi is the dashboard's REST form of Ray's request_resources
// (https://docs.ray.io/en/latest/cluster/running-applications/autoscaling/reference.html):
// capacity the cluster autoscaler keeps in the cluster, counted against total resources, until
// the next call replaces or withdraws it. The image's Python SDK
// (ray.autoscaler.sdk.request_resources) calls it.
//
//	GET  /api/autoscaler/request_resources   the standing bundles
//	POST /api/autoscaler/request_resources   {"num_cpus": 4, "bundles": [{"GPU": 1}]} replaces them
//	                                         ({} withdraws them)
//
// As in Ray, num_cpus=N stands for N bundles of {"CPU": 1}, followed by the bundles given.
package requestapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Path is where the handler is mounted on the dashboard.
const Path = "/api/autoscaler/request_resources"

// maxBodyBytes bounds a request's body.
const maxBodyBytes = 1 << 20

// MaxBundles bounds the bundles one call may stand up, num_cpus included: each is bin-packed every
// autoscaler round.
const MaxBundles = 10000

// Store keeps the standing requests; *gcs.AutoscalingState implements it.
type Store interface {
	SetRequests(bundles []map[string]float64) error
	ClusterState() *gcsv1.GetClusterStateResponse
}

// Response is the answer to both methods: the bundles standing after the call.
type Response struct {
	Bundles []map[string]float64 `json:"bundles"`
}

// Handler serves Path.
type Handler struct {
	store Store
	log   logr.Logger
}

// NewHandler serves the requests kept in store.
func NewHandler(store Store, log logr.Logger) *Handler {
	return &Handler{store: store, log: log}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		h.respond(w)
	case http.MethodPost, http.MethodPut:
		bundles, err := Parse(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			dashboard.WriteText(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := h.store.SetRequests(bundles); err != nil {
			// Parse checks everything SetRequests does; this is a disagreement between them.
			dashboard.WriteText(w, http.StatusBadRequest, err.Error())
			return
		}
		h.log.Info("Standing resource requests replaced", "bundles", len(bundles))
		h.respond(w)
	default:
		w.Header().Set("Allow", "GET, POST, PUT")
		dashboard.WriteText(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s: use GET to read or POST to replace the requests", r.Method))
	}
}

func (h *Handler) respond(w http.ResponseWriter) {
	resp := Response{Bundles: []map[string]float64{}}
	for _, b := range h.store.ClusterState().Requested {
		resp.Bundles = append(resp.Bundles, b.GetResources())
	}
	dashboard.WriteJSON(w, http.StatusOK, resp)
}

// Parse reads a request body into the bundles it stands for, or an error naming the field at
// fault and why.
func Parse(body io.Reader) ([]map[string]float64, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New(`request body: empty; send a JSON object such as {"num_cpus": 2} or {} to withdraw`)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("request body: not a JSON object: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k != "num_cpus" && k != "bundles" {
			return nil, fmt.Errorf("%s: unknown field; the fields are num_cpus and bundles", k)
		}
	}
	var out []map[string]float64
	if v, ok := fields["num_cpus"]; ok && !isNull(v) {
		n, err := nonNegativeInt(v)
		if err != nil {
			return nil, fmt.Errorf("num_cpus: %w", err)
		}
		if n > MaxBundles {
			return nil, fmt.Errorf("num_cpus: %d is more than the %d bundles one call may request", n, MaxBundles)
		}
		for range n {
			out = append(out, map[string]float64{"CPU": 1})
		}
	}
	if v, ok := fields["bundles"]; ok && !isNull(v) {
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, errors.New("bundles: must be a list of objects mapping resource names to amounts")
		}
		for i, item := range items {
			b, err := bundle(item)
			if err != nil {
				return nil, fmt.Errorf("bundles[%d]%w", i, err)
			}
			out = append(out, b)
		}
	}
	if len(out) > MaxBundles {
		return nil, fmt.Errorf("bundles: %d bundles (num_cpus included) are more than the %d one call may request", len(out), MaxBundles)
	}
	return out, nil
}

// bundle parses one bundle; its error continues the field path ("[.GPU]: ...").
func bundle(raw json.RawMessage) (map[string]float64, error) {
	var amounts map[string]json.RawMessage
	if err := json.Unmarshal(raw, &amounts); err != nil || amounts == nil {
		return nil, errors.New(": must be an object mapping resource names to amounts")
	}
	b := map[string]float64{}
	for _, name := range slices.Sorted(maps.Keys(amounts)) {
		if name == "" {
			return nil, errors.New(": a resource name is empty")
		}
		num, err := number(amounts[name])
		if err != nil {
			return nil, fmt.Errorf(".%s: %w", name, err)
		}
		f, err := strconv.ParseFloat(num.String(), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) {
			return nil, fmt.Errorf(".%s: %s is not a non-negative number", name, num)
		}
		b[name] = f
	}
	return b, nil
}

func nonNegativeInt(raw json.RawMessage) (int, error) {
	num, err := number(raw)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s is not a non-negative integer", num)
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%s is too large", num)
	}
	return int(n), nil
}

// number reads a JSON number; a quoted one is refused, as json.Number alone would take it.
func number(raw json.RawMessage) (json.Number, error) {
	raw = bytes.TrimSpace(raw)
	var num json.Number
	if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &num) != nil {
		return "", fmt.Errorf("%s is not a number", raw)
	}
	return num, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
