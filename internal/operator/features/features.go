// Package features declares the operator's feature gates. The names and defaults follow KubeRay's
// so that a `--feature-gates=` value written for KubeRay means the same here.
package features

import (
	"fmt"

	"k8s.io/component-base/featuregate"
)

const (
	// RayClusterStatusConditions maintains metav1.Conditions on RayCluster status.
	// Owner: rayk8s. Beta, on by default, as in KubeRay v1.2+.
	RayClusterStatusConditions featuregate.Feature = "RayClusterStatusConditions"

	// RayJobDeletionPolicy enables spec.deletionStrategy on RayJob.
	// Owner: rayk8s. Beta, on by default.
	RayJobDeletionPolicy featuregate.Feature = "RayJobDeletionPolicy"

	// RayMultiHostIndexing labels multi-host worker pods with replica and host indexes.
	// Owner: rayk8s. Beta, on by default.
	RayMultiHostIndexing featuregate.Feature = "RayMultiHostIndexing"

	// RayServiceIncrementalUpgrade enables upgradeStrategy.type NewClusterWithIncrementalUpgrade.
	// Owner: rayk8s. Beta, on by default.
	RayServiceIncrementalUpgrade featuregate.Feature = "RayServiceIncrementalUpgrade"

	// RayCronJob runs the RayCronJob controller. Alpha, off by default, as in KubeRay.
	RayCronJob featuregate.Feature = "RayCronJob"

	// SidecarSubmitterRestart lets the SidecarMode submitter container restart. Alpha, off by default.
	SidecarSubmitterRestart featuregate.Feature = "SidecarSubmitterRestart"

	// RayClusterNetworkPolicy creates NetworkPolicies per RayCluster. Alpha, off by default.
	RayClusterNetworkPolicy featuregate.Feature = "RayClusterNetworkPolicy"

	// GCSFaultToleranceEmbeddedStorage allows the rocksdb GCS fault-tolerance backend. Alpha, off by default.
	GCSFaultToleranceEmbeddedStorage featuregate.Feature = "GCSFaultToleranceEmbeddedStorage"

	// RayClusterMTLS enables spec.tlsOptions: mutual TLS between Ray nodes with certificates from
	// cert-manager. Alpha, off by default.
	RayClusterMTLS featuregate.Feature = "RayClusterMTLS"

	// RayClusterHistoryServer allows spec.historyServerOptions. Alpha, off by default. The gate is
	// implemented but the collector sidecar is not: a cluster asking for it is reported invalid
	// (the rayk8s runtime produces nothing the collector could read).
	RayClusterHistoryServer featuregate.Feature = "RayClusterHistoryServer"

	// KubernetesWAS gang-schedules RayClusters labelled ray.io/gang-scheduling-enabled=true with
	// Kubernetes workload-aware scheduling (scheduling.k8s.io/v1alpha3 Workload and PodGroup).
	// Alpha, off by default.
	KubernetesWAS featuregate.Feature = "KubernetesWAS"
)

func defaults() map[featuregate.Feature]featuregate.FeatureSpec {
	return map[featuregate.Feature]featuregate.FeatureSpec{
		RayClusterStatusConditions: {Default: true, PreRelease: featuregate.Beta},

		RayJobDeletionPolicy: {Default: true, PreRelease: featuregate.Beta},

		RayMultiHostIndexing: {Default: true, PreRelease: featuregate.Beta},

		RayServiceIncrementalUpgrade: {Default: true, PreRelease: featuregate.Beta},

		RayCronJob: {Default: false, PreRelease: featuregate.Alpha},

		SidecarSubmitterRestart: {Default: false, PreRelease: featuregate.Alpha},

		RayClusterNetworkPolicy: {Default: false, PreRelease: featuregate.Alpha},

		GCSFaultToleranceEmbeddedStorage: {Default: false, PreRelease: featuregate.Alpha},

		RayClusterMTLS: {Default: false, PreRelease: featuregate.Alpha},

		RayClusterHistoryServer: {Default: false, PreRelease: featuregate.Alpha},

		KubernetesWAS: {Default: false, PreRelease: featuregate.Alpha},
	}
}

// New returns a feature gate with every rayk8s feature registered at its default. Each manager (and
// each test) owns its own gate, so there is no process-wide mutable state to reset between tests.
func New() featuregate.MutableFeatureGate {
	g := featuregate.NewFeatureGate()
	if err := g.Add(defaults()); err != nil {
		// Only a programming error (a duplicate name) can get here.
		panic(fmt.Sprintf("registering feature gates: %v", err))
	}
	return g
}

// Parse returns a gate set from a `Name=true,Name2=false` string, rejecting unknown names.
func Parse(spec string) (featuregate.MutableFeatureGate, error) {
	g := New()
	if spec == "" {
		return g, nil
	}
	if err := g.Set(spec); err != nil {
		return nil, fmt.Errorf("--feature-gates: %w", err)
	}
	return g, nil
}

// Enabled reports whether f is on in g, or f's default when g is nil (a component built without a
// gate, as in unit tests).
func Enabled(g featuregate.FeatureGate, f featuregate.Feature) bool {
	if g == nil {
		return defaults()[f].Default
	}
	return g.Enabled(f)
}
