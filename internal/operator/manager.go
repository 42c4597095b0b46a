package operator

import (
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Setup registers one controller with the manager.
type Setup struct {
	// Name names the controller in errors.
	Name string
	// Add wires the controller into mgr.
	Add func(mgr ctrl.Manager, o Options) error
}

// NewManager builds a manager with health and readiness checks, metrics and leader election as
// configured, and adds the given controllers.
func NewManager(cfg *rest.Config, scheme *runtime.Scheme, o Options, setups ...Setup) (ctrl.Manager, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.QPS), o.Burst
	cfg.UserAgent = "rayk8s-operator"

	var cacheOpts cache.Options
	if len(o.WatchNamespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.WatchNamespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	shutdown := o.GracefulShutdownTimeout
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.EnableLeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		// Releasing the lease on a clean exit lets a new replica take over at once during upgrades.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &shutdown,
		Controller:                    config.Controller{MaxConcurrentReconciles: o.ReconcileConcurrency},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("adding health check: %w", err)
	}
	// Ready once the informer caches have synced, so a rolling update of the operator does not
	// route probes to a replica that cannot yet see the cluster.
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("informer caches not synced")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("adding readiness check: %w", err)
	}
	if err := checkBatchSchedulerAPI(mgr, o); err != nil {
		return nil, err
	}
	for _, s := range setups {
		if err := s.Add(mgr, o); err != nil {
			return nil, fmt.Errorf("setting up %s controller: %w", s.Name, err)
		}
	}
	return mgr, nil
}

// checkBatchSchedulerAPI refuses to start when the chosen batch scheduler's group object kind
// (its PodGroup CRD) is not served: every Ray pod would otherwise wait for a group that can never
// be created.
func checkBatchSchedulerAPI(mgr ctrl.Manager, o Options) error {
	bs, err := o.Scheduler()
	if err != nil || bs == nil {
		return err
	}
	gvk, ok := bs.GroupKind()
	if !ok {
		return nil
	}
	setting := o.name("batch-scheduler", "batchScheduler")
	if o.EnableBatchScheduler {
		setting = o.name("enable-batch-scheduler", "enableBatchScheduler")
	}
	if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
		return fmt.Errorf("%s: batch scheduler %s needs the %s CRD (%s), which the API server does not serve; install %s first: %w",
			setting, bs.Name(), gvk.Kind, gvk.GroupVersion(), bs.Name(), err)
	}
	return nil
}
