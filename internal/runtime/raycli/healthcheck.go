package raycli

import (
	"context"
	"fmt"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

var healthCheckFlags = []flagSpec{
	{name: "address", kind: valueFlag},
	{name: "component", kind: valueFlag},
	{name: "skip-version-check", kind: boolFlag},
	{name: "redis-password", kind: valueFlag},
	{name: "verbose", kind: boolFlag, short: "v"},
	{name: "log-style", kind: valueFlag},
	{name: "log-color", kind: valueFlag},
}

// healthCheck exits 0 when the control service answers. It is what
// KubeRay's wait-gcs-ready init container loops on, so it stays quiet on
// success and short on failure.
func (c *cli) healthCheck(args []string) int {
	p, err := parseFlags(args, healthCheckFlags, false, true)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray health-check: %v\n", err)
		return 1
	}
	addr, err := resolveGCSAddress(p.str("address"), c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "ray health-check: %v\n", err)
		return 1
	}
	conn, err := gcs.Dial(addr)
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
