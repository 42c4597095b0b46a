// Package shape derives the Ray resources one host of a worker group offers, the way KubeRay
// renders them into the group's `ray start` flags: the group's `resources` field overrides
// rayStartParams, and what neither sets comes from the Ray container's limits (CPU falls back to
// its request). See https://docs.ray.io/en/latest/cluster/kubernetes/user-guides/config.html.
//
// It is the runtime's own small version of the operator's flag rendering (which the runtime must
// not import); the two agree on the resource flags and nothing else.
package shape

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// accelerators are the container resources that become custom Ray resources, in priority order.
var accelerators = []struct{ k8s, ray string }{
	{"aws.amazon.com/neuroncore", "neuron_cores"},
	{"google.com/tpu", "TPU"},
}

var nvidiaMIG = regexp.MustCompile(`^nvidia\.com/mig-\d+g\.\d+gb$`)

// Of returns what one host of the group offers. field names the group in errors, e.g.
// "workerGroupSpecs[0]".
func Of(g *rayv1.WorkerGroupSpec, field string) (map[string]float64, error) {
	out := map[string]float64{}
	params := g.RayStartParams
	var ctr corev1.ResourceRequirements
	if len(g.Template.Spec.Containers) > 0 {
		ctr = g.Template.Spec.Containers[0].Resources
	}

	if raw, ok := params["resources"]; ok {
		custom := map[string]float64{}
		if err := json.Unmarshal([]byte(strings.Trim(raw, "'\"` ")), &custom); err != nil {
			return nil, fmt.Errorf("%s.rayStartParams.resources %q: not a JSON object of numbers: %w", field, raw, err)
		}
		for k, v := range custom {
			out[k] = v
		}
	}
	for _, p := range []struct{ param, name string }{{"num-cpus", "CPU"}, {"num-gpus", "GPU"}, {"memory", "memory"}} {
		if raw, ok := params[p.param]; ok {
			v, err := strconv.ParseFloat(strings.Trim(raw, "'\" "), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fmt.Errorf("%s.rayStartParams.%s %q: expected a non-negative number", field, p.param, raw)
			}
			out[p.name] = v
		}
	}
	if err := applyGroupResources(out, g.Resources, field); err != nil {
		return nil, err
	}
	if _, ok := out["CPU"]; !ok {
		if q, ok := ctr.Limits[corev1.ResourceCPU]; ok && !q.IsZero() {
			out["CPU"] = float64(q.Value()) // Value rounds up, as KubeRay does
		} else if q, ok := ctr.Requests[corev1.ResourceCPU]; ok && !q.IsZero() {
			out["CPU"] = float64(q.Value())
		} else {
			return nil, fmt.Errorf("%s: the number of CPUs is unknown: set rayStartParams num-cpus, resources.CPU or a CPU limit on the Ray container", field)
		}
	}
	if _, ok := out["memory"]; !ok {
		if q, ok := ctr.Limits[corev1.ResourceMemory]; ok && !q.IsZero() {
			out["memory"] = float64(q.Value())
		}
	}
	if _, ok := out["GPU"]; !ok {
		names := make([]string, 0, len(ctr.Limits))
		for n := range ctr.Limits {
			names = append(names, string(n))
		}
		slices.Sort(names)
		for _, n := range names {
			q := ctr.Limits[corev1.ResourceName(n)]
			if (strings.HasSuffix(n, "gpu") || nvidiaMIG.MatchString(n)) && !q.IsZero() {
				out["GPU"] = float64(q.Value())
				break
			}
		}
	}
	addAccelerator(out, ctr.Limits)
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out, nil
}

// applyGroupResources applies the group's resources field, which wins over rayStartParams.
func applyGroupResources(out map[string]float64, res map[string]string, field string) error {
	for name, raw := range res {
		q, err := resource.ParseQuantity(raw)
		if err != nil {
			return fmt.Errorf("%s.resources.%s %q: not a quantity: %w", field, name, raw, err)
		}
		lower := strings.ToLower(name)
		switch {
		case lower == "cpu":
			out["CPU"] = q.AsApproximateFloat64()
		case lower == "memory":
			out["memory"] = float64(q.Value())
		case strings.HasSuffix(lower, "gpu"):
			out["GPU"] = q.AsApproximateFloat64()
		default:
			out[name] = q.AsApproximateFloat64()
		}
	}
	return nil
}

func addAccelerator(out map[string]float64, limits corev1.ResourceList) {
	for _, a := range accelerators {
		if _, ok := out[a.ray]; ok {
			return
		}
	}
	for _, a := range accelerators {
		if q, ok := limits[corev1.ResourceName(a.k8s)]; ok && !q.IsZero() {
			out[a.ray] = float64(q.Value())
			return
		}
	}
}
