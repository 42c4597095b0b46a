package raycronjob

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// policy is what a RayCronJob asks for, parsed and checked.
type policy struct {
	schedule    cron.Schedule
	concurrency rayv1.ConcurrencyPolicy
	// keepSucceeded and keepFailed are history limits; nil keeps every finished RayJob.
	keepSucceeded *int
	keepFailed    *int
}

// parsePolicy checks the schedule, the time zone and the rayk8s.io annotations of cj. Every error
// names its field or annotation; all of them are returned, one per line.
func parsePolicy(cj *rayv1.RayCronJob, local *time.Location) (policy, []string) {
	var p policy
	var problems []string
	sched, err := parseSchedule(cj.Spec.Schedule, cj.Spec.TimeZone, local)
	if err != nil {
		problems = append(problems, err.Error())
	}
	p.schedule = sched
	p.concurrency = rayv1.AllowConcurrent
	if v, ok := cj.Annotations[rayv1.RayCronJobConcurrencyPolicyAnnotation]; ok {
		switch c := rayv1.ConcurrencyPolicy(v); c {
		case rayv1.AllowConcurrent, rayv1.ForbidConcurrent, rayv1.ReplaceConcurrent:
			p.concurrency = c
		default:
			problems = append(problems, fmt.Sprintf("metadata.annotations[%s]: %q is not one of Allow, Forbid, Replace",
				rayv1.RayCronJobConcurrencyPolicyAnnotation, v))
		}
	}
	for _, l := range []struct {
		key string
		dst **int
	}{
		{rayv1.RayCronJobSuccessfulHistoryLimitAnnotation, &p.keepSucceeded},
		{rayv1.RayCronJobFailedHistoryLimitAnnotation, &p.keepFailed},
	} {
		v, ok := cj.Annotations[l.key]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("metadata.annotations[%s]: %q is not a non-negative integer", l.key, v))
			continue
		}
		*l.dst = &n
	}
	return p, problems
}

// parseSchedule reads a standard cron expression in the time zone tz, or in local when tz is nil
// and the expression names none itself (CRON_TZ= or TZ= prefix, which robfig/cron accepts).
func parseSchedule(expr string, tz *string, local *time.Location) (cron.Schedule, error) {
	hasTZ := strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=")
	var loc *time.Location
	if tz != nil {
		if hasTZ {
			return nil, fmt.Errorf("spec.schedule: %q names a time zone; with spec.timeZone set it must not", expr)
		}
		l, err := time.LoadLocation(*tz)
		if err != nil || *tz == "Local" {
			return nil, fmt.Errorf("spec.timeZone: %q is not an IANA time zone name", *tz)
		}
		loc = l
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("spec.schedule: %q is not a cron schedule: %w", expr, err)
	}
	if s, ok := sched.(*cron.SpecSchedule); ok {
		switch {
		case loc != nil:
			s.Location = loc
		case !hasTZ:
			s.Location = local
		}
	}
	return sched, nil
}
