package rayservice

import (
	"strconv"
	"time"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// The decisions of a reconcile as pure functions of what was observed: no client, no clock.

// goalHash hashes a rayClusterConfig the way the RayService compares clusters (KubeRay's
// ray.io/hash-without-replicas-and-workers-to-delete): worker replica counts, workersToDelete,
// tolerations and scheduling gates (which Kueue injects) and suspend are left out, so scaling,
// admission and suspension never start a new cluster.
func goalHash(spec *rayv1.RayClusterSpec) string {
	rc := &rayv1.RayCluster{Spec: *spec.DeepCopy()}
	rc.Spec.Suspend = nil
	return resources.ClusterSpecHash(rc)
}

// firstGroupsHash is goalHash of spec restricted to its first n worker groups.
func firstGroupsHash(spec *rayv1.RayClusterSpec, n int) string {
	s := spec.DeepCopy()
	if n < len(s.WorkerGroupSpecs) {
		s.WorkerGroupSpecs = s.WorkerGroupSpecs[:n]
	}
	return goalHash(s)
}

// specMatch is how a RayCluster's spec relates to the goal.
type specMatch int

const (
	// specSame: nothing to do.
	specSame specMatch = iota
	// specAppendedGroups: the goal only appends worker groups; the cluster is updated in place.
	specAppendedGroups
	// specDifferent: the cluster must be replaced.
	specDifferent
)

// compareSpec compares the goal with the hash annotations of a cluster.
func compareSpec(goal *rayv1.RayClusterSpec, rc *rayv1.RayCluster) specMatch {
	h := rc.Annotations[rayv1.HashWithoutReplicasAndWorkersToDeleteKey]
	if h == goalHash(goal) {
		return specSame
	}
	n, err := strconv.Atoi(rc.Annotations[rayv1.NumWorkerGroupsKey])
	if err == nil && n >= 0 && n < len(goal.WorkerGroupSpecs) && firstGroupsHash(goal, n) == h {
		return specAppendedGroups
	}
	return specDifferent
}

// upgradeEnabled reports whether a rayClusterConfig change prepares a new cluster: upgradeStrategy
// type NewCluster (or NewClusterWithIncrementalUpgrade, run as NewCluster), or no type while the
// operator's ENABLE_ZERO_DOWNTIME is on.
func upgradeEnabled(rs *rayv1.RayService, zeroDowntime bool) bool {
	if us := rs.Spec.UpgradeStrategy; us != nil && us.Type != nil {
		return *us.Type != rayv1.RayServiceUpgradeNone
	}
	return zeroDowntime
}

// rolloutInput is what the cluster rollout decision looks at.
type rolloutInput struct {
	goal        *rayv1.RayClusterSpec
	upgrade     bool
	activeName  string
	pendingName string
	active      *rayv1.RayCluster // nil when activeName is empty or the cluster is gone
	pending     *rayv1.RayCluster // nil when pendingName is empty or the cluster does not exist yet
	newName     func() string     // mints the name of a new pending cluster (called only when one is needed)
}

// rolloutDecision names the active and pending clusters after this reconcile and what to do to
// them. A new pending cluster is only named here; it is created by the next reconcile, once the
// name is safely in status (so an operator restart or a failed status write never leaks one).
type rolloutDecision struct {
	activeName, pendingName string
	createPending           bool
	updateActive            bool
	updatePending           bool
	// note explains a change of pending cluster (for logs and events).
	note string
}

// decideRollout is KubeRay's blue/green policy for the cluster spec (in-place update versus a new
// cluster; https://docs.ray.io/en/latest/cluster/kubernetes/user-guides/rayservice.html):
//   - no cluster at all: name a pending cluster (the first one is promoted like any other);
//   - a pending cluster that matches the goal is kept (and created if missing); one that only
//     lacks appended worker groups is updated in place; otherwise it is dropped, in favour of the
//     active cluster if the goal went back to it, or of a new pending cluster;
//   - an active cluster that matches the goal needs nothing; appended worker groups are added in
//     place; any other change names a new pending cluster when upgrades are enabled, and is
//     ignored otherwise (upgradeStrategy None).
//
// An active cluster that vanished is forgotten, which brings the service back to the first case.
func decideRollout(in rolloutInput) rolloutDecision {
	d := rolloutDecision{activeName: in.activeName, pendingName: in.pendingName}
	if d.activeName != "" && in.active == nil {
		d.activeName = ""
		d.note = "the active RayCluster " + in.activeName + " no longer exists"
	}
	if d.pendingName != "" {
		if in.pending == nil {
			d.createPending = true
			return d
		}
		switch compareSpec(in.goal, in.pending) {
		case specSame:
			return d
		case specAppendedGroups:
			d.updatePending = true
			return d
		}
		if d.activeName != "" && compareSpec(in.goal, in.active) == specSame {
			d.pendingName = ""
			d.note = "rayClusterConfig went back to the active RayCluster's; dropping pending RayCluster " + in.pendingName
			return d
		}
		if d.activeName != "" && !in.upgrade {
			d.pendingName = ""
			d.note = "upgrades are disabled; dropping pending RayCluster " + in.pendingName
			return d
		}
		d.pendingName = in.newName()
		d.note = "rayClusterConfig changed again; replacing pending RayCluster " + in.pendingName + " with " + d.pendingName
		return d
	}
	if d.activeName == "" {
		d.pendingName = in.newName()
		if d.note == "" {
			d.note = "preparing the first RayCluster " + d.pendingName
		}
		return d
	}
	switch compareSpec(in.goal, in.active) {
	case specSame:
	case specAppendedGroups:
		d.updateActive = true
	case specDifferent:
		if in.upgrade {
			d.pendingName = in.newName()
			d.note = "rayClusterConfig changed; preparing RayCluster " + d.pendingName
		}
	}
	return d
}

// appsRunning is KubeRay's readiness rule of a cluster's Serve applications: at least one, and
// every one RUNNING.
func appsRunning(apps map[string]rayv1.AppStatus) bool {
	if len(apps) == 0 {
		return false
	}
	for _, a := range apps {
		if a.Status != rayv1.ApplicationStatusRunning {
			return false
		}
	}
	return true
}

// readyForTraffic reports whether a cluster may receive traffic: every application RUNNING and at
// least one pod whose proxy answers its health check (so the serve Service has somewhere to send
// requests the moment it selects the cluster).
func readyForTraffic(apps map[string]rayv1.AppStatus, healthyProxies int) bool {
	return appsRunning(apps) && healthyProxies > 0
}

// trafficTarget is the cluster the head and serve Services select: the pending cluster once it is
// ready for traffic, else the active one. "" means there is nothing to point at yet (no Service is
// created before the first cluster is ready).
func trafficTarget(activeName, pendingName string, pendingReady bool) string {
	if pendingName != "" && pendingReady {
		return pendingName
	}
	return activeName
}

// deletionDelay is spec.rayClusterDeletionDelaySeconds, or the default.
func deletionDelay(rs *rayv1.RayService) time.Duration {
	if d := rs.Spec.RayClusterDeletionDelaySeconds; d != nil && *d >= 0 {
		return time.Duration(*d) * time.Second
	}
	return DefaultRayClusterDeletionDelay
}

// supersededAt parses the rayv1.SupersededAtAnnotation of a cluster.
func supersededAt(rc *rayv1.RayCluster) (time.Time, bool) {
	v, ok := rc.Annotations[rayv1.SupersededAtAnnotation]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// serveBackoff is when to look at a cluster whose applications are not RUNNING yet again: the
// time already spent waiting, halved, between min and max.
func serveBackoff(waited, minWait, maxWait time.Duration) time.Duration {
	return min(max(waited/2, minWait), maxWait)
}

// initializingTimeout parses the ray.io/initializing-timeout annotation: a Go duration or a number
// of seconds. ok is false when it is unset or invalid.
func initializingTimeout(rs *rayv1.RayService) (time.Duration, bool) {
	v, ok := rs.Annotations[rayv1.RayServiceInitializingTimeoutAnnotation]
	if !ok || v == "" {
		return 0, false
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, true
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// earliest returns the earlier non-zero time.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}
