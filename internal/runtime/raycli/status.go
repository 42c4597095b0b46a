package raycli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

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
		Short: "Show the cluster's nodes and resources.",
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
	resp, err := gcsv1.NewNodeServiceClient(conn).ListNodes(ctx, &gcsv1.ListNodesRequest{})
	if err != nil {
		fmt.Fprintf(c.stderr, "ray status: could not reach the GCS at %s: %v\n", addr, err)
		return 1
	}
	printStatus(c.stdout, resp.Nodes, time.Now())
	printDemands(ctx, c.stdout, conn)
	return 0
}

// printStatus renders the node table and the resource usage in the spirit
// of Ray's `ray status`.
func printStatus(w io.Writer, nodes []*gcsv1.Node, now time.Time) {
	fmt.Fprintf(w, "======== Cluster status: %s ========\n", now.Format("2006-01-02 15:04:05"))
	fmt.Fprintln(w, "Node status")
	fmt.Fprintln(w, strings.Repeat("-", 60))
	alive, dead := 0, 0
	for _, n := range nodes {
		if n.State == gcsv1.NodeState_NODE_STATE_ALIVE {
			alive++
		} else {
			dead++
		}
	}
	fmt.Fprintf(w, "Active: %d\nDead: %d\n\n", alive, dead)
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

	total, avail := gcs.ClusterResources(nodes)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Resources")
	fmt.Fprintln(w, strings.Repeat("-", 60))
	fmt.Fprintln(w, "Usage:")
	for _, name := range visibleResources(total) {
		used := total[name] - avail[name]
		if name == "memory" || name == "object_store_memory" {
			fmt.Fprintf(w, " %s/%s %s\n", formatBytes(used), formatBytes(total[name]), name)
			continue
		}
		fmt.Fprintf(w, " %s/%s %s\n", formatAmount(used), formatAmount(total[name]), name)
	}
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
