package dashboard

import (
	"bytes"
	"encoding/json"
)

// Serve REST API wire types (https://docs.ray.io/en/latest/serve/api/rest-api.html).
// PUT /api/serve/applications/
// takes a ServeDeploySchema, GET answers a ServeInstanceDetails. Optional
// fields are pointers (or Opt* for fields where null and absent differ), so
// "left to the code or the default" survives the round trip.

// ServeApplicationsPath is the collection path of the Serve REST API.
const ServeApplicationsPath = "/api/serve/applications/"

// ServeAutoscalingObservabilityPath answers application → deployment →
// DeploymentAutoscalingDetail for the autoscaled deployments.
const ServeAutoscalingObservabilityPath = "/api/serve/autoscaling/observability"

// ProxyLocation values.
const (
	ProxyLocationDisabled  = "Disabled"
	ProxyLocationHeadOnly  = "HeadOnly"
	ProxyLocationEveryNode = "EveryNode"
)

// ApplicationStatus is an application's state as the Serve REST API reports it.
type ApplicationStatus string

const (
	ApplicationStatusNotStarted   ApplicationStatus = "NOT_STARTED"
	ApplicationStatusDeploying    ApplicationStatus = "DEPLOYING"
	ApplicationStatusDeployFailed ApplicationStatus = "DEPLOY_FAILED"
	ApplicationStatusRunning      ApplicationStatus = "RUNNING"
	ApplicationStatusUnhealthy    ApplicationStatus = "UNHEALTHY"
	ApplicationStatusDeleting     ApplicationStatus = "DELETING"
)

// DeploymentStatus is a deployment's state.
type DeploymentStatus string

const (
	DeploymentStatusUpdating     DeploymentStatus = "UPDATING"
	DeploymentStatusHealthy      DeploymentStatus = "HEALTHY"
	DeploymentStatusUnhealthy    DeploymentStatus = "UNHEALTHY"
	DeploymentStatusDeployFailed DeploymentStatus = "DEPLOY_FAILED"
	DeploymentStatusUpscaling    DeploymentStatus = "UPSCALING"
	DeploymentStatusDownscaling  DeploymentStatus = "DOWNSCALING"
)

// DeploymentStatusTrigger says why a deployment is in its status.
type DeploymentStatusTrigger string

const (
	TriggerUnspecified           DeploymentStatusTrigger = "UNSPECIFIED"
	TriggerConfigUpdateStarted   DeploymentStatusTrigger = "CONFIG_UPDATE_STARTED"
	TriggerConfigUpdateCompleted DeploymentStatusTrigger = "CONFIG_UPDATE_COMPLETED"
	TriggerUpscaleCompleted      DeploymentStatusTrigger = "UPSCALE_COMPLETED"
	TriggerDownscaleCompleted    DeploymentStatusTrigger = "DOWNSCALE_COMPLETED"
	TriggerAutoscaling           DeploymentStatusTrigger = "AUTOSCALING"
	TriggerReplicaStartupFailed  DeploymentStatusTrigger = "REPLICA_STARTUP_FAILED"
	TriggerHealthCheckFailed     DeploymentStatusTrigger = "HEALTH_CHECK_FAILED"
	TriggerInternalError         DeploymentStatusTrigger = "INTERNAL_ERROR"
	TriggerDeleting              DeploymentStatusTrigger = "DELETING"
)

// ReplicaState is a replica's state.
type ReplicaState string

const (
	ReplicaStateStarting         ReplicaState = "STARTING"
	ReplicaStateUpdating         ReplicaState = "UPDATING"
	ReplicaStateRecovering       ReplicaState = "RECOVERING"
	ReplicaStateRunning          ReplicaState = "RUNNING"
	ReplicaStateStopping         ReplicaState = "STOPPING"
	ReplicaStatePendingMigration ReplicaState = "PENDING_MIGRATION"
)

// ProxyStatus is a proxy's state.
type ProxyStatus string

const (
	ProxyStatusStarting  ProxyStatus = "STARTING"
	ProxyStatusHealthy   ProxyStatus = "HEALTHY"
	ProxyStatusUnhealthy ProxyStatus = "UNHEALTHY"
	ProxyStatusDraining  ProxyStatus = "DRAINING"
)

// OptString is a string field where null (Set, Value nil) differs from
// absent (not Set): route_prefix null means "no HTTP route", absent "/".
type OptString struct {
	Set   bool
	Value *string
}

// IsZero lets `omitzero` drop an absent field.
func (o OptString) IsZero() bool { return !o.Set }

// MarshalJSON writes the value or null.
func (o OptString) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}

// UnmarshalJSON records that the field was present.
func (o *OptString) UnmarshalJSON(b []byte) error {
	o.Set = true
	o.Value = nil
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	o.Value = &s
	return nil
}

// StringOpt returns an OptString holding s.
func StringOpt(s string) OptString { return OptString{Set: true, Value: &s} }

// OptJSON is an arbitrary JSON field where null differs from absent
// (user_config: null clears what the code set).
type OptJSON struct {
	Set   bool
	Value json.RawMessage
}

// IsZero lets `omitzero` drop an absent field.
func (o OptJSON) IsZero() bool { return !o.Set }

// IsNull reports whether the field holds null (or is absent).
func (o OptJSON) IsNull() bool {
	return len(o.Value) == 0 || bytes.Equal(bytes.TrimSpace(o.Value), []byte("null"))
}

// MarshalJSON writes the raw value or null.
func (o OptJSON) MarshalJSON() ([]byte, error) {
	if o.IsNull() {
		return []byte("null"), nil
	}
	return o.Value, nil
}

// UnmarshalJSON records that the field was present.
func (o *OptJSON) UnmarshalJSON(b []byte) error {
	o.Set = true
	o.Value = append(json.RawMessage(nil), b...)
	return nil
}

// NumReplicas is an integer or "auto".
type NumReplicas struct {
	Auto  bool
	Count int
}

// MarshalJSON writes "auto" or the count.
func (n NumReplicas) MarshalJSON() ([]byte, error) {
	if n.Auto {
		return []byte(`"auto"`), nil
	}
	return json.Marshal(n.Count)
}

// UnmarshalJSON accepts "auto" or an integer.
func (n *NumReplicas) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*n = NumReplicas{Auto: s == "auto"}
		return nil
	}
	return json.Unmarshal(b, &n.Count)
}

// ServeDeploySchema is the body of PUT /api/serve/applications/.
type ServeDeploySchema struct {
	ProxyLocation  string                   `json:"proxy_location,omitempty"`
	HTTPOptions    *HTTPOptionsSchema       `json:"http_options,omitempty"`
	GRPCOptions    *GRPCOptionsSchema       `json:"grpc_options,omitempty"`
	LoggingConfig  map[string]any           `json:"logging_config,omitempty"`
	Applications   []ServeApplicationSchema `json:"applications"`
	TargetCapacity *float64                 `json:"target_capacity,omitempty"`
}

// HTTPOptionsSchema configures the HTTP proxies.
type HTTPOptionsSchema struct {
	Host              *string  `json:"host,omitempty"`
	Port              *int     `json:"port,omitempty"`
	RootPath          *string  `json:"root_path,omitempty"`
	RequestTimeoutS   *float64 `json:"request_timeout_s,omitempty"`
	KeepAliveTimeoutS *float64 `json:"keep_alive_timeout_s,omitempty"`
	SSLKeyfile        *string  `json:"ssl_keyfile,omitempty"`
	SSLCertfile       *string  `json:"ssl_certfile,omitempty"`
}

// GRPCOptionsSchema configures the gRPC proxies (part 2 serves them).
type GRPCOptionsSchema struct {
	Port                  *int     `json:"port,omitempty"`
	GRPCServicerFunctions []string `json:"grpc_servicer_functions,omitempty"`
	RequestTimeoutS       *float64 `json:"request_timeout_s,omitempty"`
}

// ServeApplicationSchema is one application of a ServeDeploySchema.
type ServeApplicationSchema struct {
	Name                  string             `json:"name,omitempty"`
	RoutePrefix           OptString          `json:"route_prefix,omitzero"`
	ImportPath            string             `json:"import_path"`
	RuntimeEnv            map[string]any     `json:"runtime_env,omitempty"`
	Args                  map[string]any     `json:"args,omitempty"`
	Deployments           []DeploymentSchema `json:"deployments,omitempty"`
	LoggingConfig         map[string]any     `json:"logging_config,omitempty"`
	AutoscalingPolicy     map[string]any     `json:"autoscaling_policy,omitempty"`
	ExternalScalerEnabled *bool              `json:"external_scaler_enabled,omitempty"`
}

// RayActorOptions are a replica's resources and runtime env.
type RayActorOptions struct {
	RuntimeEnv      map[string]any     `json:"runtime_env,omitempty"`
	NumCPUs         *float64           `json:"num_cpus,omitempty"`
	NumGPUs         *float64           `json:"num_gpus,omitempty"`
	Memory          *float64           `json:"memory,omitempty"`
	Resources       map[string]float64 `json:"resources,omitempty"`
	AcceleratorType *string            `json:"accelerator_type,omitempty"`
}

// DeploymentSchema overrides (in a request) or reports (in a response) one
// deployment's options.
type DeploymentSchema struct {
	Name                      string               `json:"name"`
	NumReplicas               *NumReplicas         `json:"num_replicas,omitempty"`
	MaxOngoingRequests        *int                 `json:"max_ongoing_requests,omitempty"`
	MaxQueuedRequests         *int                 `json:"max_queued_requests,omitempty"`
	UserConfig                OptJSON              `json:"user_config,omitzero"`
	AutoscalingConfig         map[string]any       `json:"autoscaling_config,omitempty"`
	GracefulShutdownWaitLoopS *float64             `json:"graceful_shutdown_wait_loop_s,omitempty"`
	GracefulShutdownTimeoutS  *float64             `json:"graceful_shutdown_timeout_s,omitempty"`
	HealthCheckPeriodS        *float64             `json:"health_check_period_s,omitempty"`
	HealthCheckTimeoutS       *float64             `json:"health_check_timeout_s,omitempty"`
	RayActorOptions           *RayActorOptions     `json:"ray_actor_options,omitempty"`
	PlacementGroupBundles     []map[string]float64 `json:"placement_group_bundles,omitempty"`
	PlacementGroupStrategy    *string              `json:"placement_group_strategy,omitempty"`
	MaxReplicasPerNode        *int                 `json:"max_replicas_per_node,omitempty"`
	LoggingConfig             map[string]any       `json:"logging_config,omitempty"`
	RequestRouterConfig       map[string]any       `json:"request_router_config,omitempty"`
}

// ActorDetails describes a Serve actor (controller, proxy, replica); every
// field is nullable in Ray.
type ActorDetails struct {
	NodeID         *string `json:"node_id"`
	NodeIP         *string `json:"node_ip"`
	NodeInstanceID *string `json:"node_instance_id"`
	ActorID        *string `json:"actor_id"`
	ActorName      *string `json:"actor_name"`
	WorkerID       *string `json:"worker_id"`
	LogFilePath    *string `json:"log_file_path"`
}

// ProxyDetails is one node's proxy.
type ProxyDetails struct {
	ActorDetails
	Status ProxyStatus `json:"status"`
}

// ReplicaDetails is one replica of a deployment.
type ReplicaDetails struct {
	ActorDetails
	ReplicaID  string       `json:"replica_id"`
	State      ReplicaState `json:"state"`
	PID        *int         `json:"pid"`
	StartTimeS float64      `json:"start_time_s"`
}

// DeploymentDetails is one deployment of an application.
type DeploymentDetails struct {
	Name              string                  `json:"name"`
	Status            DeploymentStatus        `json:"status"`
	StatusTrigger     DeploymentStatusTrigger `json:"status_trigger"`
	Message           string                  `json:"message"`
	DeploymentConfig  DeploymentSchema        `json:"deployment_config"`
	TargetNumReplicas int                     `json:"target_num_replicas"`
	RequiredResources map[string]float64      `json:"required_resources"`
	Replicas          []ReplicaDetails        `json:"replicas"`
	// AutoscalingDetail is set for an autoscaled deployment.
	AutoscalingDetail *DeploymentAutoscalingDetail `json:"autoscaling_detail,omitempty"`
}

// AutoscalingStatus is which way an autoscaled deployment is moving.
type AutoscalingStatus string

// Autoscaling statuses.
const (
	AutoscalingStatusUpscaling   AutoscalingStatus = "UPSCALING"
	AutoscalingStatusDownscaling AutoscalingStatus = "DOWNSCALING"
	AutoscalingStatusStable      AutoscalingStatus = "STABLE"
)

// ScalingDecision is one autoscaling decision.
type ScalingDecision struct {
	TimestampS      float64 `json:"timestamp_s"`
	Reason          string  `json:"reason"`
	PrevNumReplicas int     `json:"prev_num_replicas"`
	CurrNumReplicas int     `json:"curr_num_replicas"`
	Policy          *string `json:"policy"`
}

// DeploymentAutoscalingDetail is a deployment's autoscaler state (the
// autoscaling_detail of its details, and GET /api/serve/autoscaling/observability).
type DeploymentAutoscalingDetail struct {
	ScalingStatus AutoscalingStatus `json:"scaling_status"`
	Decisions     []ScalingDecision `json:"decisions"`
	Metrics       map[string]any    `json:"metrics"`
	// MetricsHealth is "healthy", "delayed" or "unavailable".
	MetricsHealth string   `json:"metrics_health"`
	Errors        []string `json:"errors"`
}

// ApplicationDetails is one application in GET /api/serve/applications/.
type ApplicationDetails struct {
	Name              string                       `json:"name"`
	RoutePrefix       *string                      `json:"route_prefix"`
	DocsPath          *string                      `json:"docs_path"`
	Status            ApplicationStatus            `json:"status"`
	Message           string                       `json:"message"`
	LastDeployedTimeS float64                      `json:"last_deployed_time_s"`
	DeployedAppConfig json.RawMessage              `json:"deployed_app_config"`
	Source            string                       `json:"source"`
	Deployments       map[string]DeploymentDetails `json:"deployments"`
	// ExternalScalerEnabled mirrors the application's setting.
	ExternalScalerEnabled bool `json:"external_scaler_enabled"`
}

// ServeInstanceDetails is the answer to GET /api/serve/applications/.
type ServeInstanceDetails struct {
	ControllerInfo ActorDetails                  `json:"controller_info"`
	ProxyLocation  *string                       `json:"proxy_location"`
	HTTPOptions    *HTTPOptionsSchema            `json:"http_options"`
	GRPCOptions    *GRPCOptionsSchema            `json:"grpc_options"`
	Proxies        map[string]ProxyDetails       `json:"proxies"`
	DeployMode     string                        `json:"deploy_mode"`
	Applications   map[string]ApplicationDetails `json:"applications"`
	TargetCapacity *float64                      `json:"target_capacity"`
}

// DeployModeMultiApp is the only deploy_mode Serve reports now.
const DeployModeMultiApp = "MULTI_APP"
