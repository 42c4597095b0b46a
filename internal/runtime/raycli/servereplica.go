package raycli

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rayk8s/rayk8s/internal/runtime/gcfloor"
	"github.com/rayk8s/rayk8s/internal/serve/builtin"
)

func (c *cli) serveReplicaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve-replica",
		Short: "Run a built-in Serve replica (started by the node agent).",
		Long: `Run a built-in Serve replica. The node agent starts it with the replica's
identity in the environment; it is not meant to be run by hand.`,
		Args: unexpectedArgs,
		RunE: func(*cobra.Command, []string) error { return exit(c.serveReplica()) },
	}
}

// serveReplica runs a built-in Serve replica until SIGTERM or SIGINT.
func (c *cli) serveReplica() int {
	mb, err := gcfloor.FromEnv(c.getenv, gcfloor.ReplicaDefaultMB)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray serve-replica: %v\n", err)
		return 1
	}
	floor := gcfloor.Hold(mb)
	defer floor.Release()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := builtin.Run(ctx, c.getenv, newLogger(c.stderr)); err != nil {
		fmt.Fprintf(c.stderr, "ray serve-replica: %v\n", err)
		return 1
	}
	return 0
}
