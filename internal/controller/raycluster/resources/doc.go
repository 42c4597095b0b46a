// Package resources builds the Kubernetes children of a RayCluster: head and worker pods, the head,
// headless-worker and serve Services, the dashboard Ingress, the autoscaler RBAC objects and the
// Redis clean-up Job.
//
// Every builder is a pure function of the RayCluster and the operator Options: no client, no
// context, no logger, no clock and no randomness. The reconciler decides which objects to create
// or delete; this package only decides what they look like. The output follows KubeRay's object
// conventions (labels, annotations, names, ports, the "ray start" command, env vars, volumes,
// probes) so that tools written against KubeRay keep working.
package resources
