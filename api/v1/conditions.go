package v1

// RayClusterConditionType is the type of a condition in RayCluster status.conditions.
type RayClusterConditionType string

// RayCluster condition types and the reasons each one uses.
const (
	// RayClusterProvisioned becomes True the first time every desired pod is running and ready,
	// and stays True until the cluster is suspended.
	RayClusterProvisioned RayClusterConditionType = "RayClusterProvisioned"
	// AllPodRunningAndReadyFirstTime is the reason of RayClusterProvisioned=True.
	AllPodRunningAndReadyFirstTime = "AllPodRunningAndReadyFirstTime"
	// RayClusterPodsProvisioning is the reason of RayClusterProvisioned=False.
	RayClusterPodsProvisioning = "RayClusterPodsProvisioning"

	// HeadPodReady mirrors the PodReady condition of the head pod.
	HeadPodReady RayClusterConditionType = "HeadPodReady"
	// HeadPodRunningAndReady is the reason of HeadPodReady=True.
	HeadPodRunningAndReady = "HeadPodRunningAndReady"
	// HeadPodNotFound is the reason of HeadPodReady=False when there is no head pod. Otherwise the
	// reason is taken from the pod (its PodReady reason or the first waiting/terminated container
	// reason).
	HeadPodNotFound = "HeadPodNotFound"
	// HeadPodReplaced is the reason of HeadPodReady=False from the moment the operator deleted a
	// failed head pod until its replacement is ready; the message says why it was deleted.
	HeadPodReplaced = "HeadPodReplaced"
	// HeadPodNotReady is the reason of HeadPodReady=False when the pod reports no reason itself.
	HeadPodNotReady = "HeadPodNotReady"

	// RayClusterSpecValid (a rayk8s addition) is False when the spec passed the API server's
	// validation but cannot be reconciled (a rule CEL cannot express); the message names the
	// field. No pod is touched while it is False.
	RayClusterSpecValid RayClusterConditionType = "RayClusterSpecValid"
	// ValidRayClusterSpec is the reason of RayClusterSpecValid=True.
	ValidRayClusterSpec = "ValidRayClusterSpec"
	// InvalidRayClusterSpec is the reason of RayClusterSpecValid=False and of its Warning event.
	InvalidRayClusterSpec = "InvalidRayClusterSpec"

	// RayClusterReplicaFailure is True when creating or deleting a pod failed in the last
	// reconcile; it is removed after a clean reconcile.
	RayClusterReplicaFailure RayClusterConditionType = "ReplicaFailure"
	// FailedCreateHeadPod is a reason of ReplicaFailure.
	FailedCreateHeadPod = "FailedCreateHeadPod"
	// FailedDeleteHeadPod is a reason of ReplicaFailure.
	FailedDeleteHeadPod = "FailedDeleteHeadPod"
	// FailedCreateWorkerPod is a reason of ReplicaFailure.
	FailedCreateWorkerPod = "FailedCreateWorkerPod"
	// FailedDeleteWorkerPod is a reason of ReplicaFailure.
	FailedDeleteWorkerPod = "FailedDeleteWorkerPod"
	// FailedDeleteAllPods is a reason of ReplicaFailure.
	FailedDeleteAllPods = "FailedDeleteAllPods"
	// AuthSecretNotFound (a rayk8s addition) is a reason of ReplicaFailure: authOptions.secretName
	// names a Secret that does not exist, so no pod can be created.
	AuthSecretNotFound = "AuthSecretNotFound"

	// RayClusterSuspending is True from spec.suspend=true until every pod is gone.
	RayClusterSuspending RayClusterConditionType = "RayClusterSuspending"
	// RayClusterSuspended is True once a suspension completed, until spec.suspend is false again.
	RayClusterSuspended RayClusterConditionType = "RayClusterSuspended"
	// RayClusterSuspendingReason is the reason of RayClusterSuspending (KubeRay reuses the type).
	RayClusterSuspendingReason = "RayClusterSuspending"
	// RayClusterSuspendedReason is the reason of RayClusterSuspended (KubeRay reuses the type).
	RayClusterSuspendedReason = "RayClusterSuspended"

	// InternalErrorReason marks a condition the operator could not compute (status Unknown).
	InternalErrorReason = "InternalError"
)

// RayServiceConditionType is the type of a condition in RayService status.conditions.
type RayServiceConditionType string

// RayService condition types.
const (
	// RayServiceReady is True while the serve Service has at least one ready endpoint.
	RayServiceReady RayServiceConditionType = "Ready"
	// UpgradeInProgress is True while both an active and a pending cluster exist.
	UpgradeInProgress RayServiceConditionType = "UpgradeInProgress"
	// RollbackInProgress is True while an incremental upgrade is being reverted.
	RollbackInProgress RayServiceConditionType = "RollbackInProgress"
	// RayServiceSuspending is True while the resources of a suspended RayService are deleted.
	RayServiceSuspending RayServiceConditionType = "Suspending"
	// RayServiceSuspended is True once a suspension completed.
	RayServiceSuspended RayServiceConditionType = "Suspended"
	// ServeConfigValid (a rayk8s addition) is False while the dashboard rejects the current
	// serveConfigV2 (HTTP 400); its message is the dashboard's. The rejected config is not sent
	// again until serveConfigV2 changes or the head restarts, and traffic stays where it was.
	ServeConfigValid RayServiceConditionType = "ServeConfigValid"
)

// Reasons of the ServeConfigValid condition.
const (
	// ServeConfigAccepted is the reason of ServeConfigValid=True.
	ServeConfigAccepted = "ServeConfigAccepted"
	// InvalidServeConfig is the reason of ServeConfigValid=False.
	InvalidServeConfig = "InvalidServeConfig"
)

// RayServiceConditionReason is the reason of a RayService condition.
type RayServiceConditionReason string

// RayService condition reasons.
const (
	// RayServiceInitializing: the service has not been ready yet (Ready, UpgradeInProgress).
	RayServiceInitializing RayServiceConditionReason = "Initializing"
	// InitializingTimeout: the service was not ready within ray.io/initializing-timeout (Ready).
	// It is terminal.
	InitializingTimeout RayServiceConditionReason = "InitializingTimeout"
	// NonZeroServeEndpoints: the serve Service has ready endpoints (Ready=True).
	NonZeroServeEndpoints RayServiceConditionReason = "NonZeroServeEndpoints"
	// ZeroServeEndpoints: the serve Service lost all endpoints after being ready (Ready=False).
	ZeroServeEndpoints RayServiceConditionReason = "ZeroServeEndpoints"
	// RayServiceValidationFailed: the spec failed the operator's validation (Ready=False).
	RayServiceValidationFailed RayServiceConditionReason = "ValidationFailed"
	// BothActivePendingClustersExist: an upgrade is running (UpgradeInProgress=True).
	BothActivePendingClustersExist RayServiceConditionReason = "BothActivePendingClustersExist"
	// NoPendingCluster: no upgrade is running (UpgradeInProgress=False).
	NoPendingCluster RayServiceConditionReason = "NoPendingCluster"
	// NoActiveCluster: there is no active cluster (UpgradeInProgress=Unknown).
	NoActiveCluster RayServiceConditionReason = "NoActiveCluster"
	// DesiredClusterSpecChanged: the spec changed during an incremental upgrade, which is rolled
	// back (RollbackInProgress=True).
	DesiredClusterSpecChanged RayServiceConditionReason = "DesiredClusterSpecChanged"
	// RayServiceSuspendRequested: spec.suspend became true (Suspending=True).
	RayServiceSuspendRequested RayServiceConditionReason = "SuspendRequested"
	// RayServiceSuspendInProgress: resources are being deleted (Ready=False, Suspending=True).
	RayServiceSuspendInProgress RayServiceConditionReason = "SuspendInProgress"
	// RayServiceSuspendComplete: everything was deleted (Ready=False, Suspending=False,
	// Suspended=True).
	RayServiceSuspendComplete RayServiceConditionReason = "SuspendComplete"
	// RayServiceResumed: spec.suspend became false again (Suspended=False).
	RayServiceResumed RayServiceConditionReason = "RayServiceResumed"
)
