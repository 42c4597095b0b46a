package raycronjob

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/robfig/cron/v3"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"
)

// ticks returns the schedule times of expr (in loc) after from, up to and including to.
func ticks(expr string, loc *time.Location, from, to time.Time) []time.Time {
	GinkgoHelper()
	s, err := cron.ParseStandard(expr)
	Expect(err).NotTo(HaveOccurred())
	s.(*cron.SpecSchedule).Location = loc
	var out []time.Time
	for t := s.Next(from); !t.After(to); t = s.Next(t) {
		out = append(out, t)
	}
	return out
}

func namesOf(cronName string, ts []time.Time) []string {
	var out []string
	for _, t := range ts {
		out = append(out, name(cronName, t))
	}
	return out
}

var _ = Describe("RayCronJob controller", func() {
	It("creates one RayJob per schedule time, named, labelled and owned as KubeRay does", func() {
		ns := newNamespace()
		tmpl := builders.RayJob(ns, "x").Mode(rayv1.HTTPMode).Entrypoint("echo tick").Obj().Spec
		cj := create(builders.RayCronJob(ns, "hourly", "0 * * * *").TimeZone("Etc/UTC").
			With(func(c *rayv1.RayCronJob) { c.Spec.JobTemplate = tmpl }).Obj())
		first := ticks("0 * * * *", time.UTC, cj.CreationTimestamp.Time, cj.CreationTimestamp.Add(time.Hour))[0]

		// Just before the first schedule time nothing is created, and the schedule is valid.
		advance(ns, "hourly", first.Add(-time.Second))
		Expect(jobNames(ns)()).To(BeEmpty())
		got := getCronJob(ns, "hourly")
		Expect(got).To(HaveCondition(rayv1.RayCronJobSpecValid, "True", rayv1.ValidRayCronJobSpec))
		Expect(got.Status.LastScheduleTime).To(BeNil())

		advance(ns, "hourly", first.Add(time.Second))
		want := name("hourly", first)
		Eventually(jobNames(ns)).Should(ConsistOf(want))
		rj := getJob(ns, want)
		Expect(rj.Labels).To(HaveKeyWithValue(rayv1.RayCronJobNameLabelKey, "hourly"))
		Expect(rj.Annotations).To(HaveKeyWithValue(rayv1.RayCronJobScheduledTimestampAnnotation, first.UTC().Format(time.RFC3339)))
		Expect(rj).To(BeControlledBy(got))
		Expect(rj.Spec.Entrypoint).To(Equal("echo tick"))
		Expect(rj.Spec.SubmissionMode).To(Equal(rayv1.HTTPMode))
		Eventually(cronJobOf(ns, "hourly")).Should(And(
			HaveField("Status.LastScheduleTime.Time", BeTemporally("==", first)),
			HaveField("Status.Active", ConsistOf(HaveField("Name", want))),
		))
		Eventually(eventsOf(ns, "hourly")).Should(HaveEvent("Normal", CreatedRayJob, want))

		// The next hour brings the next RayJob; the first, still active, stays (policy Allow).
		second := first.Add(time.Hour)
		advance(ns, "hourly", second)
		Eventually(jobNames(ns)).Should(ConsistOf(want, name("hourly", second)))
		Eventually(cronJobOf(ns, "hourly")).Should(HaveField("Status.Active", HaveLen(2)))

		// A finished RayJob leaves the active list.
		finishJob(ns, want, rayv1.JobDeploymentStatusComplete)
		Eventually(cronJobOf(ns, "hourly")).Should(HaveField("Status.Active", ConsistOf(HaveField("Name", name("hourly", second)))))
	})

	It("replays missed schedule times one by one, as KubeRay does", func() {
		ns := newNamespace()
		cj := create(builders.RayCronJob(ns, "missed", "*/10 * * * *").TimeZone("UTC").Obj())
		now := cj.CreationTimestamp.Add(45 * time.Minute)
		want := ticks("*/10 * * * *", time.UTC, cj.CreationTimestamp.Time, now)
		Expect(len(want)).To(BeNumerically(">=", 4))

		advance(ns, "missed", now)
		Eventually(jobNames(ns)).Should(ConsistOf(namesOf("missed", want)))
		Eventually(cronJobOf(ns, "missed")).Should(HaveField("Status.LastScheduleTime.Time", BeTemporally("==", want[len(want)-1])))
	})

	It("creates nothing while suspended and catches up when resumed", func() {
		ns := newNamespace()
		cj := create(builders.RayCronJob(ns, "paused", "*/30 * * * *").TimeZone("UTC").Suspend(true).Obj())
		Eventually(eventsOf(ns, "paused")).Should(HaveEvent("Normal", SuspendedRayCronJob, "spec.suspend"))

		now := cj.CreationTimestamp.Add(70 * time.Minute)
		advance(ns, "paused", now)
		Expect(jobNames(ns)()).To(BeEmpty(), "RayJobs created while suspended")
		Expect(getCronJob(ns, "paused").Status.LastScheduleTime).To(BeNil())

		Eventually(func() error {
			c := getCronJob(ns, "paused")
			c.Spec.Suspend = false
			return k8s.Update(context.Background(), c)
		}).Should(Succeed())
		want := ticks("*/30 * * * *", time.UTC, cj.CreationTimestamp.Time, now)
		Eventually(jobNames(ns)).Should(ConsistOf(namesOf("paused", want)))
	})

	It("reads the schedule in spec.timeZone, and in the operator's zone without one", func() {
		ns := newNamespace()
		// 21:45 in Taipei (UTC+8, no daylight saving) is 13:45 UTC.
		cj := create(builders.RayCronJob(ns, "taipei", "45 21 * * *").TimeZone("Asia/Taipei").Obj())
		create(builders.RayCronJob(ns, "local", "45 21 * * *").Obj())
		now := cj.CreationTimestamp.Add(24 * time.Hour)
		advance(ns, "taipei", now)
		advance(ns, "local", now)

		Eventually(cronJobOf(ns, "taipei")).Should(HaveField("Status.LastScheduleTime", Not(BeNil())))
		at := getCronJob(ns, "taipei").Status.LastScheduleTime.UTC()
		Expect([]int{at.Hour(), at.Minute()}).To(Equal([]int{13, 45}), "Taipei schedule time in UTC")
		Eventually(jobNames(ns)).Should(ContainElement(name("taipei", at)))

		// The operator's zone here is UTC-3: 21:45 there is 00:45 UTC.
		Eventually(cronJobOf(ns, "local")).Should(HaveField("Status.LastScheduleTime", Not(BeNil())))
		at = getCronJob(ns, "local").Status.LastScheduleTime.UTC()
		Expect([]int{at.Hour(), at.Minute()}).To(Equal([]int{0, 45}), "operator-zone schedule time in UTC")
	})

	It("skips a run while one is active under the Forbid policy", func() {
		ns := newNamespace()
		cj := create(builders.RayCronJob(ns, "forbid", "*/10 * * * *").TimeZone("UTC").
			Annotate(rayv1.RayCronJobConcurrencyPolicyAnnotation, "Forbid").Obj())
		ts := ticks("*/10 * * * *", time.UTC, cj.CreationTimestamp.Time, cj.CreationTimestamp.Add(35*time.Minute))

		advance(ns, "forbid", ts[0])
		Eventually(jobNames(ns)).Should(ConsistOf(name("forbid", ts[0])))

		advance(ns, "forbid", ts[1])
		Eventually(cronJobOf(ns, "forbid")).Should(HaveField("Status.LastScheduleTime.Time", BeTemporally("==", ts[1])))
		Expect(jobNames(ns)()).To(ConsistOf(name("forbid", ts[0])), "a run started while one was active")
		Eventually(eventsOf(ns, "forbid")).Should(HaveEvent("Normal", SkippedRayCronJobRun, name("forbid", ts[0])))

		finishJob(ns, name("forbid", ts[0]), rayv1.JobDeploymentStatusFailed)
		advance(ns, "forbid", ts[2])
		Eventually(jobNames(ns)).Should(ConsistOf(name("forbid", ts[0]), name("forbid", ts[2])))
	})

	It("deletes the active RayJobs and starts the new one under the Replace policy", func() {
		ns := newNamespace()
		cj := create(builders.RayCronJob(ns, "replace", "*/10 * * * *").TimeZone("UTC").
			Annotate(rayv1.RayCronJobConcurrencyPolicyAnnotation, "Replace").Obj())
		ts := ticks("*/10 * * * *", time.UTC, cj.CreationTimestamp.Time, cj.CreationTimestamp.Add(25*time.Minute))

		advance(ns, "replace", ts[0])
		Eventually(jobNames(ns)).Should(ConsistOf(name("replace", ts[0])))
		advance(ns, "replace", ts[1])
		Eventually(jobNames(ns)).Should(ConsistOf(name("replace", ts[1])))
		Eventually(eventsOf(ns, "replace")).Should(HaveEvent("Normal", DeletedRayJob, name("replace", ts[0])))
		Eventually(cronJobOf(ns, "replace")).Should(HaveField("Status.Active", ConsistOf(HaveField("Name", name("replace", ts[1])))))
	})

	It("keeps only as many finished RayJobs as the history limits say", func() {
		ns := newNamespace()
		cj := create(builders.RayCronJob(ns, "history", "*/10 * * * *").TimeZone("UTC").
			Annotate(rayv1.RayCronJobSuccessfulHistoryLimitAnnotation, "1").
			Annotate(rayv1.RayCronJobFailedHistoryLimitAnnotation, "0").Obj())
		ts := ticks("*/10 * * * *", time.UTC, cj.CreationTimestamp.Time, cj.CreationTimestamp.Add(35*time.Minute))
		all := namesOf("history", ts[:3])

		advance(ns, "history", ts[2])
		Eventually(jobNames(ns)).Should(ConsistOf(all))
		finishJob(ns, all[0], rayv1.JobDeploymentStatusComplete)
		finishJob(ns, all[1], rayv1.JobDeploymentStatusComplete)
		finishJob(ns, all[2], rayv1.JobDeploymentStatusFailed)
		// The newest successful RayJob stays; the older one and the failed one go.
		Eventually(jobNames(ns)).Should(ConsistOf(all[1]))
		Eventually(eventsOf(ns, "history")).Should(HaveEvent("Normal", DeletedRayJob, all[0]))
	})

	It("reports a schedule, time zone or annotation it cannot use, naming it, and schedules nothing", func() {
		ns := newNamespace()
		cj := create(builders.RayCronJob(ns, "bad", "every day at noon").Obj())
		Eventually(cronJobOf(ns, "bad")).Should(HaveCondition(rayv1.RayCronJobSpecValid, "False", rayv1.InvalidRayCronJobSpec))
		Expect(getCronJob(ns, "bad").Status.Conditions[0].Message).To(ContainSubstring("spec.schedule"))
		Eventually(eventsOf(ns, "bad")).Should(HaveEvent("Warning", rayv1.InvalidRayCronJobSpec, "spec.schedule"))

		update := func(mut func(*rayv1.RayCronJob)) {
			GinkgoHelper()
			Eventually(func() error {
				c := getCronJob(ns, "bad")
				mut(c)
				return k8s.Update(context.Background(), c)
			}).Should(Succeed())
		}
		update(func(c *rayv1.RayCronJob) {
			c.Spec.Schedule = "*/10 * * * *"
			c.Spec.TimeZone = ptr.To("Mars/Olympus_Mons")
			c.Annotations = map[string]string{
				rayv1.RayCronJobConcurrencyPolicyAnnotation:      "Sometimes",
				rayv1.RayCronJobSuccessfulHistoryLimitAnnotation: "-1",
			}
		})
		Eventually(eventsOf(ns, "bad")).Should(HaveEvent("Warning", rayv1.InvalidRayCronJobSpec, "spec.timeZone"))
		msg := getCronJob(ns, "bad").Status.Conditions[0].Message
		Expect(msg).To(And(ContainSubstring("spec.timeZone"), ContainSubstring(rayv1.RayCronJobConcurrencyPolicyAnnotation),
			ContainSubstring(rayv1.RayCronJobSuccessfulHistoryLimitAnnotation)))
		advance(ns, "bad", cj.CreationTimestamp.Add(time.Hour))
		Expect(jobNames(ns)()).To(BeEmpty(), "RayJobs created from an invalid RayCronJob")

		update(func(c *rayv1.RayCronJob) { c.Spec.TimeZone = ptr.To("UTC"); c.Annotations = nil })
		Eventually(cronJobOf(ns, "bad")).Should(HaveCondition(rayv1.RayCronJobSpecValid, "True", rayv1.ValidRayCronJobSpec))
		Eventually(jobNames(ns)).ShouldNot(BeEmpty())
	})

	It("refuses at apply time what KubeRay's schema refuses, and names too long for the RayJobs", func() {
		ns := newNamespace()
		err := k8s.Create(context.Background(), builders.RayCronJob(ns, "emptyzone", "@hourly").TimeZone("").Obj())
		Expect(err).To(MatchError(ContainSubstring("spec.timeZone")))
		err = k8s.Create(context.Background(), builders.RayCronJob(ns, "a-name-that-is-far-too-long-for-its-rayjobs", "@hourly").Obj())
		Expect(err).To(MatchError(ContainSubstring("38 characters")))
	})
})
