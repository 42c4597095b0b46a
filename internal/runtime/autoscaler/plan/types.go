// Package plan decides, as a pure function of one observation, how the cluster autoscaler resizes
// a RayCluster's worker groups: which groups grow to serve the pending demand and the explicit
// resource requests, and which idle pods are named for deletion. It does no I/O and reads no clock;
// the sidecar's loop (package autoscaler) observes, calls Decide and writes the result.
//
// The semantics follow Ray's autoscaler on KubeRay
// (https://docs.ray.io/en/latest/cluster/kubernetes/user-guides/configuring-autoscaling.html):
// demand is bin-packed onto the groups' node shapes, upscalingMode Conservative limits the pods
// pending at once to the size of the running cluster (at least five), Default and Aggressive do not
// limit it, and a worker is removed only after it has been idle for the idle timeout.
package plan

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// DefaultIdleTimeout is Ray's idle timeout when neither the group nor autoscalerOptions sets one.
const DefaultIdleTimeout = 60 * time.Second

// conservativeMinPending is how many pods Conservative mode lets be pending however small the
// cluster is, as Ray's upscaling_speed allows at least five pending nodes.
const conservativeMinPending = 5

// resourceEpsilon absorbs float rounding; Ray keeps resources in fixed point with four decimals.
const resourceEpsilon = 1e-6

// Resources is an amount per Ray resource name ("CPU", "GPU", "memory", custom names).
type Resources map[string]float64

// String renders r with sorted keys, e.g. {CPU: 2, GPU: 1}.
func (r Resources) String() string {
	keys := slices.Sorted(maps.Keys(r))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+strconv.FormatFloat(r[k], 'f', -1, 64))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// fits reports whether want fits into have.
func fits(have, want Resources) bool {
	for k, v := range want {
		if v > 0 && have[k]+resourceEpsilon < v {
			return false
		}
	}
	return true
}

// subtract takes want out of have in place.
func subtract(have, want Resources) {
	for k, v := range want {
		if v > 0 {
			have[k] -= v
		}
	}
}

// PodState is where a worker pod is in its life.
type PodState int

const (
	// PodCreating: the pod exists but its Ray node has not registered yet.
	PodCreating PodState = iota
	// PodRunning: the pod runs; its Ray node may or may not have registered.
	PodRunning
	// PodDeleting: the pod has a deletion timestamp.
	PodDeleting
)

func (s PodState) String() string {
	switch s {
	case PodCreating:
		return "creating"
	case PodRunning:
		return "running"
	case PodDeleting:
		return "deleting"
	}
	return fmt.Sprintf("PodState(%d)", int(s))
}

// Pod is one worker pod of the cluster.
type Pod struct {
	Name  string
	Group string
	// Replica names the multi-host replica the pod is a host of (label
	// ray.io/worker-group-replica-name); empty for single-host groups.
	Replica string
	State   PodState
}

// Node is the head's view of one Ray node, joined to its pod.
type Node struct {
	// Pod is the name of the pod the node runs in.
	Pod  string
	Head bool
	// Total and Available are the node's resources.
	Total, Available Resources
	// IdleSince is when the node last became idle; zero while it has work.
	IdleSince time.Time
	// Busy is set when the node runs anything (a Serve replica, a job driver, any placed
	// process), even one that reserves no resources.
	Busy bool
}

// Input is one observation of the cluster.
type Input struct {
	// Cluster is the RayCluster as read, with its spec's groups, scale strategies, autoscaler
	// options and suspend flags.
	Cluster *rayv1.RayCluster
	// Shapes is each worker group's resources per host, derived as KubeRay does (package shape).
	// A group without a shape is never scaled up.
	Shapes map[string]Resources
	// Pods are the cluster's worker pods.
	Pods []Pod
	// Nodes are the alive Ray nodes the head reports, head included.
	Nodes []Node
	// Demand is every placement that found no capacity, one resource bundle each.
	Demand []Resources
	// Requests are the explicit request_resources bundles: capacity that must exist (counted
	// against total, not available, resources) until withdrawn.
	Requests []Resources
	// MaxWorkers caps the cluster's worker pods; zero means only the groups' maxReplicas cap.
	MaxWorkers int
	// Now is the time of the observation.
	Now time.Time
}

// Deletion is a pod named in workersToDelete this round.
type Deletion struct {
	Pod    string
	Reason string
}

// GroupDecision is the outcome for one worker group.
type GroupDecision struct {
	Group string
	// Replicas is the group's new replica count.
	Replicas int32
	// WorkersToDelete is the group's complete new scaleStrategy.workersToDelete: pods named in
	// earlier rounds that still exist, plus this round's Deletions.
	WorkersToDelete []string
	// Deletions are the pods newly named this round.
	Deletions []Deletion
	// Reason explains the decision in a sentence.
	Reason string
	// Changed is set when replicas or workersToDelete differ from the spec as read.
	Changed bool
}

// Unmet is a demand bundle this round could not provide capacity for.
type Unmet struct {
	Bundle Resources
	// Infeasible is set when no worker group's node shape (nor the head) could ever hold it.
	Infeasible bool
	Reason     string
}

// Decision is what Decide concludes for one observation.
type Decision struct {
	// Groups has one entry per worker group, in spec order.
	Groups []GroupDecision
	// Unmet lists demand bundles and requests left without capacity.
	Unmet []Unmet
}

// Changed reports whether any group changed.
func (d Decision) Changed() bool {
	for _, g := range d.Groups {
		if g.Changed {
			return true
		}
	}
	return false
}

// Group returns the decision for the named group.
func (d Decision) Group(name string) (GroupDecision, bool) {
	for _, g := range d.Groups {
		if g.Group == name {
			return g, true
		}
	}
	return GroupDecision{}, false
}
