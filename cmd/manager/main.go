// Command manager is the rayk8s operator: it reconciles ray.io/v1 RayCluster, RayJob and RayService.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/rayk8s/rayk8s/internal/operator"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	complete := operator.BindFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	opts, err := complete()
	if err != nil {
		return fmt.Errorf("invalid flags (see --help): %w", err)
	}
	log, err := operator.NewLogger(opts, os.Stderr)
	if err != nil {
		return err
	}
	ctrl.SetLogger(log)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig (set KUBECONFIG or run in a pod): %w", err)
	}
	mgr, err := operator.NewManager(cfg, operator.NewScheme(), opts, operator.Controllers()...)
	if err != nil {
		return err
	}
	log.Info("Starting manager", "watchNamespaces", opts.WatchNamespaces, "leaderElection", opts.EnableLeaderElection)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	log.Info("Manager stopped")
	return nil
}
