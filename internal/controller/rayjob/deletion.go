package rayjob

import (
	"fmt"
	"time"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// Clean-up of a finished RayJob (Complete or Failed): deletionStrategy rules, the legacy
// onSuccess/onFailure pair, or shutdownAfterJobFinishes with ttlSecondsAfterFinished.

// policyImpact orders policies from least to most impactful; one reconcile executes only the most
// impactful overdue rule, since it subsumes the others (deleting the RayJob deletes the cluster).
var policyImpact = map[rayv1.DeletionPolicyType]int{
	rayv1.DeleteNone:    0,
	rayv1.DeleteWorkers: 1,
	rayv1.DeleteCluster: 2,
	rayv1.DeleteSelf:    3,
}

// decideFinished schedules or runs the clean-up of a finished RayJob.
func decideFinished(in *input, d *decision) {
	st := &in.job.Status
	if st.EndTime == nil {
		return
	}
	spec := &in.job.Spec
	switch {
	case spec.DeletionStrategy != nil && in.cfg.Enabled(features.RayJobDeletionPolicy):
		if len(spec.DeletionStrategy.DeletionRules) > 0 {
			decideDeletionRules(in, d)
		} else {
			decideLegacyDeletion(in, d)
		}
	case spec.ShutdownAfterJobFinishes:
		if clusterSelectorName(in.job) != "" {
			return
		}
		due := st.EndTime.Add(time.Duration(spec.TTLSecondsAfterFinished) * time.Second)
		policy := rayv1.DeleteCluster
		if in.cfg.DeleteRayJobAfterJobFinishes {
			policy = rayv1.DeleteSelf
		}
		if policyDone(in, policy) {
			return
		}
		if in.now.Before(due) {
			d.wakeAt(due)
			return
		}
		runPolicy(d, policy, fmt.Sprintf("shutdownAfterJobFinishes after %ds", spec.TTLSecondsAfterFinished))
	}
}

// decideDeletionRules runs the most impactful overdue rule that is not done yet, and wakes up for
// the earliest pending one.
func decideDeletionRules(in *input, d *decision) {
	st := &in.job.Status
	var best *rayv1.DeletionRule
	for i := range in.job.Spec.DeletionStrategy.DeletionRules {
		r := &in.job.Spec.DeletionStrategy.DeletionRules[i]
		if !ruleMatches(r, st) || policyDone(in, r.Policy) {
			continue
		}
		due := st.EndTime.Add(time.Duration(r.Condition.TTLSeconds) * time.Second)
		if in.now.Before(due) {
			d.wakeAt(due.Add(DefaultDeletionRequeueSlack))
			continue
		}
		if best == nil || policyImpact[r.Policy] > policyImpact[best.Policy] {
			best = r
		}
	}
	if best != nil {
		runPolicy(d, best.Policy, fmt.Sprintf("deletion rule %s after %ds", ruleName(best), best.Condition.TTLSeconds))
	}
}

// decideLegacyDeletion applies onSuccess when the job SUCCEEDED and onFailure otherwise, after
// ttlSecondsAfterFinished.
func decideLegacyDeletion(in *input, d *decision) {
	ds := in.job.Spec.DeletionStrategy
	p := ds.OnFailure
	which := "onFailure"
	if in.job.Status.JobStatus == rayv1.JobStatusSucceeded {
		p, which = ds.OnSuccess, "onSuccess"
	}
	if p == nil || p.Policy == nil || policyDone(in, *p.Policy) {
		return
	}
	due := in.job.Status.EndTime.Add(time.Duration(in.job.Spec.TTLSecondsAfterFinished) * time.Second)
	if in.now.Before(due) {
		d.wakeAt(due)
		return
	}
	runPolicy(d, *p.Policy, fmt.Sprintf("deletionStrategy.%s after %ds", which, in.job.Spec.TTLSecondsAfterFinished))
}

func ruleMatches(r *rayv1.DeletionRule, st *rayv1.RayJobStatus) bool {
	c := r.Condition
	switch {
	case c.JobStatus != nil:
		return *c.JobStatus == st.JobStatus
	case c.JobDeploymentStatus != nil:
		return *c.JobDeploymentStatus == st.JobDeploymentStatus
	}
	return false
}

func ruleName(r *rayv1.DeletionRule) string {
	cond := ""
	if r.Condition.JobStatus != nil {
		cond = "jobStatus=" + string(*r.Condition.JobStatus)
	} else if r.Condition.JobDeploymentStatus != nil {
		cond = "jobDeploymentStatus=" + string(*r.Condition.JobDeploymentStatus)
	}
	return fmt.Sprintf("%s(%s)", r.Policy, cond)
}

// policyDone reports whether what the policy deletes is already gone (or going).
func policyDone(in *input, p rayv1.DeletionPolicyType) bool {
	switch p {
	case rayv1.DeleteNone:
		return true
	case rayv1.DeleteSelf:
		return in.job.DeletionTimestamp != nil
	case rayv1.DeleteCluster:
		return in.cluster == nil || in.cluster.DeletionTimestamp != nil
	case rayv1.DeleteWorkers:
		if in.cluster == nil || in.cluster.DeletionTimestamp != nil {
			return true
		}
		for _, g := range in.cluster.Spec.WorkerGroupSpecs {
			if g.Suspend == nil || !*g.Suspend {
				return false
			}
		}
		return true
	}
	return true
}

func runPolicy(d *decision, p rayv1.DeletionPolicyType, why string) {
	switch p {
	case rayv1.DeleteSelf:
		d.do(actDeleteSelf, why)
	case rayv1.DeleteCluster:
		d.do(actDeleteCluster, why)
	case rayv1.DeleteWorkers:
		d.do(actDeleteWorkers, why)
	}
}
