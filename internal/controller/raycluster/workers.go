package raycluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// unit is what a worker group scales by: one pod, or for numOfHosts > 1 the numOfHosts pods of a
// replica, which are created, replaced and deleted together.
type unit struct {
	name  string // pod name, or the replica name shared by the hosts
	index *int32 // ray.io/worker-group-replica-index
	pods  []corev1.Pod
}

func (u *unit) ready(hosts int32) bool {
	if int32(len(u.pods)) != hosts {
		return false
	}
	for i := range u.pods {
		if !resources.PodRunningAndReady(&u.pods[i]) {
			return false
		}
	}
	return true
}

func (u *unit) outdated(hash string) bool {
	for i := range u.pods {
		if u.pods[i].Annotations[resources.PodTemplateHashAnnotationKey] != hash {
			return true
		}
	}
	return false
}

// shouldDelete reports whether the unit must be replaced: a pod that will not come back by itself
// (resources.ShouldDeletePod), or a multi-host replica missing hosts.
func (u *unit) shouldDelete(hosts int32) (bool, string) {
	if hosts > 1 && int32(len(u.pods)) != hosts {
		return true, fmt.Sprintf("replica %s has %d of %d hosts", u.name, len(u.pods), hosts)
	}
	for i := range u.pods {
		if del, why := resources.ShouldDeletePod(&u.pods[i]); del {
			return true, why
		}
	}
	return false, ""
}

// groupUnits splits a group's pods into units.
func groupUnits(pods []corev1.Pod, hosts int32) []unit {
	var units []unit
	byName := map[string]int{}
	for _, p := range pods {
		name := p.Name
		if hosts > 1 {
			// A pod without a replica name cannot belong to a complete replica; it becomes a
			// unit of its own and is replaced.
			if rn := p.Labels[rayv1.RayWorkerReplicaNameKey]; rn != "" {
				name = rn
			}
		}
		i, ok := byName[name]
		if !ok {
			i = len(units)
			byName[name] = i
			units = append(units, unit{name: name, index: replicaIndex(&p)})
		}
		units[i].pods = append(units[i].pods, p)
	}
	slices.SortFunc(units, func(a, b unit) int { return strings.Compare(a.name, b.name) })
	return units
}

func replicaIndex(p *corev1.Pod) *int32 {
	v, ok := p.Labels[rayv1.RayWorkerReplicaIndexKey]
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return nil
	}
	i := int32(n)
	return &i
}

// reconcileWorkerGroup scales one group: replace broken units, delete workersToDelete, create or
// delete units to reach the desired count, then take one rolling-update step.
func (r *Reconciler) reconcileWorkerGroup(ctx context.Context, s *scope, g *rayv1.WorkerGroupSpec) error {
	c := s.cluster
	if ok, wake := r.exp.satisfied(s.key, g.GroupName, groupOf(s.allPods, g.GroupName), s.now); !ok {
		s.wakeAt(wake)
		return nil
	}
	nh := hosts(g)
	units := groupUnits(s.workerPods(g.GroupName), nh)
	ev := podEvents{}
	defer s.flushPodEvents(ev, "Delete", map[string]string{EventDeletedWorkerPod: "Deleted worker pods"})

	if groupSuspended(g) {
		return r.deleteUnits(ctx, s, g, units, ev)
	}

	// Broken units first; nothing else happens to the group in this pass.
	var broken []unit
	for _, u := range units {
		if del, why := u.shouldDelete(nh); del {
			broken = append(broken, u)
			s.events.Add(corev1.EventTypeNormal, EventDeletedWorkerPod, "Delete", "Replacing %s of group %s: %s", u.name, g.GroupName, why)
		}
	}
	if len(broken) > 0 {
		return r.deleteUnits(ctx, s, g, broken, podEvents{})
	}

	// Pods the autoscaler (or a user) asked to remove; for multi-host, their whole replica.
	if names := g.ScaleStrategy.WorkersToDelete; len(names) > 0 {
		var doomed, kept []unit
		for _, u := range units {
			if slices.ContainsFunc(u.pods, func(p corev1.Pod) bool { return slices.Contains(names, p.Name) }) {
				doomed = append(doomed, u)
			} else {
				kept = append(kept, u)
			}
		}
		if err := r.deleteUnits(ctx, s, g, doomed, ev); err != nil {
			return err
		}
		units = kept
	}

	want := int(desiredReplicas(g))
	rolling := upgradeType(c) == rayv1.RayClusterRollingUpdate
	hash := ""
	if rolling {
		hash = resources.PodTemplateHash(c, g.GroupName)
	}
	anyOutdated := rolling && slices.ContainsFunc(units, func(u unit) bool { return u.outdated(hash) })

	switch diff := want - len(units); {
	case diff > 0:
		return r.createUnits(s, g, units, diff)
	case diff < 0:
		if anyOutdated && diff == -1 {
			break // the surge replica of a rolling update
		}
		if autoscalingEnabled(c) && !r.cfg.EnableRandomPodDelete {
			// The autoscaler is the only authority to scale down: it names pods in
			// workersToDelete.
			return nil
		}
		rankForDeletion(units, hash, nh)
		return r.deleteUnits(ctx, s, g, units[:-diff], ev)
	}
	if anyOutdated {
		return r.rollingUpdateStep(ctx, s, g, units, want, hash, ev)
	}
	return nil
}

// rollingUpdateStep replaces one outdated unit once every unit of the group is ready. It deletes
// an outdated unit directly when the group stays at or above minReplicas ready without it; it
// first creates one extra (surge) unit otherwise.
func (r *Reconciler) rollingUpdateStep(ctx context.Context, s *scope, g *rayv1.WorkerGroupSpec, units []unit, want int, hash string, ev podEvents) error {
	nh := hosts(g)
	for _, u := range units {
		if !u.ready(nh) {
			return nil // wait: the pod watch brings us back when it becomes ready
		}
	}
	minimum := int(min(deref(g.MinReplicas, 0), desiredReplicas(g)))
	if len(units) > want || len(units)-1 >= minimum {
		rankForDeletion(units, hash, nh)
		s.events.Add(corev1.EventTypeNormal, "RollingUpdate", "Update", "Replacing %s of group %s: its pod template changed", units[0].name, g.GroupName)
		return r.deleteUnits(ctx, s, g, units[:1], ev)
	}
	return r.createUnits(s, g, units, 1)
}

// rankForDeletion orders units so that the best ones to delete come first: outdated, then not
// ready, then the newest.
func rankForDeletion(units []unit, hash string, nh int32) {
	score := func(u *unit) int {
		s := 0
		if hash != "" && u.outdated(hash) {
			s -= 2
		}
		if !u.ready(nh) {
			s--
		}
		return s
	}
	slices.SortStableFunc(units, func(a, b unit) int {
		if sa, sb := score(&a), score(&b); sa != sb {
			return sa - sb
		}
		ta, tb := a.pods[0].CreationTimestamp, b.pods[0].CreationTimestamp
		if !ta.Equal(&tb) {
			if ta.Before(&tb) {
				return 1
			}
			return -1
		}
		return strings.Compare(a.name, b.name)
	})
}

func (r *Reconciler) deleteUnits(ctx context.Context, s *scope, g *rayv1.WorkerGroupSpec, units []unit, ev podEvents) error {
	var errs []error
	for _, u := range units {
		for i := range u.pods {
			p := &u.pods[i]
			if err := r.deletePod(ctx, s, g.GroupName, p); err != nil {
				errs = append(errs, fmt.Errorf("deleting worker pod %s: %w", p.Name, err))
				continue
			}
			ev.add(EventDeletedWorkerPod, p.Name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.fail(rayv1.FailedDeleteWorkerPod, err)
		s.events.Add(corev1.EventTypeWarning, EventFailedToDeleteWorkerPod, "Delete", "Failed to delete worker pods of group %s: %v", g.GroupName, err)
		return err
	}
	return nil
}

// createUnits plans the creates of n units with the lowest free replica indexes; once they were
// issued, one event names every pod created and one error every pod that was not.
func (r *Reconciler) createUnits(s *scope, g *rayv1.WorkerGroupSpec, existing []unit, n int) error {
	nh := hosts(g)
	indexing := r.cfg.Enabled(features.RayMultiHostIndexing)
	used := map[int32]bool{}
	for _, u := range existing {
		if u.index != nil {
			used[*u.index] = true
		}
	}
	var created []string
	var errs []error
	next := int32(0)
	for range n {
		for used[next] {
			next++
		}
		used[next] = true
		params := resources.WorkerPodParams{}
		if indexing {
			idx := next
			params.ReplicaIndex = &idx
		}
		if nh > 1 {
			params.ReplicaName = g.GroupName + "-" + utilrand.String(5)
		}
		for h := range nh {
			params.HostIndex = h
			pod := resources.BuildWorkerPod(s.cluster, g, params, r.cfg.Resources)
			err := r.planPodCreate(s, g.GroupName, pod, func(err error) error {
				if err != nil {
					errs = append(errs, fmt.Errorf("worker pod %s: %w", podName(pod), err))
					return nil // reported for the group below
				}
				created = append(created, pod.Name)
				return nil
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("worker pod %s: %w", podName(pod), err))
			}
		}
	}
	s.creates.afterAll(func() error {
		if len(created) > 0 {
			s.events.Add(corev1.EventTypeNormal, EventCreatedWorkerPod, "Create", "Created worker pods %s in group %s", strings.Join(created, ", "), g.GroupName)
		}
		if err := errors.Join(errs...); err != nil {
			s.fail(rayv1.FailedCreateWorkerPod, err)
			s.events.Add(corev1.EventTypeWarning, EventFailedToCreateWorkerPod, "Create", "Failed to create worker pods in group %s: %v", g.GroupName, err)
			return fmt.Errorf("worker group %s: creating worker pods: %w", g.GroupName, err)
		}
		return nil
	})
	return nil
}
