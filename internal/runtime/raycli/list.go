package raycli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
)

var listFlags = append([]flagSpec{
	{name: "address", kind: valueFlag, usage: "The dashboard's `address` (http://host:port, or a GCS host:port; default: $RAY_ADDRESS, else the head started on this machine)"},
	{name: "limit", kind: valueFlag, usage: "Maximum number of `rows` to return (default 100)"},
	{name: "format", kind: valueFlag, usage: "Output `format`: table (default) or json"},
	{name: "timeout", kind: valueFlag, usage: "Seconds to wait for the cluster's answer (default 30)"},
}, loggingFlags...)

// listColumns are the fields `ray list` shows per kind, in Ray's order.
var listColumns = map[string][]string{
	"actors":  {"actor_id", "class_name", "state", "job_id", "name", "node_id", "pid", "ray_namespace"},
	"tasks":   {"task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type", "func_or_class_name", "node_id", "error_type"},
	"nodes":   {"node_id", "node_ip", "is_head_node", "state", "node_name", "resources_total"},
	"jobs":    {"job_id", "submission_id", "entrypoint", "type", "status", "message", "error_type", "driver_info"},
	"objects": {"object_id", "object_size", "task_status", "reference_type", "type", "ip"},
}

func (c *cli) listCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:       "list [OPTIONS] {" + strings.Join(stateapi.Kinds, "|") + "}",
		Short:     "List the cluster's actors, tasks, nodes, jobs or objects.",
		ValidArgs: stateapi.Kinds,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("expected one of %s", strings.Join(stateapi.Kinds, ", "))
			}
			if _, ok := listColumns[args[0]]; !ok {
				return fmt.Errorf("invalid resource %q: expected one of %s", args[0], strings.Join(stateapi.Kinds, ", "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(c.list(&parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, listFlags)
	return cmd
}

func (c *cli) list(p *parsedFlags) int {
	kind := p.args[0]
	failf := func(format string, args ...any) int {
		fmt.Fprintf(c.stderr, "ray list %s: %s\n", kind, fmt.Sprintf(format, args...))
		return 1
	}
	format := p.str("format")
	if format == "" {
		format = "table"
	}
	if format != "table" && format != "json" {
		return failf("--format: %q is not one of table, json", format)
	}
	q := url.Values{}
	for _, name := range []string{"limit", "timeout"} {
		if v := p.str(name); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n <= 0 {
				return failf("--%s: %q is not a positive integer", name, v)
			}
			q.Set(name, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base, err := c.stateAPIBase(ctx, p.str("address"))
	if err != nil {
		return failf("%v", err)
	}
	res, err := c.fetchList(ctx, base, kind, q)
	if err != nil {
		return failf("%v", err)
	}
	if res.PartialFailure != "" {
		fmt.Fprintf(c.stderr, "Warning: %s\n", res.PartialFailure)
	}
	if format == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res.Result)
		return 0
	}
	printList(c.stdout, kind, res, time.Now())
	return 0
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
		Result *struct {
			Total              int              `json:"total"`
			NumAfterTruncation int              `json:"num_after_truncation"`
			Result             []map[string]any `json:"result"`
			PartialFailure     string           `json:"partial_failure_warning"`
		} `json:"result"`
	} `json:"data"`
}

type listResult struct {
	Total, Shown   int
	Result         []map[string]any
	PartialFailure string
}

func (c *cli) fetchList(ctx context.Context, base, kind string, q url.Values) (*listResult, error) {
	u := base + "/api/v0/" + kind
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if tok := c.getenv("RAY_AUTH_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("could not reach the Ray dashboard at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the state API's answer: %w", err)
	}
	var r listReply
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("the dashboard at %s answered HTTP %d without a state API reply: %.200s", base, resp.StatusCode, body)
	}
	if !r.Result || r.Data.Result == nil {
		return nil, fmt.Errorf("the state API refused the request: %s", r.Msg)
	}
	d := r.Data.Result
	return &listResult{Total: d.Total, Shown: d.NumAfterTruncation, Result: d.Result, PartialFailure: d.PartialFailure}, nil
}

// printList prints rows the way `ray list` lays them out: a stats block,
// then a table of the kind's columns.
func printList(w io.Writer, kind string, res *listResult, now time.Time) {
	fmt.Fprintf(w, "======== List: %s ========\n", now.Format("2006-01-02 15:04:05.000000"))
	fmt.Fprintln(w, "Stats:")
	fmt.Fprintln(w, "------------------------------")
	fmt.Fprintf(w, "Total: %d\n", res.Total)
	if res.Shown < res.Total {
		fmt.Fprintf(w, "(showing the first %d; raise --limit for more)\n", res.Shown)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Table:")
	fmt.Fprintln(w, "------------------------------")
	cols := listColumns[kind]
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
