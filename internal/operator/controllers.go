package operator

import (
	"context"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/raycronjob"
	"github.com/rayk8s/rayk8s/internal/controller/rayjob"
	"github.com/rayk8s/rayk8s/internal/controller/rayservice"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// NewScheme returns the types the manager reads and writes.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(rayv1.AddToScheme(s))
	return s
}

// Controllers lists every controller the manager runs. Each kind's controller adds itself here.
func Controllers() []Setup {
	return []Setup{
		{Name: "RayCluster", Add: addRayCluster},
		{Name: "RayJob", Add: addRayJob},
		{Name: "RayService", Add: addRayService},
		{Name: "RayCronJob", Add: addRayCronJob},
	}
}

// addRayCluster wires the RayCluster controller: KubeRay's operator environment variables, the
// manager's feature gates and concurrency, the events.k8s.io recorder, and the kuberay_cluster_*
// metrics when --enable-metrics is set.
func addRayCluster(mgr ctrl.Manager, o Options) error {
	cfg, err := raycluster.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cfg.FeatureGates = o.FeatureGates
	cfg.MaxConcurrentReconciles = o.ReconcileConcurrency
	cfg.Resources = withOperatorSettings(cfg.Resources, o)
	if cfg.BatchScheduler, err = o.Scheduler(); err != nil {
		return err
	}
	// Secrets, claims and service accounts users name are outside the cache (cacheOptions).
	r, err := raycluster.New(mgr.GetClient(), cfg, deps(mgr, raycluster.ControllerName, o, nil),
		raycluster.WithAPIReader(mgr.GetAPIReader()))
	if err != nil {
		return err
	}
	return r.SetupWithManager(context.Background(), mgr)
}

// addRayJob wires the RayJob controller: KubeRay's operator environment variables, the manager's
// feature gates and concurrency, the events.k8s.io recorder, how dashboards are reached
// (--use-kubernetes-proxy), and the kuberay_job_* metrics when --enable-metrics is set.
func addRayJob(mgr ctrl.Manager, o Options) error {
	cfg, err := rayjob.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cfg.FeatureGates = o.FeatureGates
	cfg.MaxConcurrentReconciles = o.ReconcileConcurrency
	cfg.Resources = withOperatorSettings(cfg.Resources, o)
	// Either the environment variable (KubeRay's flag-mode switch) or the config field turns it on.
	cfg.DeleteRayJobAfterJobFinishes = cfg.DeleteRayJobAfterJobFinishes || o.DeleteRayJobAfterJobFinishes
	if cfg.BatchScheduler, err = o.Scheduler(); err != nil {
		return err
	}
	resolver, err := newResolver(mgr, o, cfg.Resources)
	if err != nil {
		return err
	}
	r, err := rayjob.New(mgr.GetClient(), cfg, deps(mgr, rayjob.ControllerName, o, resolver))
	if err != nil {
		return err
	}
	return r.SetupWithManager(context.Background(), mgr)
}

// addRayService wires the RayService controller: KubeRay's operator environment variables
// (ENABLE_ZERO_DOWNTIME and the RayCluster builder options), the manager's feature gates and
// concurrency, the events.k8s.io recorder, how dashboards are reached (--use-kubernetes-proxy), and
// the kuberay_service_* metrics when --enable-metrics is set.
func addRayService(mgr ctrl.Manager, o Options) error {
	cfg, err := rayservice.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cfg.FeatureGates = o.FeatureGates
	cfg.MaxConcurrentReconciles = o.ReconcileConcurrency
	cfg.Resources = withOperatorSettings(cfg.Resources, o)
	resolver, err := newResolver(mgr, o, cfg.Resources)
	if err != nil {
		return err
	}
	// Services without the operator's label are outside the cache (cacheOptions).
	r, err := rayservice.New(mgr.GetClient(), cfg, deps(mgr, rayservice.ControllerName, o, resolver),
		rayservice.WithAPIReader(mgr.GetAPIReader()))
	if err != nil {
		return err
	}
	return r.SetupWithManager(context.Background(), mgr)
}

// addRayCronJob wires the RayCronJob controller when the RayCronJob feature gate is on (off by
// default, as in KubeRay; off, the kind is not watched at all): the manager's feature gates and
// concurrency, the events.k8s.io recorder, the API reader that confirms just-created RayJobs, and
// the rayk8s_raycronjob_* metrics when --enable-metrics is set.
func addRayCronJob(mgr ctrl.Manager, o Options) error {
	if !features.Enabled(o.FeatureGates, features.RayCronJob) {
		return nil
	}
	cfg, err := raycronjob.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	cfg.FeatureGates = o.FeatureGates
	cfg.MaxConcurrentReconciles = o.ReconcileConcurrency
	r, err := raycronjob.New(mgr.GetClient(), cfg, deps(mgr, raycronjob.ControllerName, o, nil),
		raycronjob.WithAPIReader(mgr.GetAPIReader()))
	if err != nil {
		return err
	}
	return r.SetupWithManager(mgr)
}

// deps are what every controller gets from the manager: its events.k8s.io recorder, the metrics
// registry when --enable-metrics is set, and how dashboards are reached (nil: cluster DNS).
func deps(mgr ctrl.Manager, controller string, o Options, resolver dashboardresolver.Resolver) reconcilekit.Deps {
	d := reconcilekit.Deps{Recorder: mgr.GetEventRecorder(controller), Resolver: resolver}
	if o.EnableMetrics {
		d.Registerer = crmetrics.Registry
	}
	return d
}

// withOperatorSettings adds what the builders take from the manager rather than the environment:
// the operator version and the config file's pod defaults.
func withOperatorSettings(ro resources.Options, o Options) resources.Options {
	ro.OperatorVersion = o.OperatorVersion
	ro.PodDefaults = o.PodDefaults
	return ro
}

// newResolver picks how controllers reach Ray dashboards: the head Service's cluster DNS name, or
// the API server's service proxy with --use-kubernetes-proxy.
func newResolver(mgr ctrl.Manager, o Options, ro resources.Options) (dashboardresolver.Resolver, error) {
	// Auth tokens are read uncached: the operator does not watch Secrets.
	token := dashboardresolver.SecretToken(mgr.GetAPIReader())
	if o.UseKubernetesProxy {
		p, err := dashboardresolver.NewProxy(mgr.GetConfig())
		if err != nil {
			return nil, err
		}
		p.Token = token
		return p, nil
	}
	return &dashboardresolver.DNS{Options: ro, Token: token}, nil
}
