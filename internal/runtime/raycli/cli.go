// Package raycli is the `ray` command line: `ray start|stop|status|
// health-check` for nodes and `ray job …` for the Jobs API, with Ray's
// flags, output and exit codes so KubeRay's generated pod commands and
// users' scripts work unchanged.
package raycli

import (
	"fmt"
	"io"
	"os"

	"github.com/rayk8s/rayk8s/internal/dashboard"
)

type cli struct {
	stdout, stderr io.Writer
	getenv         env
}

// Main runs the command line with args (without the program name) and
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return c.run(args)
}

const usage = `Usage: ray <command> [options]

Commands:
  start          Start a Ray node (--head, or --address=<head>:<port> to join)
  stop           Stop the Ray nodes started on this machine
  status         Show the cluster's nodes and resources
  health-check   Exit 0 when the cluster's control service answers
  job            Submit and manage jobs (submit, status, logs, stop, list, delete)
  kuberay-autoscaler  Run the KubeRay autoscaler (not implemented yet)
  serve-replica  Run a built-in Serve replica (started by the node agent)
`

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return 2
	}
	switch args[0] {
	case "start":
		return c.start(args[1:])
	case "stop":
		return c.stop(args[1:])
	case "status":
		return c.status(args[1:])
	case "health-check":
		return c.healthCheck(args[1:])
	case "job":
		return c.job(args[1:])
	case "serve-replica":
		return c.serveReplica(args[1:])
	case "kuberay-autoscaler":
		fmt.Fprintln(c.stderr, "ray kuberay-autoscaler: not implemented yet in this runtime")
		return 1
	case "--version", "version":
		fmt.Fprintf(c.stdout, "ray, version %s\n", dashboard.RayVersion)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(c.stdout, usage)
		return 0
	}
	fmt.Fprintf(c.stderr, "ray: unknown command %q\n\n%s", args[0], usage)
	return 2
}
