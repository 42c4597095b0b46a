package autoscaler

import (
	"encoding/json"
	"fmt"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
)

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// scalePatch is one JSON patch that applies every changed group's replicas and workersToDelete.
// It carries the resourceVersion the decision was made from: the API server rejects it with a
// Conflict when anyone (a user, the operator) changed the RayCluster since, so a concurrent edit is
// never overwritten. Each group's name is tested at its index, so a reordered list fails too.
func scalePatch(c *rayv1.RayCluster, d plan.Decision) ([]byte, error) {
	ops := []patchOp{{Op: "replace", Path: "/metadata/resourceVersion", Value: c.ResourceVersion}}
	for i := range c.Spec.WorkerGroupSpecs {
		g := &c.Spec.WorkerGroupSpecs[i]
		gd, ok := d.Group(g.GroupName)
		if !ok || !gd.Changed {
			continue
		}
		base := fmt.Sprintf("/spec/workerGroupSpecs/%d", i)
		ops = append(ops,
			patchOp{Op: "test", Path: base + "/groupName", Value: g.GroupName},
			// "add" sets a member whether or not it exists.
			patchOp{Op: "add", Path: base + "/replicas", Value: gd.Replicas},
			patchOp{Op: "add", Path: base + "/scaleStrategy", Value: rayv1.ScaleStrategy{WorkersToDelete: gd.WorkersToDelete}},
		)
	}
	if len(ops) == 1 {
		return nil, nil
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding the scale patch: %w", err)
	}
	return b, nil
}
