package v1

// Labels the operator puts on the objects it creates, or reads from the objects users create.
// The keys and values are part of the KubeRay contract (Kueue, dashboards and user selectors rely
// on them), so they must not change.
const (
	// RayClusterLabelKey holds the RayCluster name on every Ray pod, on the cluster's Services,
	// RBAC objects, Secret and Ingress. It is also the key of a RayJob's clusterSelector.
	RayClusterLabelKey = "ray.io/cluster"
	// RayNodeTypeLabelKey holds the RayNodeType of a pod ("head", "worker", "redis-cleanup").
	RayNodeTypeLabelKey = "ray.io/node-type"
	// RayNodeGroupLabelKey holds the worker group name of a pod, or HeadGroupName for the head.
	RayNodeGroupLabelKey = "ray.io/group"
	// RayIDLabelKey holds "<cluster>-head" or "<cluster>-worker" (trimmed to 63 characters).
	RayIDLabelKey = "ray.io/identifier"
	// RayNodeLabelKey is "yes" on every Ray pod.
	RayNodeLabelKey = "ray.io/is-ray-node"
	// RayClusterServingServiceLabelKey is "true"/"false" on RayService pods (membership of the
	// serve Service) and "<name>-serve" on the serve Service itself.
	RayClusterServingServiceLabelKey = "ray.io/serve"
	// RayOriginatedFromCRNameLabelKey holds the name of the RayJob or RayService that created an
	// object.
	RayOriginatedFromCRNameLabelKey = "ray.io/originated-from-cr-name"
	// RayOriginatedFromCRDLabelKey holds the kind (RayJob or RayService) that created an object.
	RayOriginatedFromCRDLabelKey = "ray.io/originated-from-crd"
	// RayJobSubmissionModeLabelKey holds the submission mode on a RayCluster created by a RayJob.
	RayJobSubmissionModeLabelKey = "ray.io/job-submission-mode"
	// RayClusterHeadlessServiceLabelKey holds the RayCluster name on its headless worker Service.
	RayClusterHeadlessServiceLabelKey = "ray.io/headless-worker-svc"
	// RayWorkerReplicaIndexKey holds the replica index (0..replicas-1) of a worker pod.
	RayWorkerReplicaIndexKey = "ray.io/worker-group-replica-index"
	// RayWorkerReplicaNameKey holds the name shared by the pods of one multi-host replica.
	RayWorkerReplicaNameKey = "ray.io/worker-group-replica-name"
	// RayHostIndexKey holds the host index (0..numOfHosts-1) of a pod within its replica.
	RayHostIndexKey = "ray.io/replica-host-index"
	// RayCronJobNameLabelKey holds the RayCronJob name on the RayJobs it creates.
	RayCronJobNameLabelKey = "ray.io/cronjob-name"
	// RayPriorityClassNameLabelKey on a RayCluster or RayJob sets the batch-scheduler priority.
	RayPriorityClassNameLabelKey = "ray.io/priority-class-name"
	// RayGangSchedulingEnabledLabelKey on a RayCluster or RayJob turns on gang scheduling.
	RayGangSchedulingEnabledLabelKey = "ray.io/gang-scheduling-enabled"

	// KubernetesApplicationNameLabelKey is the well-known app name label.
	KubernetesApplicationNameLabelKey = "app.kubernetes.io/name"
	// KubernetesCreatedByLabelKey is the well-known created-by label.
	KubernetesCreatedByLabelKey = "app.kubernetes.io/created-by"

	// ApplicationName is the default value of KubernetesApplicationNameLabelKey.
	ApplicationName = "kuberay"
	// ComponentName is the value of KubernetesCreatedByLabelKey on objects the operator creates.
	// It keeps KubeRay's value so that tools selecting on it keep working.
	ComponentName = "kuberay-operator"
	// RayNodeLabelValue is the value of RayNodeLabelKey.
	RayNodeLabelValue = "yes"
	// HeadGroupName is the RayNodeGroupLabelKey value of head pods.
	HeadGroupName = "headgroup"
	// SubmitterGroupName is the group name used for the RayJob submitter in batch-scheduler
	// metadata.
	SubmitterGroupName = "submittergroup"
)

// RayNodeType is the role of a pod in a Ray cluster (value of RayNodeTypeLabelKey).
type RayNodeType string

const (
	// HeadNode is the head pod.
	HeadNode RayNodeType = "head"
	// WorkerNode is a worker pod.
	WorkerNode RayNodeType = "worker"
	// RedisCleanupNode is the pod of the Job that removes a deleted cluster's keys from Redis.
	RedisCleanupNode RayNodeType = "redis-cleanup"
)

// CRDType names the kind that created an object (value of RayOriginatedFromCRDLabelKey).
type CRDType string

const (
	// RayClusterCRD is the RayCluster kind.
	RayClusterCRD CRDType = "RayCluster"
	// RayJobCRD is the RayJob kind.
	RayJobCRD CRDType = "RayJob"
	// RayServiceCRD is the RayService kind.
	RayServiceCRD CRDType = "RayService"
)

// Annotations read or written by the operator.
const (
	// RayFTEnabledAnnotationKey ("true") on a RayCluster is the legacy way to enable GCS fault
	// tolerance; on head pods it records whether it is enabled.
	RayFTEnabledAnnotationKey = "ray.io/ft-enabled"
	// RayExternalStorageNSAnnotationKey sets (legacy) or records the Redis key namespace.
	RayExternalStorageNSAnnotationKey = "ray.io/external-storage-namespace"
	// GCSFaultToleranceDeletionTimeoutAnnotationKey on a RayCluster is how many seconds to wait for
	// the Redis clean-up before the finalizer is removed anyway (300 when unset).
	GCSFaultToleranceDeletionTimeoutAnnotationKey = "ray.io/gcs-ft-deletion-timeout"
	// RayOverwriteContainerCmdAnnotationKey ("true") on a RayCluster keeps the Ray container's
	// command as written; the generated "ray start" command is still exported in
	// KUBERAY_GEN_RAY_START_CMD.
	RayOverwriteContainerCmdAnnotationKey = "ray.io/overwrite-container-cmd"
	// EnableServeServiceAnnotationKey ("true") on a standalone RayCluster creates
	// "<cluster>-serve-svc".
	EnableServeServiceAnnotationKey = "ray.io/enable-serve-service"
	// DisableProvisionedHeadRestartAnnotationKey ("true") stops the operator from recreating a
	// missing head pod once the cluster was provisioned (set by RayJob SidecarMode).
	DisableProvisionedHeadRestartAnnotationKey = "ray.io/disable-provisioned-head-restart"
	// UpgradeStrategyRecreateHashKey on the head pod holds the spec hash compared by the Recreate
	// upgrade strategy.
	UpgradeStrategyRecreateHashKey = "ray.io/upgrade-strategy-recreate-hash"
	// KubeRayVersion records the operator version that created a pod or RayCluster.
	KubeRayVersion = "ray.io/kuberay-version"
	// HashWithoutReplicasAndWorkersToDeleteKey on a RayService's RayCluster holds the spec hash
	// that decides whether an upgrade needs a new cluster.
	HashWithoutReplicasAndWorkersToDeleteKey = "ray.io/hash-without-replicas-and-workers-to-delete"
	// NumWorkerGroupsKey on a RayService's RayCluster holds the number of worker groups at creation.
	NumWorkerGroupsKey = "ray.io/num-worker-groups"
	// RayServiceInitializingTimeoutAnnotation on a RayService is a Go duration or a number of
	// seconds after which a never-ready service is failed for good.
	RayServiceInitializingTimeoutAnnotation = "ray.io/initializing-timeout"
	// SupersededAtAnnotation (a rayk8s addition) records on a RayCluster when it stopped being
	// the active or pending cluster of its RayService (RFC 3339). The cluster is deleted
	// rayClusterDeletionDelaySeconds later; keeping the time on the object makes the deadline
	// survive an operator restart.
	SupersededAtAnnotation = "rayk8s.io/superseded-at"
	// RayCronJobScheduledTimestampAnnotation on a RayJob created by a RayCronJob holds the schedule
	// time (RFC 3339, UTC).
	RayCronJobScheduledTimestampAnnotation = "ray.io/cronjob-scheduled-timestamp"
	// IngressClassAnnotationKey on a RayCluster selects the class of the dashboard Ingress.
	IngressClassAnnotationKey = "kubernetes.io/ingress.class"
)

// Finalizers added by the operator.
const (
	// GCSFaultToleranceRedisCleanupFinalizer keeps a RayCluster with Redis fault tolerance until its
	// keys were removed from Redis.
	GCSFaultToleranceRedisCleanupFinalizer = "ray.io/gcs-ft-redis-cleanup-finalizer"
	// RayJobStopJobFinalizer lets the operator stop the Ray job before the RayJob goes away.
	RayJobStopJobFinalizer = "ray.io/rayjob-finalizer"
	// RayServiceFinalizer keeps a RayService until its RayClusters are deleted.
	RayServiceFinalizer = "ray.io/rayservice-finalizer"
)

// Values of spec.managedBy.
const (
	// KubeRayController is the managedBy value (or absence) meaning "reconciled by this operator".
	KubeRayController = "ray.io/kuberay-operator"
	// MultiKueueController is the managedBy value of objects dispatched by MultiKueue.
	MultiKueueController = "kueue.x-k8s.io/multikueue"
)

// Other well-known keys.
const (
	// RayJobClusterSelectorKey is the clusterSelector key naming an existing RayCluster.
	RayJobClusterSelectorKey = RayClusterLabelKey
	// DefaultServeAppName is the application name used when a Serve application has none.
	DefaultServeAppName = "default"
)

// ApplicationStatus values reported by Ray Serve for an application.
const (
	ApplicationStatusNotStarted   = "NOT_STARTED"
	ApplicationStatusDeploying    = "DEPLOYING"
	ApplicationStatusRunning      = "RUNNING"
	ApplicationStatusDeployFailed = "DEPLOY_FAILED"
	ApplicationStatusDeleting     = "DELETING"
	ApplicationStatusUnhealthy    = "UNHEALTHY"
)

// DeploymentStatus values reported by Ray Serve for a deployment.
const (
	DeploymentStatusUpdating     = "UPDATING"
	DeploymentStatusHealthy      = "HEALTHY"
	DeploymentStatusUnhealthy    = "UNHEALTHY"
	DeploymentStatusDeployFailed = "DEPLOY_FAILED"
	DeploymentStatusUpscaling    = "UPSCALING"
	DeploymentStatusDownscaling  = "DOWNSCALING"
)
