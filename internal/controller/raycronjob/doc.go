// Package raycronjob is the RayCronJob controller: it creates a RayJob from spec.jobTemplate at
// each time of spec.schedule, read in spec.timeZone, as KubeRay's controller does (RayJob names,
// labels and annotations, one missed schedule replayed per reconcile, suspend), plus the rayk8s.io
// concurrency-policy and history-limit annotations. See docs/controllers.md.
//
// Reconcile is thin: gather the RayCronJob's RayJobs, decide (pure, from the schedule, the
// annotations, the RayJobs and the clock), act (create and delete RayJobs), write the status once,
// emit the events, and requeue at the next schedule time.
package raycronjob
