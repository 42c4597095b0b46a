package raycli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
)

// stateResources are the resources `ray list` names, in Ray's words (with
// dashes); the state API has them with underscores. Those this runtime
// does not list (runtime-envs, cluster-events) are refused by the
// head itself, so that a Ray dashboard that has them still answers.
var stateResources = []string{"actors", "jobs", "placement-groups", "nodes", "workers", "tasks", "objects", "runtime-envs", "cluster-events"}

// stateFormats are the --format values `ray list` takes; default is table.
var stateFormats = []string{"default", "json", "yaml", "table"}

var stateAccessFlags = []flagSpec{
	{name: "address", kind: valueFlag, usage: "The dashboard's `address` (http://host:port, or a GCS host:port; default: $RAY_ADDRESS, else the head started on this machine)"},
	{name: "timeout", kind: valueFlag, usage: "How many `seconds` to wait for the cluster's answer (default 30)"},
}

var listFlags = append(append([]flagSpec{
	{name: "format", kind: valueFlag, usage: "Output `format`: default (a table), json, yaml or table"},
	{name: "filter", short: "f", kind: multiFlag, usage: "A `key=value` or key!=value filter; repeat it and all must hold. " +
		"Text values compare without regard to case"},
	{name: "limit", kind: valueFlag, usage: "Maximum number of `rows` to return (default 100)"},
	{name: "detail", kind: boolFlag, usage: "Return every column, not only the base ones"},
}, stateAccessFlags...), loggingFlags...)

// listColumns are the base columns `ray list` shows per resource, in Ray's
// order; --detail adds whatever else the rows carry.
var listColumns = map[string][]string{
	"actors":           {"actor_id", "class_name", "state", "job_id", "name", "node_id", "pid", "ray_namespace"},
	"tasks":            {"task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name", "parent_task_id", "node_id", "worker_id", "worker_pid", "error_type"},
	"nodes":            {"node_id", "node_ip", "is_head_node", "state", "state_message", "node_name", "resources_total", "labels"},
	"jobs":             {"job_id", "submission_id", "entrypoint", "type", "status", "message", "error_type", "driver_info"},
	"objects":          {"object_id", "object_size", "task_status", "attempt_number", "reference_type", "call_site", "type", "pid", "ip"},
	"placement-groups": {"placement_group_id", "name", "creator_job_id", "state"},
	"workers":          {"worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip", "pid"},
	"runtime-envs":     {"runtime_env", "success", "creation_time_ms", "node_id"},
	"cluster-events":   {"severity", "time", "source_type", "message", "event_id"},
}

func resourceArg(verb string, allowed []string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("missing argument RESOURCE: one of %s", strings.Join(allowed, ", "))
		}
		if !slices.Contains(allowed, args[0]) {
			return fmt.Errorf("invalid resource %q: expected one of %s", args[0], strings.Join(allowed, ", "))
		}
		if verb == "get" {
			if len(args) == 1 {
				return fmt.Errorf("missing argument ID; to see every one, run 'ray list %s'", args[0])
			}
			if len(args) > 2 {
				return fmt.Errorf("unexpected arguments %q", args[2:])
			}
		} else if len(args) > 1 {
			return fmt.Errorf("unexpected arguments %q", args[1:])
		}
		return nil
	}
}

func (c *cli) listCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [OPTIONS] {" + strings.Join(stateResources, "|") + "}",
		Short: "List the cluster's actors, tasks, nodes, jobs, objects or placement groups.",
		Long: "List the cluster's actors, tasks, nodes, jobs, objects or placement groups from the dashboard's state API.\n\n" +
			"Examples:\n  ray list actors --filter state=ALIVE\n  ray list tasks -f name=square -f state!=FINISHED --limit 10 --detail --format yaml",
		ValidArgs: stateResources,
		Args:      resourceArg("list", stateResources),
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(c.list(&parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, listFlags)
	return cmd
}

// parseFilter reads a --filter as Ray does: the first "=" or "!=" splits
// the key from the value, and neither may be empty.
func parseFilter(s string) (key, predicate, value string, err error) {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '=':
			key, predicate, value = s[:i], "=", s[i+1:]
		case s[i] == '!' && i+1 < len(s) && s[i+1] == '=':
			key, predicate, value = s[:i], "!=", s[i+2:]
		default:
			continue
		}
		if key == "" || value == "" {
			return "", "", "", fmt.Errorf("--filter %q: a filter needs a key and a value, as key=value or key!=value", s)
		}
		return key, predicate, value, nil
	}
	return "", "", "", fmt.Errorf("--filter %q: no predicate; write key=value or key!=value", s)
}

// stateQuery holds what a state command asks the dashboard.
type stateQuery struct {
	base     string
	resource string // with underscores, as in /api/v0/{resource}
	params   url.Values
	timeout  time.Duration
}

// newStateQuery reads --address and --timeout and finds the dashboard.
func (c *cli) newStateQuery(ctx context.Context, p *parsedFlags, resource string) (*stateQuery, error) {
	q := &stateQuery{resource: strings.ReplaceAll(resource, "-", "_"), params: url.Values{}, timeout: 30 * time.Second}
	if v := p.str("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--timeout: %q is not a positive integer", v)
		}
		q.params.Set("timeout", v)
		q.timeout = time.Duration(n) * time.Second
	}
	base, err := c.stateAPIBase(ctx, p.str("address"))
	if err != nil {
		return nil, err
	}
	q.base = base
	return q, nil
}

func (c *cli) list(p *parsedFlags) int {
	resource := p.args[0]
	failf := func(format string, args ...any) int {
		fmt.Fprintf(c.stderr, "ray list %s: %s\n", resource, fmt.Sprintf(format, args...))
		return 1
	}
	format := p.str("format")
	if format == "" {
		format = "default"
	}
	if !slices.Contains(stateFormats, format) {
		return failf("--format: %q is not one of %s", format, strings.Join(stateFormats, ", "))
	}
	params := url.Values{}
	if v := p.str("limit"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			return failf("--limit: %q is not a positive integer", v)
		}
		params.Set("limit", v)
	}
	for _, f := range p.strs("filter") {
		k, pred, v, err := parseFilter(f)
		if err != nil {
			return failf("%v", err)
		}
		params.Add("filter_keys", k)
		params.Add("filter_predicates", pred)
		params.Add("filter_values", v)
	}
	detail := p.bool("detail")
	if detail {
		params.Set("detail", "true")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q, err := c.newStateQuery(ctx, p, resource)
	if err != nil {
		return failf("%v", err)
	}
	for k, v := range params {
		q.params[k] = v
	}
	res, err := c.fetchList(ctx, q)
	if err != nil {
		return failf("%v", err)
	}
	if res.PartialFailure != "" {
		fmt.Fprintf(c.stderr, "Warning: %s\n", res.PartialFailure)
	}
	switch format {
	case "json":
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res.Result)
	case "yaml":
		if err := writeYAML(c.stdout, res.Result); err != nil {
			return failf("%v", err)
		}
	default:
		printList(c.stdout, resource, res, detail, time.Now())
	}
	return 0
}

// writeYAML prints rows as one YAML document, marked at both ends as Ray's
// CLI does.
func writeYAML(w io.Writer, rows []map[string]any) error {
	if rows == nil {
		rows = []map[string]any{}
	}
	out, err := yaml.Marshal(rows)
	if err != nil {
		return fmt.Errorf("encoding YAML: %w", err)
	}
	fmt.Fprintf(w, "---\n%s...\n", out)
	return nil
}

// stateAPIBase is the dashboard URL: as `ray job` resolves it when an
// address is given, else the dashboard of the head started on this machine.
func (c *cli) stateAPIBase(ctx context.Context, flagAddr string) (string, error) {
	if flagAddr == "" && c.getenv("RAY_API_SERVER_ADDRESS") == "" && (c.getenv("RAY_ADDRESS") == "" || c.getenv("RAY_ADDRESS") == "auto") {
		gcsAddr, err := resolveGCSAddress("", c.getenv)
		if err != nil {
			return "", err
		}
		tlsCfg, err := raytls.ClientFromEnv(c.getenv)
		if err != nil {
			return "", err
		}
		return dashboardFromGCS(ctx, gcsAddr, c.getenv("RAY_AUTH_TOKEN"), tlsCfg)
	}
	return resolveDashboardURL(ctx, flagAddr, c.getenv)
}

// listReply is the state API's envelope with raw rows.
type listReply struct {
	Result bool   `json:"result"`
	Msg    string `json:"msg"`
	Data   struct {
		Result *listResult `json:"result"`
	} `json:"data"`
}

// listResult is a list answer; counts as Ray's ListApiResponse.
type listResult struct {
	Total              int              `json:"total"`
	NumAfterTruncation int              `json:"num_after_truncation"`
	NumFiltered        int              `json:"num_filtered"`
	Result             []map[string]any `json:"result"`
	PartialFailure     string           `json:"partial_failure_warning"`
}

// errStateRefused is the state API answering result=false.
var errStateRefused = errors.New("the state API refused the request")

func (c *cli) fetchList(ctx context.Context, q *stateQuery) (*listResult, error) {
	u := q.base + "/api/v0/" + q.resource
	if len(q.params) > 0 {
		u += "?" + q.params.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout+5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if tok := c.getenv("RAY_AUTH_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("could not reach the Ray dashboard at %s: %w", q.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the state API's answer: %w", err)
	}
	var r listReply
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("the dashboard at %s answered HTTP %d without a state API reply: %.200s", q.base, resp.StatusCode, body)
	}
	if !r.Result || r.Data.Result == nil {
		return nil, fmt.Errorf("%w: %s", errStateRefused, r.Msg)
	}
	return r.Data.Result, nil
}

// tableColumns are the columns to print for rows: the resource's base
// columns that the rows have, then with detail every other column, sorted.
func tableColumns(resource string, rows []map[string]any, detail bool) []string {
	has := map[string]bool{}
	for _, r := range rows {
		for k := range r {
			has[k] = true
		}
	}
	var cols []string
	for _, c := range listColumns[resource] {
		if has[c] {
			cols = append(cols, c)
			delete(has, c)
		}
	}
	if detail || len(cols) == 0 {
		rest := make([]string, 0, len(has))
		for k := range has {
			rest = append(rest, k)
		}
		sort.Strings(rest)
		cols = append(cols, rest...)
	}
	return cols
}

// printList prints rows the way `ray list` lays them out: a stats block,
// then a table of the resource's columns.
func printList(w io.Writer, resource string, res *listResult, detail bool, now time.Time) {
	if len(res.Result) == 0 {
		fmt.Fprintln(w, "No resource in the cluster")
		return
	}
	fmt.Fprintf(w, "======== List: %s ========\n", now.Format("2006-01-02 15:04:05.000000"))
	fmt.Fprintln(w, "Stats:")
	fmt.Fprintln(w, "------------------------------")
	fmt.Fprintf(w, "Total: %d\n", len(res.Result))
	if res.NumFiltered > len(res.Result) {
		fmt.Fprintf(w, "(the first %d of %d; narrow it with --filter or raise --limit to see more)\n", len(res.Result), res.NumFiltered)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Table:")
	fmt.Fprintln(w, "------------------------------")
	cols := tableColumns(resource, res.Result, detail)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := make([]string, 0, len(cols)+1)
	head = append(head, "")
	for _, c := range cols {
		head = append(head, strings.ToUpper(c))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i, row := range res.Result {
		cells := []string{strconv.Itoa(i)}
		for _, c := range cols {
			cells = append(cells, cell(row[c]))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+": "+cell(x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}
