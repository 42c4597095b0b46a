package raycronjob

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// jobName is the name of the RayJob for the schedule time t: the RayCronJob's name and t in
// minutes since the epoch, so each schedule time has exactly one name (a retry after a failed
// status write finds the RayJob it already created).
func jobName(cronJobName string, t time.Time) string {
	return fmt.Sprintf("%s-%d", cronJobName, t.Unix()/60)
}

// buildRayJob is the RayJob a RayCronJob creates for the schedule time t: its template, labelled
// with the RayCronJob's name, annotated with t and controlled by the RayCronJob.
func buildRayJob(cj *rayv1.RayCronJob, t time.Time) *rayv1.RayJob {
	return &rayv1.RayJob{
		TypeMeta: metav1.TypeMeta{APIVersion: rayv1.GroupVersion.String(), Kind: "RayJob"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        jobName(cj.Name, t),
			Namespace:   cj.Namespace,
			Labels:      map[string]string{rayv1.RayCronJobNameLabelKey: cj.Name},
			Annotations: map[string]string{rayv1.RayCronJobScheduledTimestampAnnotation: t.UTC().Format(time.RFC3339)},
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(cj, rayv1.GroupVersion.WithKind("RayCronJob")),
			},
		},
		Spec: *cj.Spec.JobTemplate.DeepCopy(),
	}
}

// scheduledTime is the schedule time a RayJob was created for, or its creation time when the
// annotation is missing or unreadable.
func scheduledTime(rj *rayv1.RayJob) time.Time {
	if t, err := time.Parse(time.RFC3339, rj.Annotations[rayv1.RayCronJobScheduledTimestampAnnotation]); err == nil {
		return t
	}
	return rj.CreationTimestamp.Time
}
