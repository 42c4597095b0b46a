package raycli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/grpc"

	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
)

// printDemands renders the scheduler's queue as `ray status` does: one
// line per resource shape with how many tasks and actors wait for it.
func printDemands(ctx context.Context, w io.Writer, conn grpc.ClientConnInterface) {
	fmt.Fprintln(w, "Demands:")
	resp, err := corev1.NewSchedulerClient(conn).Demand(ctx, &corev1.DemandRequest{})
	if err != nil {
		fmt.Fprintf(w, " (could not read the pending demand: %v)\n", err)
		return
	}
	counts := map[string]int{}
	for _, d := range resp.Demands {
		counts[shapeString(d.Resources)]++
	}
	if len(counts) == 0 {
		fmt.Fprintln(w, " (no resource demands)")
		return
	}
	shapes := make([]string, 0, len(counts))
	for s := range counts {
		shapes = append(shapes, s)
	}
	slices.Sort(shapes)
	for _, s := range shapes {
		fmt.Fprintf(w, " %s: %d+ pending tasks/actors\n", s, counts[s])
	}
}

// shapeString prints a resource shape like Ray's Python dict repr.
func shapeString(res map[string]float64) string {
	names := visibleResources(res)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		if res[n] > 0 {
			parts = append(parts, fmt.Sprintf("'%s': %s", n, formatAmount(res[n])))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
