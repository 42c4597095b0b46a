// Package v1 holds the ray.io/v1 API: RayCluster, RayJob and RayService, schema-compatible with KubeRay.
// +kubebuilder:object:generate=true
// +groupName=ray.io
package v1
