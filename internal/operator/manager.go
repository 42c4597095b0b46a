package operator

import (
	"fmt"
	"net/http"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
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
	// QPS and burst apply per REST client, and controller-runtime makes one client per kind plus
	// one for events.k8s.io: pod creates, status writes and events each get their own token
	// bucket, so events never spend the budget of object writes. Recording an event only queues
	// it (client-go's broadcaster sends it in the background and drops it when 1000 are queued), so
	// a slow event sink never holds up a reconcile either.
	cfg.QPS, cfg.Burst = float32(o.QPS), o.Burst
	cfg.UserAgent = "rayk8s-operator"
	// rest_client_rate_limiter_duration_seconds shows whether those budgets ever hold a request
	// back (make bench-operator reports its sum; docs/operator-performance.md has the figures).
	crmetrics.RegisterRESTClientMetrics(crmetrics.MetricRateLimiterLatency)

	cacheOpts, err := cacheOptions()
	if err != nil {
		return nil, err
	}
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

// cacheOptions keep the manager's memory proportional to Ray's objects, not to the cluster: the
// kinds the operator creates and that clusters hold many of are cached only when they carry the
// operator's labels, and no cached object keeps its managed fields (often half an object's size).
// Objects users bring and name in a spec (an auth Secret, a claim, a service account) are read
// uncached by the controllers, and a missing one is watched for by name while a cluster waits.
func cacheOptions() (cache.Options, error) {
	// Every pod of a RayCluster carries ray.io/cluster, whatever its template says.
	rayPods, err := labels.NewRequirement(rayv1.RayClusterLabelKey, selection.Exists, nil)
	if err != nil {
		return cache.Options{}, fmt.Errorf("building the pod cache selector: %w", err)
	}
	// The other kinds the operator creates carry app.kubernetes.io/created-by=kuberay-operator
	// (KubeRay selects its Jobs the same way). KubeRay sets it on head Services only; rayk8s sets
	// it on every Service it creates, and EndpointSlices copy their Service's labels.
	ours, err := labels.NewRequirement(rayv1.KubernetesCreatedByLabelKey, selection.Equals, []string{rayv1.ComponentName})
	if err != nil {
		return cache.Options{}, fmt.Errorf("building the cache selector: %w", err)
	}
	strip := cache.TransformStripManagedFields()
	byLabel := func(r labels.Requirement) cache.ByObject {
		return cache.ByObject{Label: labels.NewSelector().Add(r), Transform: strip}
	}
	return cache.Options{
		DefaultTransform: strip,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                   byLabel(*rayPods),
			&corev1.Service{}:               byLabel(*ours),
			&discoveryv1.EndpointSlice{}:    byLabel(*ours),
			&batchv1.Job{}:                  byLabel(*ours),
			&networkingv1.Ingress{}:         byLabel(*ours),
			&networkingv1.NetworkPolicy{}:   byLabel(*ours),
			&corev1.Secret{}:                byLabel(*ours),
			&corev1.PersistentVolumeClaim{}: byLabel(*ours),
			&corev1.ServiceAccount{}:        byLabel(*ours),
			&rbacv1.Role{}:                  byLabel(*ours),
			&rbacv1.RoleBinding{}:           byLabel(*ours),
		},
	}, nil
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
