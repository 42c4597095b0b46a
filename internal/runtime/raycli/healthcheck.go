package raycli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

var healthCheckFlags = append([]flagSpec{
	gcsAddressFlag,
	{name: "component", kind: valueFlag, usage: "Accepted for compatibility with Ray; the control service is always what is checked (any `name`)"},
	compat("skip-version-check", boolFlag),
	compat("redis-password", valueFlag),
}, loggingFlags...)

func (c *cli) healthCheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health-check [OPTIONS]",
		Short: "Exit 0 when the cluster's control service answers.",
		Args:  unexpectedArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(c.healthCheck(&parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, healthCheckFlags)
	return cmd
}

// healthCheck exits 0 when the control service answers. It is what
// KubeRay's wait-gcs-ready init container loops on, so it stays quiet on
// success and short on failure.
func (c *cli) healthCheck(p *parsedFlags) int {
	addr, err := resolveGCSAddress(p.str("address"), c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray health-check: %v\n", err)
		return 1
	}
	tlsCfg, err := raytls.ClientFromEnv(c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray health-check: %v\n", err)
		return 1
	}
	conn, err := gcs.Dial(addr, gcs.WithTLS(tlsCfg))
	if err != nil {
		fmt.Fprintf(c.stderr, "ray health-check: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := gcsv1.NewNodeServiceClient(conn).CheckAlive(ctx, &gcsv1.CheckAliveRequest{}); err != nil {
		fmt.Fprintf(c.stderr, "ray health-check: the GCS at %s is not healthy: %v\n", addr, err)
		return 1
	}
	return 0
}
