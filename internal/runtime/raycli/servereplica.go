package raycli

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/rayk8s/rayk8s/internal/serve/builtin"
)

// serveReplica runs a built-in Serve replica; the node agent starts it as
// `ray serve-replica` with the replica's identity in the environment.
func (c *cli) serveReplica(args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(c.stderr, "ray serve-replica: unexpected arguments %v\n", args)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := builtin.Run(ctx, c.getenv, newLogger(c.stderr)); err != nil {
		fmt.Fprintf(c.stderr, "ray serve-replica: %v\n", err)
		return 1
	}
	return 0
}
