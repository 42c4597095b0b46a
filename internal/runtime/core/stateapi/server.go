package stateapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Kinds are the resources the API lists, in `ray list`'s words.
var Kinds = []string{"actors", "tasks", "nodes", "jobs", "objects"}

// DefaultLimit is how many rows a list returns without ?limit, as Ray's.
const DefaultLimit = 100

// Options configures a Handler.
type Options struct {
	// Nodes lists the cluster's nodes (the head's node table).
	Nodes func() []*gcsv1.Node
	// SubmittedJobs lists the jobs submitted through the job API; nil means none.
	SubmittedJobs func(ctx context.Context) ([]dashboard.JobDetails, error)
	// Client reaches the node agents.
	Client *http.Client
	Logger logr.Logger
}

// Handler serves GET /api/v0/{kind}.
type Handler struct{ opts Options }

// NewHandler returns the state API handler.
func NewHandler(opts Options) *Handler {
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	return &Handler{opts: opts}
}

// allowedParams are the query parameters `ray list` sends that change
// nothing here: every row carries every field (detail) and drivers are
// never listed as tasks (exclude_driver).
var allowedParams = map[string]bool{"limit": true, "timeout": true, "detail": true, "exclude_driver": true}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := strings.TrimPrefix(r.URL.Path, "/api/v0/")
	if r.Method != http.MethodGet {
		writeReply(w, http.StatusMethodNotAllowed, fail("the state API answers GET only"))
		return
	}
	if !slices.Contains(Kinds, kind) {
		writeReply(w, http.StatusNotFound, fail(fmt.Sprintf("unknown state resource %q; one of %s", kind, strings.Join(Kinds, ", "))))
		return
	}
	q := r.URL.Query()
	for k := range q {
		if !allowedParams[k] {
			writeReply(w, http.StatusBadRequest, fail(fmt.Sprintf("query parameter %q is not supported by this state API (filters are not implemented)", k)))
			return
		}
	}
	limit := DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeReply(w, http.StatusBadRequest, fail(fmt.Sprintf("limit: %q is not a positive integer", v)))
			return
		}
		limit = n
	}
	timeout := 30 * time.Second
	if v := q.Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeReply(w, http.StatusBadRequest, fail(fmt.Sprintf("timeout: %q is not a positive number of seconds", v)))
			return
		}
		timeout = time.Duration(n) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	rows, warning, err := h.rows(ctx, kind)
	if err != nil {
		writeReply(w, http.StatusInternalServerError, fail(err.Error()))
		return
	}
	res := &ListResult{Total: len(rows), NumFiltered: len(rows), PartialFailure: warning}
	if len(rows) > limit {
		rows = rows[:limit]
	}
	res.NumAfterTruncation = len(rows)
	res.Result = rows
	reply := Reply{Result: true}
	reply.Data.Result = res
	writeReply(w, http.StatusOK, reply)
}

func (h *Handler) rows(ctx context.Context, kind string) ([]any, string, error) {
	nodes := h.opts.Nodes()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].NodeId < nodes[j].NodeId })
	if kind == "nodes" {
		out := make([]any, 0, len(nodes))
		for _, n := range nodes {
			state := "ALIVE"
			if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
				state = "DEAD"
			}
			out = append(out, Node{NodeID: n.NodeId, NodeIP: n.NodeIpAddress, IsHeadNode: n.IsHead, State: state,
				NodeName: n.NodeIpAddress, ResourcesTotal: n.ResourcesTotal, Labels: map[string]string{}})
		}
		return out, "", nil
	}
	states, warning := h.collect(ctx, nodes)
	var out []any
	if kind == "jobs" && h.opts.SubmittedJobs != nil {
		jobs, err := h.opts.SubmittedJobs(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("listing submitted jobs: %w", err)
		}
		for _, j := range jobs {
			out = append(out, j)
		}
	}
	for _, st := range states {
		switch kind {
		case "actors":
			for _, a := range st.Actors {
				out = append(out, a)
			}
		case "tasks":
			for _, t := range st.Tasks {
				out = append(out, t)
			}
		case "objects":
			for _, o := range st.Objects {
				out = append(out, o)
			}
		case "jobs":
			for _, d := range st.Drivers {
				out = append(out, d)
			}
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, warning, nil
}

// collect asks every alive node's agent for its state, concurrently; nodes
// that do not answer are named in the warning, as Ray's partial failures are.
func (h *Handler) collect(ctx context.Context, nodes []*gcsv1.Node) ([]NodeState, string) {
	var alive []*gcsv1.Node
	for _, n := range nodes {
		if n.State == gcsv1.NodeState_NODE_STATE_ALIVE && n.AgentPort > 0 {
			alive = append(alive, n)
		}
	}
	states := make([]NodeState, len(alive))
	errs := make([]error, len(alive))
	var wg sync.WaitGroup
	for i, n := range alive {
		wg.Add(1)
		go func() {
			defer wg.Done()
			states[i], errs[i] = h.fetch(ctx, n)
		}()
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			h.opts.Logger.Info("Could not read a node's state", "node", alive[i].NodeId, "error", err.Error())
			failed = append(failed, fmt.Sprintf("node %s: %v", alive[i].NodeId, err))
		}
	}
	if len(failed) > 0 {
		return states, "The returned data may contain incomplete result. " + strings.Join(failed, "; ")
	}
	return states, ""
}

func (h *Handler) fetch(ctx context.Context, n *gcsv1.Node) (NodeState, error) {
	var st NodeState
	u := "http://" + net.JoinHostPort(n.NodeIpAddress, strconv.Itoa(int(n.AgentPort))) + AgentPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return st, err
	}
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("decoding the node's state: %w", err)
	}
	return st, nil
}

func fail(msg string) Reply { return Reply{Result: false, Msg: msg} }

func writeReply(w http.ResponseWriter, code int, r Reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}
