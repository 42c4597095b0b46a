// Package rayjob is the RayJob controller: it creates (or selects) a RayCluster, hands the job's
// entrypoint to Ray in one of four submission modes, follows the job to its end and cleans up.
//
// The files follow the concerns of a reconcile:
//   - controller.go: the thin Reconcile (get, managedBy, deletion, finalizer, validate, gather,
//     decide, act, write status once, emit events) and the watches;
//   - gather.go: reads the facts a decision needs (cluster, head pod, submitter, Ray job);
//   - policy.go: KubeRay's RayJob state machine (docs/controllers.md) as pure functions of those facts;
//   - actions.go: carries out the side effects a decision asks for;
//   - status.go: turns the decision into status, transition events and metrics;
//   - validate.go, cluster.go, submitter.go, headpod.go, deletion.go, dashboard.go, watcher.go,
//     metrics.go: one concern each.
package rayjob
