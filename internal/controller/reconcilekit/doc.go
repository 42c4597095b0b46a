// Package reconcilekit is what the RayCluster, RayJob and RayService reconcilers share: server-side
// apply of typed objects, finalizer patches, the event queue emitted after the status write, the
// phase runner, the options and settings every reconciler takes, metrics registration and the
// index lookups of watch mappers. Each file holds one of these; none knows a Ray kind's semantics.
package reconcilekit
