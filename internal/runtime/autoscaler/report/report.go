// Package report is the autoscaler's view of the cluster as it leaves it in the head's KV store
// after every round, for `ray status` to print: which worker group each Ray node belongs to, the
// pods still launching per group, and the demand the autoscaler cannot serve with the reason.
// Ray's own autoscaler does the same: it writes its status into the GCS KV and `ray status`
// reads it back (https://docs.ray.io/en/latest/cluster/kubernetes/user-guides/configuring-autoscaling.html).
//
// The package holds only the wire type, so the sidecar and the CLI share it without depending on
// each other.
package report

import (
	"encoding/json"
	"fmt"
	"time"
)

// KV namespace and key of the report in the head's KV store.
const (
	KVNamespace = "autoscaler"
	KVKey       = "status"
)

// Report is one round's view. Its JSON form is what the KV holds.
type Report struct {
	// Time is when the round observed the cluster.
	Time time.Time `json:"time"`
	// Cluster is the RayCluster as namespace/name.
	Cluster string `json:"cluster"`
	// NodeGroups maps a Ray node ID to its group: a worker group's name, or HeadGroup.
	NodeGroups map[string]string `json:"node_groups,omitempty"`
	// Launching counts, per worker group, the pods asked for whose Ray node has not registered.
	Launching map[string]int `json:"launching,omitempty"`
	// FailedPods are worker pods that ended in phase Failed.
	FailedPods []FailedPod `json:"failed_pods,omitempty"`
	// Unmet are the resource shapes the autoscaler cannot provide capacity for this round.
	Unmet []Unmet `json:"unmet,omitempty"`
}

// HeadGroup is the group name of the head node, as KubeRay's autoscaler names the head's type.
const HeadGroup = "headgroup"

// FailedPod is a worker pod that failed.
type FailedPod struct {
	Pod    string `json:"pod"`
	Group  string `json:"group"`
	IP     string `json:"ip,omitempty"`
	Reason string `json:"reason"`
}

// Unmet is one resource shape left without capacity.
type Unmet struct {
	Resources map[string]float64 `json:"resources"`
	// Count is how many bundles of this shape are unmet.
	Count int `json:"count"`
	// Infeasible is set when no worker group's node shape could ever hold the shape.
	Infeasible bool   `json:"infeasible"`
	Reason     string `json:"reason"`
}

// Encode renders r for the KV.
func (r *Report) Encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding the autoscaler report: %w", err)
	}
	return b, nil
}

// Decode parses a report read from the KV.
func Decode(b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding the autoscaler report: %w", err)
	}
	return &r, nil
}
