package raycli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// getResources are what `ray get` looks up by ID, and the ID column of
// each, as Ray's (jobs, runtime envs and cluster events have no get).
var getResources = map[string]string{
	"actors":           "actor_id",
	"placement-groups": "placement_group_id",
	"nodes":            "node_id",
	"workers":          "worker_id",
	"tasks":            "task_id",
	"objects":          "object_id",
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *cli) getCommand() *cobra.Command {
	names := sortedKeys(getResources)
	cmd := &cobra.Command{
		Use:       "get [OPTIONS] {" + strings.Join(names, "|") + "} ID",
		Short:     "Show one actor, task, node, object or placement group by its ID, with every column, as YAML.",
		ValidArgs: names,
		Args:      resourceArg("get", names),
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(c.get(&parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, append(append([]flagSpec{}, stateAccessFlags...), loggingFlags...))
	return cmd
}

// get is a list filtered on the resource's ID with detail, as Ray's is.
func (c *cli) get(p *parsedFlags) int {
	resource, id := p.args[0], p.args[1]
	failf := func(format string, args ...any) int {
		fmt.Fprintf(c.stderr, "ray get %s: %s\n", resource, fmt.Sprintf(format, args...))
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q, err := c.newStateQuery(ctx, p, resource)
	if err != nil {
		return failf("%v", err)
	}
	q.params.Set("filter_keys", getResources[resource])
	q.params.Set("filter_predicates", "=")
	q.params.Set("filter_values", id)
	q.params.Set("detail", "true")
	res, err := c.fetchList(ctx, q)
	if err != nil {
		return failf("%v", err)
	}
	if res.PartialFailure != "" {
		fmt.Fprintf(c.stderr, "Warning: %s\n", res.PartialFailure)
	}
	if len(res.Result) == 0 {
		fmt.Fprintf(c.stdout, "Resource with id=%s not found in the cluster.\n", id)
		return 0
	}
	if err := writeYAML(c.stdout, res.Result); err != nil {
		return failf("%v", err)
	}
	return 0
}

// summaryResources are what `ray summary` groups, and by which column.
var summaryResources = []string{"actors", "tasks", "objects"}

func (c *cli) summaryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:       "summary [OPTIONS] {" + strings.Join(summaryResources, "|") + "}",
		Short:     "Summarize the cluster's tasks by function or its actors by class, with counts per state.",
		ValidArgs: summaryResources,
		Args:      resourceArg("summary", summaryResources),
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(c.summary(&parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, append(append([]flagSpec{}, stateAccessFlags...), loggingFlags...))
	return cmd
}

// summaryGroup is one line of a summary table.
type summaryGroup struct {
	name, typ string
	counts    map[string]int
}

// summary groups the resource's rows as Ray's `ray summary` does; it reads
// the list API (the most rows it answers), since this head has no
// summarize endpoint.
func (c *cli) summary(p *parsedFlags) int {
	resource := p.args[0]
	failf := func(format string, args ...any) int {
		fmt.Fprintf(c.stderr, "ray summary %s: %s\n", resource, fmt.Sprintf(format, args...))
		return 1
	}
	if resource == "objects" {
		return failf("not supported: Ray groups objects by the call site that created them, which this runtime does not record; use 'ray list objects'")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	q, err := c.newStateQuery(ctx, p, resource)
	if err != nil {
		return failf("%v", err)
	}
	q.params.Set("limit", "10000")
	res, err := c.fetchList(ctx, q)
	if err != nil {
		return failf("%v", err)
	}
	if res.PartialFailure != "" {
		fmt.Fprintf(c.stderr, "Warning: %s\n", res.PartialFailure)
	}
	if res.NumFiltered > len(res.Result) {
		fmt.Fprintf(c.stderr, "Warning: summarizing the first %d of %d %s\n", len(res.Result), res.NumFiltered, resource)
	}
	if len(res.Result) == 0 {
		fmt.Fprintln(c.stdout, "No resource in the cluster")
		return 0
	}
	key, by := "class_name", "class"
	if resource == "tasks" {
		key, by = "func_or_class_name", "func_name"
	}
	groups := map[string]*summaryGroup{}
	var order []string
	// Ray prints every count, zero ones too.
	stats := map[string]int{"total_actors": 0}
	if resource == "tasks" {
		stats = map[string]int{"total_tasks": 0, "total_actor_scheduled": 0, "total_actor_tasks": 0}
	}
	for _, row := range res.Result {
		name := cell(row[key])
		g, ok := groups[name]
		if !ok {
			g = &summaryGroup{name: name, typ: cell(row["type"]), counts: map[string]int{}}
			groups[name] = g
			order = append(order, name)
		}
		g.counts[cell(row["state"])]++
		if resource == "actors" {
			stats["total_actors"]++
			continue
		}
		switch cell(row["type"]) {
		case "NORMAL_TASK":
			stats["total_tasks"]++
		case "ACTOR_CREATION_TASK":
			stats["total_actor_scheduled"]++
		case "ACTOR_TASK":
			stats["total_actor_tasks"]++
		}
	}
	w := c.stdout
	fmt.Fprintf(w, "======== %s Summary: %s ========\n", strings.ToUpper(resource[:1])+resource[1:], time.Now().Format("2006-01-02 15:04:05.000000"))
	fmt.Fprintln(w, "Stats:")
	fmt.Fprintln(w, "------------------------------------")
	statKeys := make([]string, 0, len(stats))
	for k := range stats {
		statKeys = append(statKeys, k)
	}
	sort.Strings(statKeys)
	for _, k := range statKeys {
		fmt.Fprintf(w, "%s: %d\n", k, stats[k])
	}
	fmt.Fprintf(w, "\n\nTable (group by %s):\n", by)
	fmt.Fprintln(w, "------------------------------------")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if resource == "tasks" {
		fmt.Fprintln(tw, "\tFUNC_OR_CLASS_NAME\tSTATE_COUNTS\tTYPE")
	} else {
		fmt.Fprintln(tw, "\tCLASS_NAME\tSTATE_COUNTS")
	}
	for i, name := range order {
		g := groups[name]
		states := make([]string, 0, len(g.counts))
		for s := range g.counts {
			states = append(states, s)
		}
		sort.Strings(states)
		parts := make([]string, 0, len(states))
		for _, s := range states {
			parts = append(parts, s+": "+strconv.Itoa(g.counts[s]))
		}
		line := strconv.Itoa(i) + "\t" + name + "\t" + strings.Join(parts, ", ")
		if resource == "tasks" {
			line += "\t" + g.typ
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush()
	return 0
}
