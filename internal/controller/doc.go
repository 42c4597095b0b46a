// Package controller holds one reconciler per ray.io kind in its own sub-package, and reconcilekit,
// what they share. The RBAC markers here are the permissions every controller shares; each kind's
// package adds its own.
//
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
package controller
