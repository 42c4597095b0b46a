package batchscheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// PodResources is what one pod of spec asks for: per container its requests, a limit standing in
// for a resource it does not request, summed over the containers (init containers and overhead
// are not counted, as in KubeRay).
func PodResources(spec *corev1.PodSpec) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, c := range spec.Containers {
		own := corev1.ResourceList{}
		for n, q := range c.Resources.Limits {
			own[n] = q.DeepCopy()
		}
		for n, q := range c.Resources.Requests {
			own[n] = q.DeepCopy()
		}
		add(out, own, 1)
	}
	return out
}

// Sum adds the lists.
func Sum(lists ...corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, l := range lists {
		add(out, l, 1)
	}
	return out
}

func add(into, l corev1.ResourceList, times int32) {
	for n, q := range l {
		for range times {
			t, ok := into[n]
			if !ok {
				into[n] = q.DeepCopy()
				continue
			}
			t.Add(q)
			into[n] = t
		}
	}
}

// Gang is the size of the smallest set of Ray pods that is worth starting: the head plus, per
// worker group that is not suspended, its desired pods, or its minReplicas pods when the
// autoscaler may add the rest later.
type Gang struct {
	// Members counts the pods, the head included.
	Members int32
	// Resources is what they ask for together.
	Resources corev1.ResourceList
}

// GangOf computes the gang of spec.
func GangOf(spec *rayv1.RayClusterSpec) Gang {
	g := Gang{Members: 1, Resources: PodResources(&spec.HeadGroupSpec.Template.Spec)}
	for i := range spec.WorkerGroupSpecs {
		wg := &spec.WorkerGroupSpecs[i]
		n := WorkerGroupGangPods(spec, wg)
		g.Members += n
		add(g.Resources, PodResources(&wg.Template.Spec), n)
	}
	return g
}

// WorkerGroupGangPods is how many pods of wg belong to the gang (see Gang).
func WorkerGroupGangPods(spec *rayv1.RayClusterSpec, wg *rayv1.WorkerGroupSpec) int32 {
	if wg.Suspend != nil && *wg.Suspend {
		return 0
	}
	return WorkerGroupGangReplicas(spec, wg) * max(wg.NumOfHosts, 1)
}

// WorkerGroupGangReplicas is how many replicas (of numOfHosts pods each) of wg belong to the
// gang: minReplicas with the autoscaler, else replicas clamped to [minReplicas, maxReplicas].
func WorkerGroupGangReplicas(spec *rayv1.RayClusterSpec, wg *rayv1.WorkerGroupSpec) int32 {
	lo := deref(wg.MinReplicas, 0)
	if AutoscalingEnabled(spec) {
		return lo
	}
	hi := deref(wg.MaxReplicas, math.MaxInt32)
	n := deref(wg.Replicas, lo)
	return min(max(n, lo), max(hi, lo))
}

// AutoscalingEnabled reports whether the in-tree autoscaler manages spec's replicas.
func AutoscalingEnabled(spec *rayv1.RayClusterSpec) bool {
	return spec.EnableInTreeAutoscaling != nil && *spec.EnableInTreeAutoscaling
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
