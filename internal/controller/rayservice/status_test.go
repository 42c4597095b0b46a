package rayservice

import (
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func TestSetReadyCondition(t *testing.T) {
	t0 := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	cond := func(status metav1.ConditionStatus, reason rayv1.RayServiceConditionReason) []metav1.Condition {
		return []metav1.Condition{{Type: string(rayv1.RayServiceReady), Status: status, Reason: string(reason)}}
	}
	cases := map[string]struct {
		before     []metav1.Condition
		mut        func(*scope)
		endpoints  int32
		wantStatus metav1.ConditionStatus
		wantReason rayv1.RayServiceConditionReason
	}{
		"first reconcile":                 {wantStatus: metav1.ConditionFalse, wantReason: rayv1.RayServiceInitializing},
		"endpoints":                       {endpoints: 2, wantStatus: metav1.ConditionTrue, wantReason: rayv1.NonZeroServeEndpoints},
		"endpoints lost":                  {before: cond(metav1.ConditionTrue, rayv1.NonZeroServeEndpoints), wantStatus: metav1.ConditionFalse, wantReason: rayv1.ZeroServeEndpoints},
		"invalid spec":                    {mut: func(s *scope) { s.invalid = errors.New("bad") }, endpoints: 1, wantStatus: metav1.ConditionFalse, wantReason: rayv1.RayServiceValidationFailed},
		"timed out":                       {mut: func(s *scope) { s.timedOut = true }, wantStatus: metav1.ConditionFalse, wantReason: rayv1.InitializingTimeout},
		"suspending":                      {mut: func(s *scope) { s.suspend = suspendInProgress }, wantStatus: metav1.ConditionFalse, wantReason: rayv1.RayServiceSuspendInProgress},
		"rejected config before serving":  {mut: reject, wantStatus: metav1.ConditionFalse, wantReason: rayv1.RayServiceValidationFailed},
		"rejected config while serving":   {before: cond(metav1.ConditionTrue, rayv1.NonZeroServeEndpoints), mut: reject, endpoints: 1, wantStatus: metav1.ConditionTrue, wantReason: rayv1.NonZeroServeEndpoints},
		"fixed config, still no endpoint": {before: cond(metav1.ConditionFalse, rayv1.RayServiceValidationFailed), wantStatus: metav1.ConditionFalse, wantReason: rayv1.RayServiceInitializing},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rs := &rayv1.RayService{}
			rs.Status.Conditions = tc.before
			rs.Status.NumServeEndpoints = tc.endpoints
			s := &scope{rs: rs, before: rs.DeepCopy(), now: t0, activeName: "c"}
			if tc.mut != nil {
				tc.mut(s)
			}
			setReadyCondition(s)
			c := meta.FindStatusCondition(rs.Status.Conditions, string(rayv1.RayServiceReady))
			if c == nil || c.Status != tc.wantStatus || c.Reason != string(tc.wantReason) {
				t.Fatalf("Ready = %+v, want %s/%s", c, tc.wantStatus, tc.wantReason)
			}
		})
	}
}

func reject(s *scope) { s.serveOf("c").rejected = "route_prefix must start with '/'" }

func TestSetUpgradeCondition(t *testing.T) {
	cases := map[string]struct {
		active, pending string
		want            metav1.ConditionStatus
		reason          rayv1.RayServiceConditionReason
	}{
		"both":         {"a", "p", metav1.ConditionTrue, rayv1.BothActivePendingClustersExist},
		"active only":  {"a", "", metav1.ConditionFalse, rayv1.NoPendingCluster},
		"pending only": {"", "p", metav1.ConditionUnknown, rayv1.NoActiveCluster},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &scope{rs: &rayv1.RayService{}, activeName: tc.active, pendingName: tc.pending}
			setUpgradeCondition(s)
			c := meta.FindStatusCondition(s.rs.Status.Conditions, string(rayv1.UpgradeInProgress))
			if c == nil || c.Status != tc.want || c.Reason != string(tc.reason) {
				t.Fatalf("UpgradeInProgress = %+v", c)
			}
		})
	}
}
