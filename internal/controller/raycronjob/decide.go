package raycronjob

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// Event reasons (besides InvalidRayCronJobSpec).
const (
	// SuspendedRayCronJob is KubeRay's event when a suspended RayCronJob is reconciled.
	SuspendedRayCronJob = "SuspendedRayCronJob"
	// CreatedRayJob announces the RayJob of a schedule time.
	CreatedRayJob = "CreatedRayJob"
	// SkippedRayCronJobRun announces a schedule time skipped under the Forbid policy.
	SkippedRayCronJobRun = "SkippedRayCronJobRun"
	// DeletedRayJob announces a RayJob deleted by the Replace policy or a history limit.
	DeletedRayJob = "DeletedRayJob"
)

// observed is what one reconcile knows: the RayCronJob, its RayJobs and the time.
type observed struct {
	cronJob *rayv1.RayCronJob
	// jobs are the RayJobs the RayCronJob controls, oldest schedule time first.
	jobs []rayv1.RayJob
	now  time.Time
	// local is the time zone of schedules that name none.
	local *time.Location
}

// decision is what the reconcile does and what the status becomes.
type decision struct {
	create *rayv1.RayJob
	delete []rayv1.RayJob
	status rayv1.RayCronJobStatus
	// events announce the new status; emitted only once it is written.
	events reconcilekit.Events
	// actionEvents announce the creations and deletions; emitted after the status write whatever
	// its outcome, since the RayJobs changed either way.
	actionEvents reconcilekit.Events
	// requeueAt is when the next schedule time falls due; zero when nothing is scheduled.
	requeueAt time.Time
}

// decide is the whole policy, without side effects.
func decide(in observed) decision {
	cj := in.cronJob
	d := decision{status: *cj.Status.DeepCopy()}
	d.status.ObservedGeneration = cj.Generation
	newSpec := cj.Generation != cj.Status.ObservedGeneration

	p, problems := parsePolicy(cj, in.local)
	if len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		prev := meta.FindStatusCondition(cj.Status.Conditions, string(rayv1.RayCronJobSpecValid))
		if prev == nil || prev.Status != metav1.ConditionFalse || prev.Message != msg {
			d.events.Add(corev1.EventTypeWarning, rayv1.InvalidRayCronJobSpec, "Validate", "%s", msg)
		}
		setValid(&d.status, cj.Generation, in.now, metav1.ConditionFalse, rayv1.InvalidRayCronJobSpec, msg)
		d.status.Active = activeRefs(in.jobs)
		return d
	}
	setValid(&d.status, cj.Generation, in.now, metav1.ConditionTrue, rayv1.ValidRayCronJobSpec, "the schedule, time zone and annotations are valid")

	active, succeeded, failed := partition(in.jobs)
	d.delete = append(d.delete, overLimit(succeeded, p.keepSucceeded)...)
	d.delete = append(d.delete, overLimit(failed, p.keepFailed)...)

	if cj.Spec.Suspend {
		if newSpec {
			d.events.Add(corev1.EventTypeNormal, SuspendedRayCronJob, "Suspend", "spec.suspend is true: no RayJob is created until it is false")
		}
		d.status.Active = activeRefs(active)
		d.noteDeletions()
		return d
	}

	// KubeRay's rule: the schedule time after the last one handled (or after creation) is due
	// once the clock passed it; one due time is handled per reconcile, so missed ones are replayed
	// in order.
	last := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		last = cj.Status.LastScheduleTime.Time
	}
	due := p.schedule.Next(last)
	if due.IsZero() {
		// A schedule with no future time (e.g. 30 February) never runs.
		d.status.Active = activeRefs(active)
		d.noteDeletions()
		return d
	}
	if due.After(in.now) {
		d.requeueAt = due
		d.status.Active = activeRefs(active)
		d.noteDeletions()
		return d
	}

	d.status.LastScheduleTime = &metav1.Time{Time: due}
	d.requeueAt = p.schedule.Next(due)
	stamp := due.UTC().Format(time.RFC3339)
	rj := buildRayJob(cj, due)
	// The RayJob of this very time already exists when the RayCronJob read is older than the
	// last status write (a retry): it is the run, not a run to forbid or replace.
	exists := slices.ContainsFunc(in.jobs, func(j rayv1.RayJob) bool { return j.Name == rj.Name })
	earlier := slices.DeleteFunc(slices.Clone(active), func(j rayv1.RayJob) bool { return j.Name == rj.Name })
	switch {
	case exists:
	case len(earlier) > 0 && p.concurrency == rayv1.ForbidConcurrent:
		d.events.Add(corev1.EventTypeNormal, SkippedRayCronJobRun, "Skip",
			"Skipped the run scheduled at %s: RayJob %s is still active and the concurrency policy is Forbid", stamp, earlier[0].Name)
	default:
		if p.concurrency == rayv1.ReplaceConcurrent {
			d.delete = append(d.delete, earlier...)
			active = nil
		}
		d.create = rj
		d.actionEvents.Add(corev1.EventTypeNormal, CreatedRayJob, "Create", "Created RayJob %s for the run scheduled at %s", rj.Name, stamp)
		active = append(active, *rj)
	}
	d.status.Active = activeRefs(active)
	d.noteDeletions()
	return d
}

func (d *decision) noteDeletions() {
	for _, rj := range d.delete {
		d.actionEvents.Add(corev1.EventTypeNormal, DeletedRayJob, "Delete", "Deleted RayJob %s (deployment status %q)", rj.Name, rj.Status.JobDeploymentStatus)
	}
}

func setValid(s *rayv1.RayCronJobStatus, gen int64, now time.Time, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.Conditions, metav1.Condition{
		Type: string(rayv1.RayCronJobSpecValid), Status: status, Reason: reason, Message: msg,
		ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(now),
	})
}

// partition splits RayJobs (oldest first) into the active ones and the finished ones. RayJobs being
// deleted are in none.
func partition(jobs []rayv1.RayJob) (active, succeeded, failed []rayv1.RayJob) {
	for _, rj := range jobs {
		switch {
		case rj.DeletionTimestamp != nil:
		case rj.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusComplete:
			succeeded = append(succeeded, rj)
		case rj.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusFailed:
			failed = append(failed, rj)
		default:
			active = append(active, rj)
		}
	}
	return active, succeeded, failed
}

// overLimit returns the oldest of finished beyond the newest keep; nil keep keeps all.
func overLimit(finished []rayv1.RayJob, keep *int) []rayv1.RayJob {
	if keep == nil || len(finished) <= *keep {
		return nil
	}
	return finished[:len(finished)-*keep]
}

func activeRefs(jobs []rayv1.RayJob) []corev1.ObjectReference {
	var refs []corev1.ObjectReference
	for _, rj := range jobs {
		if rj.DeletionTimestamp != nil || rayv1.IsJobDeploymentTerminal(rj.Status.JobDeploymentStatus) {
			continue
		}
		refs = append(refs, corev1.ObjectReference{
			APIVersion: rayv1.GroupVersion.String(), Kind: "RayJob",
			Namespace: rj.Namespace, Name: rj.Name, UID: rj.UID,
		})
	}
	return refs
}

// sortBySchedule orders RayJobs by schedule time, then name.
func sortBySchedule(jobs []rayv1.RayJob) {
	slices.SortStableFunc(jobs, func(a, b rayv1.RayJob) int {
		if c := scheduledTime(&a).Compare(scheduledTime(&b)); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// statusChanged reports whether the status needs a write (nil and empty lists are the same).
func statusChanged(before, after *rayv1.RayCronJobStatus) bool {
	return !equality.Semantic.DeepEqual(before, after)
}
