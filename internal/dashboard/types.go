// Package dashboard is the contract of the Ray dashboard HTTP API (port
// 8265): the wire types, shared by the runtime's server handlers and the Go
// client the operator uses, so the two cannot drift apart. Shapes follow
// Ray's Jobs REST API
// (https://docs.ray.io/en/latest/cluster/running-applications/job-submission/rest.html) and, in
// serve.go, Ray's Serve REST API.
package dashboard

// JobsAPIVersion is the Jobs API version /api/version reports ("4" in
// released Ray 2.x, the one that added DELETE).
const JobsAPIVersion = "4"

// RayVersion is the Ray release this runtime is wire-compatible with. The
// stock `ray` CLI gates features on it (≥2.8 for entrypoint_memory), and
// /api/healthz on the agent port exists from 2.53 on.
const RayVersion = "2.53.0"

// JobStatus is a job's state. Terminal states never change again.
type JobStatus string

const (
	JobStatusPending   JobStatus = "PENDING"
	JobStatusRunning   JobStatus = "RUNNING"
	JobStatusStopped   JobStatus = "STOPPED"
	JobStatusSucceeded JobStatus = "SUCCEEDED"
	JobStatusFailed    JobStatus = "FAILED"
)

// IsTerminal reports whether s is STOPPED, SUCCEEDED or FAILED.
func (s JobStatus) IsTerminal() bool {
	return s == JobStatusStopped || s == JobStatusSucceeded || s == JobStatusFailed
}

// JobType tells submitted jobs from plain `ray.init` drivers.
type JobType string

const (
	JobTypeSubmission JobType = "SUBMISSION"
	JobTypeDriver     JobType = "DRIVER"
)

// Error types Ray reports in JobDetails.error_type.
const (
	ErrorTypeEntrypointCommand      = "JOB_ENTRYPOINT_COMMAND_ERROR"
	ErrorTypeEntrypointCommandStart = "JOB_ENTRYPOINT_COMMAND_START_ERROR"
	ErrorTypeRuntimeEnvSetup        = "RUNTIME_ENV_SETUP_FAILURE"
	ErrorTypeSupervisorStartTimeout = "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"
	ErrorTypeSupervisorDied         = "JOB_SUPERVISOR_ACTOR_DIED"
)

// VersionResponse is GET /api/version.
type VersionResponse struct {
	Version     string `json:"version"`
	RayVersion  string `json:"ray_version"`
	RayCommit   string `json:"ray_commit"`
	SessionName string `json:"session_name,omitempty"`
}

// JobSubmitRequest is the body of POST /api/jobs/. Zero values are omitted
// on the wire, as KubeRay's client does.
type JobSubmitRequest struct {
	Entrypoint   string `json:"entrypoint"`
	SubmissionID string `json:"submission_id,omitempty"`
	// JobID is the deprecated alias of SubmissionID.
	JobID                   string             `json:"job_id,omitempty"`
	RuntimeEnv              map[string]any     `json:"runtime_env,omitempty"`
	Metadata                map[string]string  `json:"metadata,omitempty"`
	EntrypointNumCPUs       float64            `json:"entrypoint_num_cpus,omitempty"`
	EntrypointNumGPUs       float64            `json:"entrypoint_num_gpus,omitempty"`
	EntrypointMemory        int64              `json:"entrypoint_memory,omitempty"`
	EntrypointResources     map[string]float64 `json:"entrypoint_resources,omitempty"`
	EntrypointLabelSelector map[string]string  `json:"entrypoint_label_selector,omitempty"`
}

// JobSubmitResponse is the answer to POST /api/jobs/; both ids are equal.
type JobSubmitResponse struct {
	JobID        string `json:"job_id"`
	SubmissionID string `json:"submission_id"`
}

// DriverInfo describes a Ray driver process.
type DriverInfo struct {
	ID            string `json:"id"`
	NodeIPAddress string `json:"node_ip_address"`
	PID           string `json:"pid"`
}

// JobDetails is one job in GET /api/jobs/ and GET /api/jobs/{id}. Fields
// Ray sends as null while unknown are pointers.
type JobDetails struct {
	Type                   JobType           `json:"type"`
	JobID                  *string           `json:"job_id"`
	SubmissionID           string            `json:"submission_id"`
	DriverInfo             *DriverInfo       `json:"driver_info"`
	Status                 JobStatus         `json:"status"`
	Entrypoint             string            `json:"entrypoint"`
	Message                string            `json:"message"`
	ErrorType              *string           `json:"error_type"`
	StartTime              uint64            `json:"start_time"`
	EndTime                *uint64           `json:"end_time"`
	Metadata               map[string]string `json:"metadata"`
	RuntimeEnv             map[string]any    `json:"runtime_env"`
	DriverAgentHTTPAddress *string           `json:"driver_agent_http_address"`
	DriverNodeID           *string           `json:"driver_node_id"`
	DriverExitCode         *int              `json:"driver_exit_code"`
	// EntrypointNumCPUs and friends echo the submitted entrypoint resources.
	EntrypointNumCPUs   float64            `json:"entrypoint_num_cpus,omitempty"`
	EntrypointNumGPUs   float64            `json:"entrypoint_num_gpus,omitempty"`
	EntrypointMemory    int64              `json:"entrypoint_memory,omitempty"`
	EntrypointResources map[string]float64 `json:"entrypoint_resources,omitempty"`
}

// JobStopResponse is the answer to POST /api/jobs/{id}/stop. Stopped is
// false when the job had already finished.
type JobStopResponse struct {
	Stopped bool `json:"stopped"`
}

// JobDeleteResponse is the answer to DELETE /api/jobs/{id}.
type JobDeleteResponse struct {
	Deleted bool `json:"deleted"`
}

// JobLogsResponse is the answer to GET /api/jobs/{id}/logs.
type JobLogsResponse struct {
	Logs string `json:"logs"`
}

// DuplicateSubmissionIDMessage is the substring KubeRay looks for in the 500
// answer to a submission with an id that already exists.
const DuplicateSubmissionIDMessage = "Please use a different submission_id"

// AuthHeader carries the auth token; KubeRay uses it because the
// kube-apiserver proxy strips Authorization.
const AuthHeader = "X-Ray-Authorization"
