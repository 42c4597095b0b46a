// Package rayservice is the RayService controller: it runs Ray Serve applications on a RayCluster
// it creates through the RayCluster API, applies serveConfigV2 changes in place, and upgrades the
// cluster blue/green (a pending cluster is prepared, traffic switches once every application on it
// is RUNNING behind a healthy proxy, and the superseded cluster is deleted after a delay).
//
// The concerns are independent and each owns its part of the status (cert-manager style):
//   - cluster.go: cluster rollout. Owns activeServiceStatus.rayClusterName,
//     pendingServiceStatus.rayClusterName and the UpgradeInProgress condition; creates, updates in
//     place and garbage-collects RayClusters;
//   - serveconfig.go: Serve application health. Owns applicationStatuses and the string(rayv1.ServeConfigValid)
//     condition; submits serveConfigV2 to each cluster's dashboard when it changed;
//   - traffic.go: the traffic switch. Owns the head and serve Services, the ray.io/serve pod
//     label, numServeEndpoints and the Ready condition's input;
//   - suspend.go: KubeRay's two-phase suspend (Suspending, Suspended);
//   - policy.go: the pure decisions (which cluster is wanted, when to switch, when to delete);
//   - status.go: turns the facts recorded by the phases into status, once per reconcile;
//   - controller.go: the thin Reconcile that runs the phases and writes status once.
//
// Nothing the controller needs to resume is kept only in memory: the active and pending cluster
// names are in status, the spec hash is an annotation on each RayCluster, and the time a cluster
// was superseded is an annotation on it. The per-cluster cache of submitted Serve configs is an
// optimisation; losing it costs one idempotent PUT per cluster.
package rayservice
