package raycli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// gcsAddressFlag is the --address of commands that talk to the control
// service directly.
var gcsAddressFlag = flagSpec{name: "address", kind: valueFlag,
	usage: "Control service `host:port` (default: $RAY_ADDRESS, else the head started on this machine)"}

var statusFlags = append([]flagSpec{gcsAddressFlag}, loggingFlags...)

func (c *cli) statusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Show the cluster's nodes, resources, demand and the autoscaler's view.",
		Args:  unexpectedArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(c.status(&parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, statusFlags)
	return cmd
}

func (c *cli) status(p *parsedFlags) int {
	addr, err := resolveGCSAddress(p.str("address"), c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray status: %v\n", err)
		return 1
	}
	tlsCfg, err := raytls.ClientFromEnv(c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray status: %v\n", err)
		return 1
	}
	conn, err := gcs.Dial(addr, gcs.WithAuthToken(c.getenv("RAY_AUTH_TOKEN")), gcs.WithTLS(tlsCfg))
	if err != nil {
		fmt.Fprintf(c.stderr, "ray status: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := readStatus(ctx, conn)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray status: could not reach the GCS at %s: %v\n", addr, err)
		return 1
	}
	v.now = time.Now()
	v.dropStaleReport()
	printStatus(c.stdout, v)
	return 0
}

// statusView is what `ray status` prints: the node table, the head's demand and activity, and
// the cluster autoscaler's last report when one runs.
type statusView struct {
	now   time.Time
	nodes []*gcsv1.Node
	// state is the head's autoscaling state; nil when the head does not serve it.
	state *gcsv1.GetClusterStateResponse
	// report is the autoscaler's last report; nil without an autoscaler.
	report *report.Report
	// notes are problems reading the optional parts, printed rather than failing.
	notes []string
}

// readStatus reads the nodes (required) and the autoscaling state and report (optional).
func readStatus(ctx context.Context, conn grpc.ClientConnInterface) (statusView, error) {
	var v statusView
	resp, err := gcsv1.NewNodeServiceClient(conn).ListNodes(ctx, &gcsv1.ListNodesRequest{})
	if err != nil {
		return v, err
	}
	v.nodes = resp.Nodes
	st, err := gcsv1.NewAutoscalerStateServiceClient(conn).GetClusterState(ctx, &gcsv1.GetClusterStateRequest{})
	if err != nil {
		v.notes = append(v.notes, fmt.Sprintf("could not read the pending demand: %v", err))
	} else {
		v.state = st
	}
	kv, err := gcsv1.NewKVServiceClient(conn).Get(ctx, &gcsv1.KVGetRequest{Namespace: report.KVNamespace, Key: report.KVKey})
	switch {
	case err != nil:
		v.notes = append(v.notes, fmt.Sprintf("could not read the autoscaler's report: %v", err))
	case kv.Found:
		if v.report, err = report.Decode(kv.Value); err != nil {
			v.notes = append(v.notes, err.Error())
		}
	}
	return v, nil
}

// staleReportAge is how old the autoscaler's report may be before `ray status` stops trusting it:
// the sidecar writes one every 5 seconds, so an older one means it stopped (autoscaling turned off,
// or the sidecar down).
const staleReportAge = 2 * time.Minute

// dropStaleReport sets aside a report the autoscaler has not renewed, with a note saying so.
func (v *statusView) dropStaleReport() {
	if v.report == nil {
		return
	}
	if age := v.now.Sub(v.report.Time); age > staleReportAge {
		v.notes = append(v.notes, fmt.Sprintf("the autoscaler's last report is %s old and is not shown; is its sidecar running?", age.Round(time.Second)))
		v.report = nil
	}
}

const statusRule = "---------------------------------------------------------------"

// recentFailureWindow bounds the dead nodes listed as recent failures.
const recentFailureWindow = 30 * time.Minute

// gracefulDeathReason is the reason a node's agent gives when it unregisters on shutdown: a node
// that left on purpose (a scale-down, `ray stop`) is not a failure.
const gracefulDeathReason = "node shut down"

// printStatus renders the view the way Ray's `ray status` lays it out (Node status: Active, Idle,
// Pending, Recent failures; Resources: Usage, Constraints, Demands), then the demand the
// autoscaler cannot serve and, as our addition, a table of every node.
func printStatus(w io.Writer, v statusView) {
	fmt.Fprintf(w, "======== Autoscaler status: %s ========\n", v.now.Format("2006-01-02 15:04:05.000000"))
	fmt.Fprintln(w, "Node status")
	fmt.Fprintln(w, statusRule)
	active, idle := v.nodeCounts()
	printCounts(w, "Active:", active, " (no active nodes)")
	printCounts(w, "Idle:", idle, " (no idle nodes)")
	fmt.Fprintln(w, "Pending:")
	if v.report == nil || len(v.report.Launching) == 0 {
		fmt.Fprintln(w, " (no pending nodes)")
	} else {
		for _, g := range slices.Sorted(maps.Keys(v.report.Launching)) {
			fmt.Fprintf(w, " %s, %d launching\n", g, v.report.Launching[g])
		}
	}
	fmt.Fprintln(w, "Recent failures:")
	if failures := v.failures(); len(failures) == 0 {
		fmt.Fprintln(w, " (no failures)")
	} else {
		for _, f := range failures {
			fmt.Fprintln(w, " "+f)
		}
	}

	total, avail := gcs.ClusterResources(v.nodes)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Resources")
	fmt.Fprintln(w, statusRule)
	fmt.Fprintln(w, "Usage:")
	for _, name := range visibleResources(total) {
		used := total[name] - avail[name]
		if name == "memory" || name == "object_store_memory" {
			fmt.Fprintf(w, " %s/%s %s\n", formatBytes(used), formatBytes(total[name]), name)
			continue
		}
		fmt.Fprintf(w, " %s/%s %s\n", formatAmount(used), formatAmount(total[name]), name)
	}
	fmt.Fprintln(w)
	v.printDemands(w)
	for _, n := range v.notes {
		fmt.Fprintf(w, " (%s)\n", n)
	}
	fmt.Fprintln(w)
	printNodeTable(w, v.nodes)
}

// group names a node by the autoscaler's report (its worker group, or headgroup), else by role.
func (v statusView) group(n *gcsv1.Node) string {
	if v.report != nil {
		if g, ok := v.report.NodeGroups[n.NodeId]; ok && g != "" {
			return g
		}
	}
	if n.IsHead {
		return "head"
	}
	return "worker"
}

// nodeCounts counts alive nodes per group, split into those with work and idle ones.
func (v statusView) nodeCounts() (active, idle map[string]int) {
	active, idle = map[string]int{}, map[string]int{}
	idleIDs := map[string]bool{}
	if v.state != nil {
		for _, a := range v.state.Activity {
			if a.IdleSinceMs > 0 && a.RunningProcesses == 0 {
				idleIDs[a.NodeId] = true
			}
		}
	}
	for _, n := range v.nodes {
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
			continue
		}
		if idleIDs[n.NodeId] {
			idle[v.group(n)]++
		} else {
			active[v.group(n)]++
		}
	}
	return active, idle
}

func printCounts(w io.Writer, title string, counts map[string]int, none string) {
	fmt.Fprintln(w, title)
	if len(counts) == 0 {
		fmt.Fprintln(w, none)
		return
	}
	for _, g := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(w, " %d %s\n", counts[g], g)
	}
}

// failures lists nodes that died recently for a reason other than a graceful shutdown, and the
// worker pods the autoscaler saw fail.
func (v statusView) failures() []string {
	var out []string
	for _, n := range v.nodes {
		if n.State != gcsv1.NodeState_NODE_STATE_DEAD || n.DeathReason == gracefulDeathReason {
			continue
		}
		if n.EndTimeMs > 0 && v.now.Sub(time.UnixMilli(n.EndTimeMs)) > recentFailureWindow {
			continue
		}
		out = append(out, fmt.Sprintf("%s: NodeTerminated: %s (ip: %s)", v.group(n), n.DeathReason, n.NodeIpAddress))
	}
	if v.report != nil {
		for _, p := range v.report.FailedPods {
			out = append(out, fmt.Sprintf("%s: pod %s failed: %s (ip: %s)", p.Group, p.Pod, p.Reason, p.IP))
		}
	}
	return out
}

// printDemands prints the standing request_resources bundles, the pending demand by shape and
// kind, and what cannot be served: the autoscaler's reasons when it reports, else the shapes the
// head marks infeasible on the nodes it has.
func (v statusView) printDemands(w io.Writer) {
	fmt.Fprintln(w, "Constraints:")
	requests := map[string]int{}
	if v.state != nil {
		for _, r := range v.state.Requested {
			requests[shapeString(r.Resources)]++
		}
	}
	if len(requests) == 0 {
		fmt.Fprintln(w, " (no request_resources() constraints)")
	}
	for _, s := range slices.Sorted(maps.Keys(requests)) {
		fmt.Fprintf(w, " %s: %d from request_resources()\n", s, requests[s])
	}

	fmt.Fprintln(w, "Demands:")
	type demand struct{ shape, what string }
	counts := map[demand]int{}
	headInfeasible := map[string]bool{}
	if v.state != nil {
		for _, p := range v.state.Pending {
			kind, infeasible := strings.CutSuffix(p.Kind, "_infeasible")
			counts[demand{shapeString(p.Resources), pendingWhat(kind)}]++
			if infeasible {
				headInfeasible[shapeString(p.Resources)] = true
			}
		}
	}
	if len(counts) == 0 {
		fmt.Fprintln(w, " (no resource demands)")
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b demand) int {
		return cmp.Or(strings.Compare(a.shape, b.shape), strings.Compare(a.what, b.what))
	})
	for _, d := range keys {
		fmt.Fprintf(w, " %s: %d+ %s\n", d.shape, counts[d], d.what)
	}

	var infeasible, unmet []string
	if v.report != nil {
		for _, u := range v.report.Unmet {
			line := fmt.Sprintf(" %s: %d %s: %s", shapeString(u.Resources), u.Count, plural(u.Count, "bundle", "bundles"), u.Reason)
			if u.Infeasible {
				infeasible = append(infeasible, line)
			} else {
				unmet = append(unmet, line)
			}
		}
	} else {
		for _, s := range slices.Sorted(maps.Keys(headInfeasible)) {
			infeasible = append(infeasible, fmt.Sprintf(" %s: no alive node can ever hold it, and no autoscaler reports on this cluster", s))
		}
	}
	if len(infeasible) > 0 {
		fmt.Fprintln(w, "Infeasible demands:")
		for _, l := range infeasible {
			fmt.Fprintln(w, l)
		}
	}
	if len(unmet) > 0 {
		fmt.Fprintln(w, "Waiting for capacity:")
		for _, l := range unmet {
			fmt.Fprintln(w, l)
		}
	}
}

// pendingWhat names what waits, by the placement's kind.
func pendingWhat(kind string) string {
	switch kind {
	case "ray_task", "ray_actor":
		return "pending tasks/actors"
	case "job":
		return "pending jobs"
	case "serve_replica":
		return "pending Serve replicas"
	case "ray_placement_group":
		return "pending placement group bundles"
	}
	return "pending " + kind
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// printNodeTable lists every node the head knows, alive and dead.
func printNodeTable(w io.Writer, nodes []*gcsv1.Node) {
	fmt.Fprintln(w, "Nodes")
	fmt.Fprintln(w, statusRule)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE ID\tIP\tROLE\tSTATE\tRESOURCES (used/total)")
	for _, n := range nodes {
		role := "worker"
		if n.IsHead {
			role = "head"
		}
		state := strings.TrimPrefix(n.State.String(), "NODE_STATE_")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.NodeId, n.NodeIpAddress, role, state, resourceSummary(n.ResourcesTotal, n.ResourcesAvailable))
	}
	_ = tw.Flush()
}

func visibleResources(m map[string]float64) []string {
	var names []string
	for k := range m {
		// node:<ip> resources are placement handles, not capacity.
		if !strings.HasPrefix(k, "node:") {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		rank := func(s string) int {
			switch s {
			case "CPU":
				return 0
			case "GPU":
				return 1
			case "memory":
				return 2
			case "object_store_memory":
				return 3
			}
			return 4
		}
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return names
}

func resourceSummary(total, avail map[string]float64) string {
	var parts []string
	for _, name := range visibleResources(total) {
		used := total[name] - avail[name]
		if name == "memory" || name == "object_store_memory" {
			parts = append(parts, fmt.Sprintf("%s %s/%s", name, formatBytes(used), formatBytes(total[name])))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s/%s", name, formatAmount(used), formatAmount(total[name])))
	}
	return strings.Join(parts, ", ")
}

func formatAmount(f float64) string {
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func formatBytes(b float64) string {
	const gib = 1 << 30
	const mib = 1 << 20
	switch {
	case b >= gib:
		return strconv.FormatFloat(b/gib, 'f', 2, 64) + "GiB"
	case b >= mib:
		return strconv.FormatFloat(b/mib, 'f', 2, 64) + "MiB"
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + "B"
}
