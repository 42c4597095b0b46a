package rayjob

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// validationFailed is the decision for a spec or status the CRD could not reject: the RayJob stops
// in ValidationFailed with a message naming the field, and is not requeued (a spec change brings it
// back). The Warning event is queued only when the message is new, so re-validating the same
// object does not spam.
func validationFailed(job *rayv1.RayJob, vf *validationFailure) decision {
	d := decision{status: *job.Status.DeepCopy()}
	d.status.JobDeploymentStatus = rayv1.JobDeploymentStatusValidationFailed
	d.status.Reason = rayv1.ValidationFailed
	d.status.Message = vf.err.Error()
	if job.Status.JobDeploymentStatus != d.status.JobDeploymentStatus || job.Status.Message != d.status.Message {
		d.events.Add(corev1.EventTypeWarning, vf.eventReason, "Validate", "%s", d.status.Message)
	}
	return d
}

// statusChanged reports whether the status needs writing.
func statusChanged(before, after *rayv1.RayJobStatus) bool {
	return !equality.Semantic.DeepEqual(before, after)
}

// transitionEvent describes a change of jobDeploymentStatus for users: one event per transition,
// Warning when the attempt failed.
func transitionEvent(before, after *rayv1.RayJobStatus) (reconcilekit.Event, bool) {
	from, to := before.JobDeploymentStatus, after.JobDeploymentStatus
	if from == to || to == rayv1.JobDeploymentStatusValidationFailed {
		return reconcilekit.Event{}, false
	}
	typ := corev1.EventTypeNormal
	note := fmt.Sprintf("jobDeploymentStatus %s -> %s", stateName(from), stateName(to))
	switch to {
	case rayv1.JobDeploymentStatusInitializing:
		note += fmt.Sprintf(": RayCluster %s", after.RayClusterName)
		if after.JobID != "" {
			note += ", job id " + after.JobID
		}
	case rayv1.JobDeploymentStatusRunning:
		note += fmt.Sprintf(": job %s on RayCluster %s (dashboard %s)", after.JobID, after.RayClusterName, after.DashboardURL)
	case rayv1.JobDeploymentStatusComplete:
		note += fmt.Sprintf(": job %s %s", after.JobID, after.JobStatus)
	case rayv1.JobDeploymentStatusFailed:
		typ = corev1.EventTypeWarning
		note += fmt.Sprintf(": %s: %s", after.Reason, after.Message)
	case rayv1.JobDeploymentStatusRetrying:
		typ = corev1.EventTypeWarning
		note += fmt.Sprintf(": attempt %d failed: %s: %s", deref(after.Failed), after.Reason, after.Message)
	}
	return reconcilekit.Event{Type: typ, Reason: "RayJob" + stateName(to), Action: "Transition", Note: note}, true
}

func stateName(s rayv1.JobDeploymentStatus) string {
	if s == rayv1.JobDeploymentStatusNew {
		return "New"
	}
	return string(s)
}

// requeueAfter turns the decision's wake-up time into a delay (0 = rely on watches only).
func requeueAfter(at, now time.Time) time.Duration {
	if at.IsZero() {
		return 0
	}
	return max(at.Sub(now), 100*time.Millisecond)
}
