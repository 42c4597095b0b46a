// Package raycli is the `ray` command line: `ray start|stop|status|
// health-check` for nodes and `ray job …` for the Jobs API, with Ray's
// flags, output and exit codes so KubeRay's generated pod commands and
// users' scripts work unchanged. Commands are built with cobra, which gives
// every command --help and the shell completion scripts.
package raycli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
)

type cli struct {
	stdout, stderr io.Writer
	getenv         env
	// args is the whole command line: `ray start` re-executes itself with
	// it and names the flags in it that it does not know.
	args []string
}

// Main runs the command line with args (without the program name) and
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: os.Getenv, args: args}
	return c.run(args)
}

// exitCode ends a command that has already printed why it failed.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exit turns a command's exit status into what a cobra RunE returns.
func exit(code int) error {
	if code == 0 {
		return nil
	}
	return exitCode(code)
}

// usageExit is the status of a command line that does not parse: unknown
// commands or flags, missing flag values. Ray's CLI exits 2 for these.
const usageExit = 2

func (c *cli) run(args []string) int {
	root := c.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	path := root.Name()
	if cmd != nil {
		path = cmd.CommandPath()
	}
	fmt.Fprintf(c.stderr, "%s: %v\nRun '%s --help' for the commands and options.\n", path, err, path)
	return usageExit
}

// usageTemplate lays help out as Ray's CLI does: usage line, description,
// options, sub-commands.
const usageTemplate = `Usage: {{.UseLine}}{{with (or .Long .Short)}}

{{. | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableLocalFlags}}

Options:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding}} {{.Short}}{{end}}{{end}}{{end}}
`

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "ray [OPTIONS] COMMAND [ARGS]...",
		Short: "Start and manage Ray nodes and jobs (rayk8s's Go-native Ray runtime).",
		// Ray prints "ray, version X"; cobra's --version uses this template.
		Version:       dashboard.RayVersion,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Bare `ray` is a usage error, not a request for help.
			fmt.Fprint(c.stderr, cmd.UsageString())
			return exitCode(usageExit)
		},
	}
	root.SetVersionTemplate("ray, version {{.Version}}\n")
	// Declared before cobra would, so that --version has no -v shorthand,
	// which Ray's commands use for --verbose.
	root.Flags().Bool("version", false, "Show the version and exit.")
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate("{{.UsageString}}")
	root.AddCommand(
		c.startCommand(),
		c.stopCommand(),
		c.statusCommand(),
		c.listCommand(),
		c.getCommand(),
		c.summaryCommand(),
		c.healthCheckCommand(),
		c.jobCommand(),
		c.autoscalerCommand(),
		c.serveReplicaCommand(),
		c.versionCommand(),
	)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	forEachCommand(root, func(cmd *cobra.Command) {
		// Use lines spell out [OPTIONS] where a command takes them.
		cmd.DisableFlagsInUseLine = true
		cmd.Flags().BoolP("help", "h", false, "Show this message and exit.")
		if cmd.ValidArgsFunction == nil && cmd.ValidArgs == nil {
			cmd.ValidArgsFunction = cobra.NoFileCompletions
		}
	})
	return root
}

func forEachCommand(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, sub := range cmd.Commands() {
		forEachCommand(sub, fn)
	}
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "version",
		Short:  "Show the version and exit.",
		Args:   cobra.NoArgs,
		Hidden: true,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintf(c.stdout, "ray, version %s\n", dashboard.RayVersion)
		},
	}
}

func (c *cli) autoscalerCommand() *cobra.Command {
	var name, namespace string
	cmd := &cobra.Command{
		Use:   "kuberay-autoscaler [OPTIONS]",
		Short: "Run the autoscaler sidecar of a RayCluster's head pod: scale worker groups to the head's demand.",
		Args:  unexpectedArgs,
		RunE: func(*cobra.Command, []string) error {
			if name == "" || namespace == "" {
				fmt.Fprintln(c.stderr, "ray kuberay-autoscaler: --cluster-name and --cluster-namespace are required (KubeRay's head pod passes both)")
				return exitCode(2)
			}
			headTLS, err := raytls.ClientFromEnv(c.getenv)
			if err != nil {
				fmt.Fprintf(c.stderr, "ray kuberay-autoscaler: %v\n", err)
				return exitCode(2)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			err = autoscaler.Run(ctx, autoscaler.Options{
				ClusterName: name,
				Namespace:   namespace,
				HeadTLS:     headTLS,
				MetricsAddr: autoscaler.DefaultMetricsAddr,
				AuthToken:   c.getenv("RAY_AUTH_TOKEN"),
				Logger:      newLogger(c.stderr).WithName("autoscaler"),
			})
			if err != nil && ctx.Err() == nil {
				fmt.Fprintf(c.stderr, "ray kuberay-autoscaler: %v\n", err)
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "cluster-name", "", "`name` of the RayCluster to scale")
	cmd.Flags().StringVar(&namespace, "cluster-namespace", "", "`namespace` of the RayCluster to scale")
	return cmd
}

// unexpectedArgs refuses positional arguments a command does not take.
func unexpectedArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	return nil
}
