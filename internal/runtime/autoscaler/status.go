package autoscaler

import (
	"context"
	"fmt"
	"maps"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
)

// ReportSink receives the round's report for `ray status`. GRPCHead implements it by writing the
// head's KV store; a HeadState that does not implement it gets no report.
type ReportSink interface {
	PublishReport(ctx context.Context, r *report.Report) error
}

// buildReport summarizes the observation and the decision for `ray status`.
func buildReport(c *rayv1.RayCluster, o observation, d plan.Decision) *report.Report {
	r := &report.Report{
		Time: o.input.Now, Cluster: c.Namespace + "/" + c.Name,
		NodeGroups: maps.Clone(o.nodeGroups), Launching: map[string]int{}, FailedPods: o.failedPods,
	}
	registered := map[string]bool{}
	for _, n := range o.input.Nodes {
		registered[n.Pod] = true
	}
	for _, g := range c.Spec.WorkerGroupSpecs {
		gd, ok := d.Group(g.GroupName)
		if !ok || (g.Suspend != nil && *g.Suspend) {
			continue
		}
		named := map[string]bool{}
		for _, p := range gd.WorkersToDelete {
			named[p] = true
		}
		live, waiting := 0, 0
		for _, p := range o.input.Pods {
			if p.Group != g.GroupName || p.State == plan.PodDeleting || named[p.Name] {
				continue
			}
			live++
			if !registered[p.Name] {
				waiting++
			}
		}
		want := int(clampReplicas(&g, gd.Replicas)) * int(max(g.NumOfHosts, 1))
		if n := waiting + max(want-live, 0); n > 0 {
			r.Launching[g.GroupName] = n
		}
	}
	r.Unmet = unmetShapes(d.Unmet)
	return r
}

// clampReplicas is replicas within the group's minReplicas and maxReplicas, as the operator
// applies it.
func clampReplicas(g *rayv1.WorkerGroupSpec, replicas int32) int32 {
	lo, hi := int32(0), int32(math.MaxInt32)
	if g.MinReplicas != nil {
		lo = *g.MinReplicas
	}
	if g.MaxReplicas != nil {
		hi = max(*g.MaxReplicas, lo)
	}
	return min(max(replicas, lo), hi)
}

// unmetShapes folds the unmet bundles by shape, keeping the first reason of each.
func unmetShapes(us []plan.Unmet) []report.Unmet {
	var out []report.Unmet
	index := map[string]int{}
	for _, u := range us {
		key := u.Bundle.String()
		if i, ok := index[key]; ok {
			out[i].Count++
			continue
		}
		index[key] = len(out)
		out = append(out, report.Unmet{Resources: maps.Clone(u.Bundle), Count: 1, Infeasible: u.Infeasible, Reason: u.Reason})
	}
	return out
}

// publish hands the report to the head when it takes one; a failure is logged and the round goes
// on, as the report only informs `ray status`.
func (a *Autoscaler) publish(ctx context.Context, r *report.Report) {
	sink, ok := a.opts.Head.(ReportSink)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sink.PublishReport(ctx, r); err != nil {
		a.opts.Logger.Error(err, "Could not leave the autoscaler report for ray status on the head", "cluster", a.key.String())
	}
}

// warnShapes emits one Warning event per resource shape when it first appears among the unmet
// demand with the given infeasibility, and forgets shapes that are gone, so a shape reappearing
// later is reported again. Counts and reasons that change while a shape stays unmet (more bundles
// of it, other pods pending) do not repeat the event.
func (a *Autoscaler) warnShapes(c *rayv1.RayCluster, reason string, infeasible bool, unmet []report.Unmet) {
	seen := a.warnedShapes[reason]
	now := map[string]bool{}
	for _, u := range unmet {
		if u.Infeasible != infeasible {
			continue
		}
		key := plan.Resources(u.Resources).String()
		now[key] = true
		if seen[key] {
			continue
		}
		note := fmt.Sprintf("%d bundles of %s: %s", u.Count, key, u.Reason)
		a.opts.Logger.Info("Demand the autoscaler cannot serve", "cluster", a.key.String(), "reason", reason, "shape", key, "detail", note)
		a.event(c, corev1.EventTypeWarning, reason, note)
	}
	a.warnedShapes[reason] = now
}
