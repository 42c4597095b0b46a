// Package stateapi is the dashboard's state API for Ray core (GET
// /api/v0/actors|tasks|nodes|jobs|objects|placement_groups, which `ray list`
// and ray.util.state read): the head asks every alive node agent for what it
// holds and answers in Ray's JSON shapes, with Ray's filters, limit and
// detail (https://docs.ray.io/en/latest/ray-observability/reference/api.html).
package stateapi

import "github.com/rayk8s/rayk8s/internal/dashboard"

// AgentPath is where a node agent answers with its NodeState.
const AgentPath = "/api/rayk8s/core/state"

// Actor is one row of /api/v0/actors (Ray's ActorState).
type Actor struct {
	ActorID           string             `json:"actor_id"`
	ClassName         string             `json:"class_name"`
	State             string             `json:"state"`
	JobID             string             `json:"job_id"`
	Name              string             `json:"name"`
	NodeID            string             `json:"node_id"`
	PID               int                `json:"pid"`
	RayNamespace      string             `json:"ray_namespace"`
	RequiredResources map[string]float64 `json:"required_resources"`
	IsDetached        bool               `json:"is_detached"`
	NumRestarts       int                `json:"num_restarts"`
	DeathCause        *string            `json:"death_cause"`
}

// Task is one row of /api/v0/tasks (Ray's TaskState).
type Task struct {
	TaskID        string `json:"task_id"`
	AttemptNumber int    `json:"attempt_number"`
	Name          string `json:"name"`
	State         string `json:"state"`
	JobID         string `json:"job_id"`
	// ActorID is set on actor calls (ACTOR_TASK rows), null on tasks.
	ActorID           *string            `json:"actor_id"`
	Type              string             `json:"type"`
	FuncOrClassName   string             `json:"func_or_class_name"`
	NodeID            string             `json:"node_id"`
	Language          string             `json:"language"`
	RequiredResources map[string]float64 `json:"required_resources"`
	ErrorType         *string            `json:"error_type"`
}

// Object is one row of /api/v0/objects (Ray's ObjectState).
type Object struct {
	ObjectID      string `json:"object_id"`
	ObjectSize    int    `json:"object_size"`
	TaskStatus    string `json:"task_status"`
	ReferenceType string `json:"reference_type"`
	Type          string `json:"type"`
	IP            string `json:"ip"`
	JobID         string `json:"job_id"`
}

// Node is one row of /api/v0/nodes (Ray's NodeState).
type Node struct {
	NodeID         string             `json:"node_id"`
	NodeIP         string             `json:"node_ip"`
	IsHeadNode     bool               `json:"is_head_node"`
	State          string             `json:"state"`
	NodeName       string             `json:"node_name"`
	ResourcesTotal map[string]float64 `json:"resources_total"`
	Labels         map[string]string  `json:"labels"`
}

// PlacementGroup is one row of /api/v0/placement_groups (Ray's
// PlacementGroupState).
type PlacementGroup struct {
	PlacementGroupID string   `json:"placement_group_id"`
	Name             string   `json:"name"`
	CreatorJobID     string   `json:"creator_job_id"`
	State            string   `json:"state"`
	Bundles          []Bundle `json:"bundles"`
	IsDetached       bool     `json:"is_detached"`
}

// Bundle is one bundle of a placement group row.
type Bundle struct {
	BundleID      int                `json:"bundle_id"`
	NodeID        *string            `json:"node_id"`
	UnitResources map[string]float64 `json:"unit_resources"`
}

// NodeState is what one node agent reports: the actors it owns, the
// tasks its drivers submitted, the objects in its store and the drivers
// connected to it.
type NodeState struct {
	Actors  []Actor                `json:"actors"`
	Tasks   []Task                 `json:"tasks"`
	Objects []Object               `json:"objects"`
	Drivers []dashboard.JobDetails `json:"drivers"`
	Workers []Worker               `json:"workers"`
}

// Worker is one row of /api/v0/workers (Ray's WorkerState): a Python
// worker process of a node's pool (tasks and actors). A node lists the
// processes it runs now; exited ones are not kept.
type Worker struct {
	WorkerID   string  `json:"worker_id"`
	IsAlive    bool    `json:"is_alive"`
	WorkerType string  `json:"worker_type"`
	ExitType   *string `json:"exit_type"`
	NodeID     string  `json:"node_id"`
	IP         string  `json:"ip"`
	PID        int     `json:"pid"`
	ExitDetail *string `json:"exit_detail"`
	// StartTimeMs is when the process was started (Unix ms).
	StartTimeMs int64 `json:"start_time_ms"`
}

// ListResult is the "result" of a list reply.
type ListResult struct {
	Total              int    `json:"total"`
	NumAfterTruncation int    `json:"num_after_truncation"`
	NumFiltered        int    `json:"num_filtered"`
	Result             []any  `json:"result"`
	PartialFailure     string `json:"partial_failure_warning"`
}

// Reply is the state API's envelope.
type Reply struct {
	Result bool   `json:"result"`
	Msg    string `json:"msg"`
	Data   struct {
		Result *ListResult `json:"result,omitempty"`
	} `json:"data"`
}
