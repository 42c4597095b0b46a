package rayservice

import (
	"time"

	"github.com/go-logr/logr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// scope carries one reconcile: the RayService as read, the facts each phase records, and the
// events and requeue time they ask for. Phases never write status; status.go turns the facts into
// status once, at the end.
type scope struct {
	rs     *rayv1.RayService
	before *rayv1.RayService
	now    time.Time
	log    logr.Logger

	// Cluster rollout (cluster.go).
	owned       []*rayv1.RayCluster // controlled by the RayService (by UID), including deleting ones
	active      *rayv1.RayCluster   // the cluster named by status, nil when missing
	pending     *rayv1.RayCluster
	activeName  string // names after this reconcile
	pendingName string
	promoted    bool // the pending cluster became active in this reconcile

	// Serve applications (serveconfig.go), by cluster name.
	serve map[string]*clusterServe

	// Traffic (traffic.go).
	numEndpoints   int32
	endpointsKnown bool

	// Suspension (suspend.go).
	suspend suspendState

	// Terminal and blocking states.
	invalid  error // the spec failed validation
	timedOut bool  // ray.io/initializing-timeout passed (terminal)

	events    reconcilekit.Events // emitted after the status write
	requeueAt time.Time
}

// clusterServe is what was learned about the Serve applications of one cluster.
type clusterServe struct {
	headReady bool
	// known is false when the dashboard was not asked (head not ready) or did not answer.
	known bool
	apps  map[string]rayv1.AppStatus
	// healthyProxies counts the cluster's Ready pods whose proxy answered /-/healthz.
	healthyProxies int
	// accepted and rejected describe the current serveConfigV2 on this cluster: accepted by the
	// dashboard, or rejected with its message.
	accepted bool
	rejected string
}

func (s *scope) serveOf(cluster string) *clusterServe {
	if cluster == "" {
		return nil
	}
	if s.serve == nil {
		s.serve = map[string]*clusterServe{}
	}
	cs, ok := s.serve[cluster]
	if !ok {
		cs = &clusterServe{}
		s.serve[cluster] = cs
	}
	return cs
}

// requeueIn asks for another reconcile after d (the earliest request wins).
func (s *scope) requeueIn(d time.Duration) {
	s.requeueAt = earliest(s.requeueAt, s.now.Add(max(d, time.Millisecond)))
}

// requeueAtTime asks for another reconcile at t.
func (s *scope) requeueAtTime(t time.Time) {
	if !t.After(s.now) {
		t = s.now.Add(time.Millisecond)
	}
	s.requeueAt = earliest(s.requeueAt, t)
}
