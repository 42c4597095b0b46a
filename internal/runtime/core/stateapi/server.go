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

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// DefaultLimit is how many rows a list returns without ?limit, as Ray's.
const DefaultLimit = 100

// Options configures a Handler.
type Options struct {
	// Nodes lists the cluster's nodes (the head's node table).
	Nodes func() []*gcsv1.Node
	// SubmittedJobs lists the jobs submitted through the job API; nil means none.
	SubmittedJobs func(ctx context.Context) ([]dashboard.JobDetails, error)
	// PlacementGroups lists the scheduler's placement groups; nil answers
	// /api/v0/placement_groups as not available on this head.
	PlacementGroups func() []*corev1.PlacementGroup
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

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := strings.TrimPrefix(r.URL.Path, "/api/v0/")
	if r.Method != http.MethodGet {
		writeReply(w, http.StatusMethodNotAllowed, fail("the state API answers GET only"))
		return
	}
	if k, ok := strings.CutSuffix(kind, "/summarize"); ok && slices.Contains(Kinds, k) {
		writeReply(w, http.StatusNotImplemented, fail(fmt.Sprintf("summarizing %s is not supported by this head; `ray summary %s` of this runtime's CLI summarizes the list", k, k)))
		return
	}
	if kind == "logs" || strings.HasPrefix(kind, "logs/") {
		writeReply(w, http.StatusNotImplemented, fail("the log API is not supported: this runtime does not serve node logs through the dashboard"))
		return
	}
	if why, ok := unlisted[kind]; ok {
		writeReply(w, http.StatusNotImplemented, fail(fmt.Sprintf("listing %s is not supported: %s", kind, why)))
		return
	}
	sch, ok := schemas[kind]
	if !ok {
		writeReply(w, http.StatusNotFound, fail(fmt.Sprintf("unknown state resource %q; one of %s", kind, strings.Join(Kinds, ", "))))
		return
	}
	if kind == "placement_groups" && h.opts.PlacementGroups == nil {
		writeReply(w, http.StatusNotImplemented, fail("listing placement_groups is not supported: this head does not report them"))
		return
	}
	opts, err := ParseListOptions(r.URL.Query())
	if err != nil {
		writeReply(w, http.StatusBadRequest, fail(err.Error()))
		return
	}
	filters, err := compile(kind, sch, opts.Filters)
	if err != nil {
		writeReply(w, http.StatusBadRequest, fail(err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opts.Timeout)
	defer cancel()
	rows, warning, err := h.rows(ctx, kind)
	if err != nil {
		writeReply(w, http.StatusInternalServerError, fail(err.Error()))
		return
	}
	maps, err := asMaps(rows)
	if err != nil {
		writeReply(w, http.StatusInternalServerError, fail(err.Error()))
		return
	}
	res := selectRows(sch, maps, filters, opts)
	res.PartialFailure = warning
	reply := Reply{Result: true}
	reply.Data.Result = res
	writeReply(w, http.StatusOK, reply)
}

// selectRows keeps the rows that pass filters, sorted by the resource's
// ID, cut to the limit, with the columns opts ask for. Nothing is
// truncated at the sources: every node agent answers with all it holds, so
// num_after_truncation is the total.
func selectRows(sch schema, rows []map[string]any, filters []matcher, opts ListOptions) *ListResult {
	res := &ListResult{Total: len(rows), NumAfterTruncation: len(rows)}
	kept := make([]map[string]any, 0, len(rows))
	for _, m := range rows {
		if matches(m, filters) {
			kept = append(kept, m)
		}
	}
	if sch.sorted {
		sort.SliceStable(kept, func(i, j int) bool { return fmt.Sprint(kept[i][sch.id]) < fmt.Sprint(kept[j][sch.id]) })
	}
	res.NumFiltered = len(kept)
	if len(kept) > opts.Limit {
		kept = kept[:opts.Limit]
	}
	res.Result = make([]any, 0, len(kept))
	for _, m := range kept {
		res.Result = append(res.Result, sch.project(m, opts.Detail))
	}
	return res
}

// asMaps turns rows into their JSON objects, which filters and columns
// are about.
func asMaps(rows []any) ([]map[string]any, error) {
	raw, err := json.Marshal(rows)
	if err != nil {
		return nil, fmt.Errorf("encoding rows: %w", err)
	}
	var out []map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decoding rows: %w", err)
	}
	return out, nil
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
	if kind == "placement_groups" {
		groups := h.opts.PlacementGroups()
		out := make([]any, 0, len(groups))
		for _, pg := range groups {
			out = append(out, placementGroupRow(pg))
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
		case "workers":
			for _, w := range st.Workers {
				out = append(out, w)
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

// placementGroupRow is pg in Ray's PlacementGroupState shape.
func placementGroupRow(pg *corev1.PlacementGroup) PlacementGroup {
	state := strings.TrimPrefix(pg.State.String(), "PLACEMENT_GROUP_STATE_")
	row := PlacementGroup{PlacementGroupID: pg.PlacementGroupId, Name: pg.Name, CreatorJobID: pg.JobId,
		State: state, IsDetached: pg.Detached, Bundles: make([]Bundle, 0, len(pg.Bundles))}
	for i, b := range pg.Bundles {
		bundle := Bundle{BundleID: i, UnitResources: b.Resources}
		if b.NodeId != "" {
			bundle.NodeID = &b.NodeId
		}
		row.Bundles = append(row.Bundles, bundle)
	}
	return row
}
