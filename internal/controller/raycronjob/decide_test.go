package raycronjob

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

var created = time.Date(2026, 3, 1, 10, 3, 0, 0, time.UTC)

func cronJob(schedule string, mutate ...func(*rayv1.RayCronJob)) *rayv1.RayCronJob {
	cj := &rayv1.RayCronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cj", UID: "u1", Generation: 1,
		CreationTimestamp: metav1.NewTime(created)}}
	cj.Spec.Schedule = schedule
	cj.Spec.TimeZone = ptr.To("UTC")
	cj.Spec.JobTemplate.Entrypoint = "echo hi"
	for _, m := range mutate {
		m(cj)
	}
	return cj
}

func job(cj *rayv1.RayCronJob, t time.Time, s rayv1.JobDeploymentStatus) rayv1.RayJob {
	rj := buildRayJob(cj, t)
	rj.Status.JobDeploymentStatus = s
	return *rj
}

func TestDecideRequeuesAtTheNextScheduleTime(t *testing.T) {
	d := decide(observed{cronJob: cronJob("*/10 * * * *"), now: created.Add(time.Minute), local: time.UTC})
	if d.create != nil || d.status.LastScheduleTime != nil {
		t.Fatalf("created %v before the first schedule time", d.create)
	}
	if want := time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC); !d.requeueAt.Equal(want) {
		t.Errorf("requeueAt = %s, want %s", d.requeueAt, want)
	}
}

func TestDecideReplaysOneMissedTimePerReconcile(t *testing.T) {
	cj := cronJob("*/10 * * * *")
	now := created.Add(time.Hour)
	d := decide(observed{cronJob: cj, now: now, local: time.UTC})
	first := time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC)
	if d.create == nil || d.create.Name != jobName("cj", first) {
		t.Fatalf("create = %v, want the RayJob of %s", d.create, first)
	}
	if !d.status.LastScheduleTime.Equal(&metav1.Time{Time: first}) {
		t.Errorf("lastScheduleTime = %v, want %s", d.status.LastScheduleTime, first)
	}
	if !d.requeueAt.Equal(first.Add(10*time.Minute)) || d.requeueAt.After(now) {
		t.Errorf("requeueAt = %s, want the next missed time %s", d.requeueAt, first.Add(10*time.Minute))
	}
	if got := d.create.Annotations[rayv1.RayCronJobScheduledTimestampAnnotation]; got != "2026-03-01T10:10:00Z" {
		t.Errorf("scheduled timestamp = %q", got)
	}
}

func TestDecideConcurrencyPolicies(t *testing.T) {
	last := time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC)
	now := last.Add(10 * time.Minute)
	for _, tc := range []struct {
		policy                string
		wantCreate, wantCount int // wantCount: RayJobs deleted
	}{
		{"Allow", 1, 0},
		{"Forbid", 0, 0},
		{"Replace", 1, 1},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			cj := cronJob("*/10 * * * *", func(c *rayv1.RayCronJob) {
				c.Annotations = map[string]string{rayv1.RayCronJobConcurrencyPolicyAnnotation: tc.policy}
				c.Status.LastScheduleTime = &metav1.Time{Time: last}
			})
			d := decide(observed{cronJob: cj, jobs: []rayv1.RayJob{job(cj, last, rayv1.JobDeploymentStatusRunning)}, now: now, local: time.UTC})
			if got := map[bool]int{true: 1}[d.create != nil]; got != tc.wantCreate {
				t.Errorf("created %d RayJobs, want %d", got, tc.wantCreate)
			}
			if len(d.delete) != tc.wantCount {
				t.Errorf("deleted %d RayJobs, want %d", len(d.delete), tc.wantCount)
			}
			if !d.status.LastScheduleTime.Time.Equal(now) {
				t.Errorf("lastScheduleTime = %s, want %s (handled even when skipped)", d.status.LastScheduleTime, now)
			}
		})
	}
}

func TestDecideHistoryLimits(t *testing.T) {
	cj := cronJob("*/10 * * * *", func(c *rayv1.RayCronJob) {
		c.Annotations = map[string]string{
			rayv1.RayCronJobSuccessfulHistoryLimitAnnotation: "2",
			rayv1.RayCronJobFailedHistoryLimitAnnotation:     "0",
		}
		c.Spec.Suspend = true
	})
	var jobs []rayv1.RayJob
	for i := range 4 {
		jobs = append(jobs, job(cj, created.Add(time.Duration(i)*time.Hour), rayv1.JobDeploymentStatusComplete))
	}
	jobs = append(jobs, job(cj, created.Add(5*time.Hour), rayv1.JobDeploymentStatusFailed))
	d := decide(observed{cronJob: cj, jobs: jobs, now: created.Add(6 * time.Hour), local: time.UTC})
	var names []string
	for _, rj := range d.delete {
		names = append(names, rj.Name)
	}
	want := []string{jobs[0].Name, jobs[1].Name, jobs[4].Name}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("deleted %v, want %v", names, want)
	}
}

func TestDecideReportsWhatItCannotUse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*rayv1.RayCronJob)
		want   string
	}{
		{"schedule", func(c *rayv1.RayCronJob) { c.Spec.Schedule = "61 * * * *" }, "spec.schedule"},
		{"time zone", func(c *rayv1.RayCronJob) { c.Spec.TimeZone = ptr.To("Nowhere/Land") }, "spec.timeZone"},
		{"time zone twice", func(c *rayv1.RayCronJob) { c.Spec.Schedule = "CRON_TZ=UTC 0 * * * *" }, "spec.schedule"},
		{"policy", func(c *rayv1.RayCronJob) {
			c.Annotations = map[string]string{rayv1.RayCronJobConcurrencyPolicyAnnotation: "forbid"}
		}, rayv1.RayCronJobConcurrencyPolicyAnnotation},
		{"limit", func(c *rayv1.RayCronJob) {
			c.Annotations = map[string]string{rayv1.RayCronJobFailedHistoryLimitAnnotation: "many"}
		}, rayv1.RayCronJobFailedHistoryLimitAnnotation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(observed{cronJob: cronJob("0 * * * *", tc.mutate), now: created.Add(3 * time.Hour), local: time.UTC})
			if d.create != nil || !d.requeueAt.IsZero() {
				t.Errorf("an invalid RayCronJob scheduled: create=%v requeueAt=%s", d.create, d.requeueAt)
			}
			c := d.status.Conditions
			if len(c) != 1 || c[0].Status != metav1.ConditionFalse || !strings.Contains(c[0].Message, tc.want) {
				t.Errorf("conditions = %+v, want RayCronJobSpecValid False naming %s", c, tc.want)
			}
			if len(d.events) != 1 || d.events[0].Reason != rayv1.InvalidRayCronJobSpec {
				t.Errorf("events = %+v, want one InvalidRayCronJobSpec", d.events)
			}
		})
	}
}

// A RayCronJob read from a cache older than its last status write sees the due time it already
// handled: the RayJob of that time must be neither replaced nor count as a reason to skip.
func TestDecideRetryOfTheSameTimeKeepsItsRayJob(t *testing.T) {
	for _, policy := range []string{"Allow", "Forbid", "Replace"} {
		t.Run(policy, func(t *testing.T) {
			cj := cronJob("*/10 * * * *", func(c *rayv1.RayCronJob) {
				c.Annotations = map[string]string{rayv1.RayCronJobConcurrencyPolicyAnnotation: policy}
			})
			first := time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC)
			d := decide(observed{cronJob: cj, jobs: []rayv1.RayJob{job(cj, first, rayv1.JobDeploymentStatusNew)}, now: first.Add(time.Second), local: time.UTC})
			if d.create != nil || len(d.delete) != 0 || len(d.events)+len(d.actionEvents) != 0 {
				t.Errorf("create=%v delete=%d events=%+v, want nothing done", d.create, len(d.delete), d.events)
			}
			if len(d.status.Active) != 1 || !d.status.LastScheduleTime.Time.Equal(first) {
				t.Errorf("status = %+v, want the existing RayJob active and lastScheduleTime %s", d.status, first)
			}
		})
	}
}
