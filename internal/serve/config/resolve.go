package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"time"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/autoscaling"
)

// Ray Serve's defaults for deployment options the config leaves unset
// (https://docs.ray.io/en/latest/serve/production-guide/config.html).
const (
	DefaultMaxOngoingRequests        = 5
	DefaultMaxQueuedRequests         = -1
	DefaultGracefulShutdownWaitLoopS = 2.0
	DefaultGracefulShutdownTimeoutS  = 20.0
	DefaultHealthCheckPeriodS        = 10.0
	DefaultHealthCheckTimeoutS       = 30.0
	DefaultNumCPUs                   = 1.0
	DefaultHTTPPort                  = 8000
	DefaultHTTPHost                  = "0.0.0.0"
	DefaultKeepAliveTimeoutS         = 90.0
)

// Deployment is one deployment with every option resolved.
type Deployment struct {
	Name string
	// Schema reports the effective options (GET's deployment_config).
	Schema dashboard.DeploymentSchema
	// NumReplicas is the target after target_capacity.
	NumReplicas        int
	MaxOngoingRequests int
	MaxQueuedRequests  int
	// UserConfig is nil when there is none.
	UserConfig               json.RawMessage
	GracefulShutdownWaitLoop time.Duration
	GracefulShutdownTimeout  time.Duration
	HealthCheckPeriod        time.Duration
	HealthCheckTimeout       time.Duration
	// Resources is what one replica holds on its node.
	Resources map[string]float64
	// RuntimeEnv is the application's runtime_env overlaid with the
	// deployment's ray_actor_options.runtime_env.
	RuntimeEnv         map[string]any
	MaxReplicasPerNode int
	// Autoscaling is the resolved autoscaling_config (num_replicas "auto"
	// included); nil for a fixed replica count.
	Autoscaling *autoscaling.Config
	// AutoscalingError is why an autoscaling_config declared in code could
	// not be resolved (the config REST API refuses such configs up front);
	// the deployment then runs its initial count and its status says why.
	AutoscalingError string
}

// Merge overlays the fields override sets on code (options declared in the
// application's code), as Ray does for config deployments matched by name.
func Merge(code, override dashboard.DeploymentSchema) dashboard.DeploymentSchema {
	out := code
	if override.Name != "" {
		out.Name = override.Name
	}
	if override.NumReplicas != nil {
		out.NumReplicas = override.NumReplicas
		out.AutoscalingConfig = nil
	}
	if override.MaxOngoingRequests != nil {
		out.MaxOngoingRequests = override.MaxOngoingRequests
	}
	if override.MaxQueuedRequests != nil {
		out.MaxQueuedRequests = override.MaxQueuedRequests
	}
	if override.UserConfig.Set {
		out.UserConfig = override.UserConfig
	}
	if override.AutoscalingConfig != nil {
		out.AutoscalingConfig = override.AutoscalingConfig
		out.NumReplicas = nil
	}
	if override.GracefulShutdownWaitLoopS != nil {
		out.GracefulShutdownWaitLoopS = override.GracefulShutdownWaitLoopS
	}
	if override.GracefulShutdownTimeoutS != nil {
		out.GracefulShutdownTimeoutS = override.GracefulShutdownTimeoutS
	}
	if override.HealthCheckPeriodS != nil {
		out.HealthCheckPeriodS = override.HealthCheckPeriodS
	}
	if override.HealthCheckTimeoutS != nil {
		out.HealthCheckTimeoutS = override.HealthCheckTimeoutS
	}
	if override.RayActorOptions != nil {
		out.RayActorOptions = override.RayActorOptions
	}
	if override.PlacementGroupBundles != nil {
		out.PlacementGroupBundles = override.PlacementGroupBundles
	}
	if override.PlacementGroupStrategy != nil {
		out.PlacementGroupStrategy = override.PlacementGroupStrategy
	}
	if override.MaxReplicasPerNode != nil {
		out.MaxReplicasPerNode = override.MaxReplicasPerNode
	}
	if override.LoggingConfig != nil {
		out.LoggingConfig = override.LoggingConfig
	}
	if override.RequestRouterConfig != nil {
		out.RequestRouterConfig = override.RequestRouterConfig
	}
	return out
}

// Resolve fills every unset option with its default and applies
// target_capacity to the replica count. An autoscaled deployment's
// NumReplicas is its initial count (initial_replicas, else min_replicas);
// the controller's autoscaler moves it from there.
func Resolve(s dashboard.DeploymentSchema, appRuntimeEnv map[string]any, targetCapacity *float64) Deployment {
	d := Deployment{Name: s.Name}
	replicas := 1
	switch {
	case s.NumReplicas != nil && s.NumReplicas.Auto:
		s.AutoscalingConfig = map[string]any{"min_replicas": 1, "max_replicas": autoscaling.AutoMaxReplicas, "target_ongoing_requests": autoscaling.DefaultTargetOngoingRequests}
		s.NumReplicas = nil
		s.AutoscalingConfig = autoscaling.Reported(s.AutoscalingConfig)
		ac := autoscaling.AutoConfig()
		d.Autoscaling = &ac
		replicas = ac.Initial(nil)
	case s.NumReplicas != nil:
		replicas = s.NumReplicas.Count
	case s.AutoscalingConfig != nil:
		ac, err := autoscaling.Parse("autoscaling_config", s.AutoscalingConfig)
		if err != nil {
			d.AutoscalingError = err.Error()
			replicas = initialReplicas(s.AutoscalingConfig)
			break
		}
		d.Autoscaling = &ac
		replicas = ac.Initial(nil)
		s.AutoscalingConfig = autoscaling.Reported(s.AutoscalingConfig)
	default:
		s.NumReplicas = &dashboard.NumReplicas{Count: 1}
	}
	d.NumReplicas = ScaleReplicas(replicas, targetCapacity)

	d.MaxOngoingRequests = intOr(&s.MaxOngoingRequests, DefaultMaxOngoingRequests)
	d.MaxQueuedRequests = intOr(&s.MaxQueuedRequests, DefaultMaxQueuedRequests)
	if !s.UserConfig.IsNull() {
		d.UserConfig = s.UserConfig.Value
	}
	d.GracefulShutdownWaitLoop = seconds(floatOr(&s.GracefulShutdownWaitLoopS, DefaultGracefulShutdownWaitLoopS))
	d.GracefulShutdownTimeout = seconds(floatOr(&s.GracefulShutdownTimeoutS, DefaultGracefulShutdownTimeoutS))
	d.HealthCheckPeriod = seconds(floatOr(&s.HealthCheckPeriodS, DefaultHealthCheckPeriodS))
	d.HealthCheckTimeout = seconds(floatOr(&s.HealthCheckTimeoutS, DefaultHealthCheckTimeoutS))

	ao := dashboard.RayActorOptions{}
	if s.RayActorOptions != nil {
		ao = *s.RayActorOptions
	}
	if ao.NumCPUs == nil {
		ao.NumCPUs = ptr(DefaultNumCPUs)
	}
	s.RayActorOptions = &ao
	d.Resources = map[string]float64{}
	if *ao.NumCPUs > 0 {
		d.Resources["CPU"] = *ao.NumCPUs
	}
	if ao.NumGPUs != nil && *ao.NumGPUs > 0 {
		d.Resources["GPU"] = *ao.NumGPUs
	}
	if ao.Memory != nil && *ao.Memory > 0 {
		d.Resources["memory"] = *ao.Memory
	}
	for k, v := range ao.Resources {
		if v > 0 {
			d.Resources[k] = v
		}
	}
	// A placement group reserves its bundles; the replica runs in the first.
	// Without placement groups in the runtime the whole reservation is
	// held by the replica's process.
	for _, b := range s.PlacementGroupBundles {
		for k, v := range b {
			d.Resources[k] += v
		}
	}
	d.RuntimeEnv = MergeRuntimeEnv(appRuntimeEnv, ao.RuntimeEnv)
	if s.MaxReplicasPerNode != nil {
		d.MaxReplicasPerNode = *s.MaxReplicasPerNode
	}
	if s.LoggingConfig == nil {
		s.LoggingConfig = map[string]any{"encoding": "TEXT", "log_level": "INFO", "logs_dir": nil, "enable_access_log": true}
	}
	if s.RequestRouterConfig == nil {
		s.RequestRouterConfig = map[string]any{
			"request_router_class":            "ray.serve._private.request_router:PowerOfTwoChoicesRequestRouter",
			"request_router_kwargs":           map[string]any{},
			"request_routing_stats_period_s":  10.0,
			"request_routing_stats_timeout_s": 30.0,
		}
	}
	if s.UserConfig.IsNull() {
		s.UserConfig = dashboard.OptJSON{Set: true}
	}
	d.Schema = s
	return d
}

// MergeRuntimeEnv overlays a deployment's runtime_env on its application's;
// env_vars merge key by key.
func MergeRuntimeEnv(app, dep map[string]any) map[string]any {
	out := maps.Clone(app)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range dep {
		if k == "env_vars" {
			merged := map[string]any{}
			if base, ok := out["env_vars"].(map[string]any); ok {
				maps.Copy(merged, base)
			}
			if over, ok := v.(map[string]any); ok {
				maps.Copy(merged, over)
			}
			out[k] = merged
			continue
		}
		out[k] = v
	}
	return out
}

func initialReplicas(ac map[string]any) int {
	for _, k := range []string{"initial_replicas", "min_replicas"} {
		if n, ok := asInt(ac[k]); ok {
			return n
		}
	}
	return 1
}

func asInt(x any) (int, bool) {
	switch n := x.(type) {
	case float64:
		return int(n), true
	case int:
		return n, true
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	}
	return 0, false
}

// ScaleReplicas applies target_capacity (percent): round half up, and at
// least one replica unless the capacity or the count is zero.
func ScaleReplicas(n int, targetCapacity *float64) int {
	return autoscaling.ScaleByCapacity(n, targetCapacity)
}

func intOr(p **int, def int) int {
	if *p == nil {
		v := def
		*p = &v
	}
	return **p
}

func floatOr(p **float64, def float64) float64 {
	if *p == nil {
		v := def
		*p = &v
	}
	return **p
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func ptr[T any](v T) *T { return &v }

// CodeVersion identifies what a replica runs: a change means new replicas
// (a rolling replacement), as Ray's heavyweight updates do.
func CodeVersion(app *dashboard.ServeApplicationSchema, d *Deployment) string {
	return hash(map[string]any{
		"import_path":           app.ImportPath,
		"args":                  app.Args,
		"runtime_env":           d.RuntimeEnv,
		"resources":             d.Resources,
		"max_replicas_per_node": d.MaxReplicasPerNode,
		"accelerator_type":      d.Schema.RayActorOptions.AcceleratorType,
	})
}

// ReplicaConfigVersion identifies what running replicas are told in place
// (reconfigure): user_config and the limits they enforce themselves.
func ReplicaConfigVersion(d *Deployment) string {
	return hash(map[string]any{
		"user_config":          d.UserConfig,
		"max_ongoing_requests": d.MaxOngoingRequests,
		"wait_loop":            d.GracefulShutdownWaitLoop,
	})
}

func hash(v any) string {
	raw, _ := json.Marshal(v)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:12]
}

// HTTP is the effective http_options.
type HTTP struct {
	// Host is empty when the config leaves it to the node's default.
	Host             string
	Port             int
	RootPath         string
	RequestTimeout   time.Duration
	KeepAliveTimeout time.Duration
}

// ResolveHTTP fills http_options defaults.
func ResolveHTTP(o *dashboard.HTTPOptionsSchema) HTTP {
	h := HTTP{Port: DefaultHTTPPort, KeepAliveTimeout: seconds(DefaultKeepAliveTimeoutS)}
	if o == nil {
		return h
	}
	if o.Host != nil {
		h.Host = *o.Host
	}
	if o.Port != nil {
		h.Port = *o.Port
	}
	if o.RootPath != nil {
		h.RootPath = *o.RootPath
	}
	if o.RequestTimeoutS != nil {
		h.RequestTimeout = seconds(*o.RequestTimeoutS)
	}
	if o.KeepAliveTimeoutS != nil {
		h.KeepAliveTimeout = seconds(*o.KeepAliveTimeoutS)
	}
	return h
}
