// Command manager is the rayk8s operator: it reconciles ray.io/v1 RayCluster, RayJob and RayService.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/rayk8s/rayk8s/internal/operator"
)

func main() {
	if err := run(ctrl.SetupSignalHandler(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		os.Exit(1)
	}
}

// run parses args, then runs the manager until ctx ends. --help prints the flags to out and
// returns nil.
func run(ctx context.Context, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(out)
	complete := operator.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	opts, err := complete()
	if err != nil {
		return fmt.Errorf("invalid settings (see --help): %w", err)
	}
	log, closeLog, err := operator.NewLogger(opts, out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeLog(); err == nil && cerr != nil {
			err = fmt.Errorf("closing the log file: %w", cerr)
		}
	}()
	ctrl.SetLogger(log)
	operator.LogSettings(log, opts)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig (set KUBECONFIG or run in a pod): %w", err)
	}
	mgr, err := operator.NewManager(cfg, operator.NewScheme(), opts, operator.Controllers()...)
	if err != nil {
		return err
	}
	log.Info("Starting manager", "watchNamespaces", opts.WatchNamespaces, "leaderElection", opts.EnableLeaderElection)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	log.Info("Manager stopped")
	return nil
}
