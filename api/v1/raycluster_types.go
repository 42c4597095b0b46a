package v1

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxRayClusterNameLength is the longest RayCluster name accepted. The operator derives
// "<name>-serve-svc" (and similar) from it, and a Service name must fit a 63-character DNS label.
const MaxRayClusterNameLength = 53

// MaxWorkerGroups bounds spec.workerGroupSpecs so that the API server can price the CEL rules that
// compare groups with each other. Real clusters use a handful of groups.
const MaxWorkerGroups = 128

// RayClusterSpec is the desired shape of a Ray cluster: one head group and any number of worker
// groups. RayJob (spec.rayClusterSpec) and RayService (spec.rayClusterConfig) embed it too.
//
// +kubebuilder:validation:XValidation:rule="!has(self.enableInTreeAutoscaling) || !self.enableInTreeAutoscaling || !has(self.workerGroupSpecs) || self.workerGroupSpecs.all(g, !has(g.suspend) || !g.suspend)",message="workerGroupSpecs[].suspend cannot be true when enableInTreeAutoscaling is true: the autoscaler owns the worker count",fieldPath=".workerGroupSpecs"
// +kubebuilder:validation:XValidation:rule="has(self.managedBy) == has(oldSelf.managedBy)",message="the managedBy field is immutable: it cannot be added or removed after creation",fieldPath=".managedBy"
type RayClusterSpec struct {
	// upgradeStrategy chooses what happens to running pods when the spec changes.
	// Unset behaves like None. Only meaningful for RayClusters created directly by a user.
	// +optional
	UpgradeStrategy *RayClusterUpgradeStrategy `json:"upgradeStrategy,omitempty"`

	// authOptions turns on Ray token authentication for the cluster.
	// +optional
	AuthOptions *AuthOptions `json:"authOptions,omitempty"`

	// suspend, when true, deletes every pod of the cluster and keeps it that way until it is set
	// back to false. Used by batch schedulers such as Kueue.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// managedBy names the controller that reconciles this object. rayk8s reconciles objects where
	// it is unset or "ray.io/kuberay-operator"; "kueue.x-k8s.io/multikueue" hands the object to
	// MultiKueue. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the managedBy field is immutable"
	// +kubebuilder:validation:XValidation:rule="self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",message="the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"
	// +optional
	ManagedBy *string `json:"managedBy,omitempty"`

	// autoscalerOptions customises the autoscaler sidecar injected into the head pod when
	// enableInTreeAutoscaling is true.
	// +optional
	AutoscalerOptions *AutoscalerOptions `json:"autoscalerOptions,omitempty"`

	// headServiceAnnotations are added to the head Service; they win over annotations given in
	// headGroupSpec.headService.
	// +optional
	HeadServiceAnnotations map[string]string `json:"headServiceAnnotations,omitempty"`

	// enableInTreeAutoscaling runs the Ray autoscaler next to the head and lets it change
	// workerGroupSpecs[].replicas and scaleStrategy.workersToDelete.
	// +optional
	EnableInTreeAutoscaling *bool `json:"enableInTreeAutoscaling,omitempty"`

	// gcsFaultToleranceOptions makes the head's control store survive head restarts by keeping it in
	// Redis or on a persistent volume.
	// +optional
	GcsFaultToleranceOptions *GcsFaultToleranceOptions `json:"gcsFaultToleranceOptions,omitempty"`

	// headGroupSpec describes the single head pod.
	// +required
	HeadGroupSpec HeadGroupSpec `json:"headGroupSpec"`

	// rayVersion is the Ray version of the images. Some generated settings (probes, auth, submit
	// flags) depend on it.
	// +optional
	RayVersion string `json:"rayVersion,omitempty"`

	// workerGroupSpecs lists the worker groups. groupName must be unique.
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.groupName == x.groupName))",message="groupName must be unique across workerGroupSpecs"
	// +optional
	WorkerGroupSpecs []WorkerGroupSpec `json:"workerGroupSpecs,omitempty"`

	// networkPolicy creates NetworkPolicies isolating the cluster's pods (alpha).
	// +optional
	NetworkPolicy *NetworkPolicyConfig `json:"networkPolicy,omitempty"`

	// tlsOptions enables mutual TLS between Ray nodes, with certificates from cert-manager (alpha).
	// +optional
	TLSOptions *TLSOptions `json:"tlsOptions,omitempty"`

	// historyServerOptions configures the log and event collector sidecar (alpha).
	// +optional
	HistoryServerOptions *HistoryServerOptions `json:"historyServerOptions,omitempty"`
}

// RayClusterUpgradeType says how a RayCluster rolls out spec changes.
// +kubebuilder:validation:Enum=Recreate;None;RollingUpdate
type RayClusterUpgradeType string

const (
	// RayClusterRecreate deletes and recreates every pod when the pod-relevant spec changes.
	RayClusterRecreate RayClusterUpgradeType = "Recreate"
	// RayClusterUpgradeNone leaves running pods alone; only new pods see the new spec.
	RayClusterUpgradeNone RayClusterUpgradeType = "None"
	// RayClusterRollingUpdate (a rayk8s addition) replaces worker pods whose template changed one
	// replica at a time, never going below a group's minReplicas of ready pods. The head is left
	// alone.
	RayClusterRollingUpdate RayClusterUpgradeType = "RollingUpdate"
)

// RayClusterUpgradeStrategy holds the rollout policy of a RayCluster.
type RayClusterUpgradeStrategy struct {
	// type is Recreate, None or RollingUpdate.
	// +optional
	Type *RayClusterUpgradeType `json:"type,omitempty"`
}

// AuthMode selects the authentication scheme of a Ray cluster.
// +kubebuilder:validation:Enum=disabled;token
type AuthMode string

const (
	// AuthModeDisabled leaves the cluster unauthenticated.
	AuthModeDisabled AuthMode = "disabled"
	// AuthModeToken requires a bearer token on every Ray API call.
	AuthModeToken AuthMode = "token"
)

// AuthOptions configures Ray token authentication.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.secretName) && has(self.enableK8sTokenAuth) && self.enableK8sTokenAuth)",message="secretName and enableK8sTokenAuth are mutually exclusive",fieldPath=".enableK8sTokenAuth"
type AuthOptions struct {
	// mode is "token" to require a token, "disabled" otherwise. Authentication is only enabled when
	// the mode is "token".
	// +optional
	Mode AuthMode `json:"mode,omitempty"`

	// secretName names an existing Secret whose key "auth_token" holds the token. When unset the
	// operator generates a Secret named after the cluster.
	// +optional
	SecretName *string `json:"secretName,omitempty"`

	// enableK8sTokenAuth makes Ray validate Kubernetes service-account tokens (TokenReview) instead
	// of a shared secret.
	// +optional
	EnableK8sTokenAuth *bool `json:"enableK8sTokenAuth,omitempty"`
}

// TLSOptions configures mutual TLS between the nodes of a cluster.
type TLSOptions struct {
	// enabled turns mTLS on.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// HistoryServerOptions configures the history-server integration.
type HistoryServerOptions struct {
	// collectorOptions configures the collector sidecar added to every Ray pod.
	// +optional
	CollectorOptions *CollectorOptions `json:"collectorOptions,omitempty"`
}

// CollectorOptions describes the log and event collector sidecar.
type CollectorOptions struct {
	// image of the collector container.
	// +optional
	Image string `json:"image,omitempty"`

	// imagePullPolicy of the collector container.
	// +optional
	ImagePullPolicy *corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// resources of the collector container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// env of the collector container; must select the storage backend (STORAGE_BACKEND).
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// NetworkPolicyMode chooses the directions a generated NetworkPolicy denies by default.
// +kubebuilder:validation:Enum=DenyAll;DenyAllIngress;DenyAllEgress
type NetworkPolicyMode string

const (
	// NetworkPolicyDenyAll denies ingress and egress except intra-cluster traffic.
	NetworkPolicyDenyAll NetworkPolicyMode = "DenyAll"
	// NetworkPolicyDenyAllIngress denies ingress only.
	NetworkPolicyDenyAllIngress NetworkPolicyMode = "DenyAllIngress"
	// NetworkPolicyDenyAllEgress denies egress only.
	NetworkPolicyDenyAllEgress NetworkPolicyMode = "DenyAllEgress"
)

// NetworkPolicyConfig asks the operator to isolate the cluster's pods with NetworkPolicies. User
// rules are appended to the base rules that allow traffic inside the cluster.
//
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'DenyAllEgress' || ((!has(self.head) || !has(self.head.ingressRules)) && (!has(self.worker) || !has(self.worker.ingressRules)) && (!has(self.workerGroups) || self.workerGroups.all(g, !has(g.ingressRules))))",message="ingressRules are only allowed when mode denies ingress (DenyAll or DenyAllIngress)"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'DenyAllIngress' || ((!has(self.head) || !has(self.head.egressRules)) && (!has(self.worker) || !has(self.worker.egressRules)) && (!has(self.workerGroups) || self.workerGroups.all(g, !has(g.egressRules))))",message="egressRules are only allowed when mode denies egress (DenyAll or DenyAllEgress)"
type NetworkPolicyConfig struct {
	// mode is DenyAll (default), DenyAllIngress or DenyAllEgress.
	// +kubebuilder:default=DenyAll
	// +optional
	Mode NetworkPolicyMode `json:"mode,omitempty"`

	// head adds rules to the head pod's policy.
	// +optional
	Head *RayNodeNetworkPolicy `json:"head,omitempty"`

	// worker adds rules to every worker group's policy unless workerGroups overrides the group.
	// +optional
	Worker *RayNodeNetworkPolicy `json:"worker,omitempty"`

	// workerGroups replaces the worker rules for the named groups.
	// +listType=map
	// +listMapKey=groupName
	// +kubebuilder:validation:MaxItems=128
	// +optional
	WorkerGroups []WorkerGroupNetworkPolicy `json:"workerGroups,omitempty"`
}

// RayNodeNetworkPolicy holds extra NetworkPolicy rules for a kind of Ray node.
type RayNodeNetworkPolicy struct {
	// ingressRules are appended to the generated ingress rules.
	// +optional
	IngressRules []networkingv1.NetworkPolicyIngressRule `json:"ingressRules,omitempty"`

	// egressRules are appended to the generated egress rules.
	// +optional
	EgressRules []networkingv1.NetworkPolicyEgressRule `json:"egressRules,omitempty"`
}

// WorkerGroupNetworkPolicy holds NetworkPolicy rules for one worker group.
type WorkerGroupNetworkPolicy struct {
	// groupName is the worker group the rules apply to.
	// +required
	GroupName string `json:"groupName"`

	// ingressRules are appended to the generated ingress rules.
	// +optional
	IngressRules []networkingv1.NetworkPolicyIngressRule `json:"ingressRules,omitempty"`

	// egressRules are appended to the generated egress rules.
	// +optional
	EgressRules []networkingv1.NetworkPolicyEgressRule `json:"egressRules,omitempty"`
}

// GcsFaultToleranceBackend is where the head keeps its control-store state.
// +kubebuilder:validation:Enum=redis;rocksdb
type GcsFaultToleranceBackend string

const (
	// GcsBackendRedis stores state in an external Redis.
	GcsBackendRedis GcsFaultToleranceBackend = "redis"
	// GcsBackendRocksDB stores state in an embedded RocksDB on a persistent volume.
	GcsBackendRocksDB GcsFaultToleranceBackend = "rocksdb"
)

// GcsFaultToleranceOptions configures head fault tolerance.
//
// +kubebuilder:validation:XValidation:rule="!has(self.backend) || self.backend != 'rocksdb' || (!has(self.redisAddress) && !has(self.redisPassword) && !has(self.redisUsername))",message="redisAddress, redisPassword and redisUsername cannot be used with the rocksdb backend"
// +kubebuilder:validation:XValidation:rule="!has(self.storage) || (has(self.backend) && self.backend == 'rocksdb')",message="storage requires backend rocksdb",fieldPath=".storage"
type GcsFaultToleranceOptions struct {
	// backend is redis (the default when unset) or rocksdb. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="gcsFaultToleranceOptions.backend is immutable"
	// +optional
	Backend *GcsFaultToleranceBackend `json:"backend,omitempty"`

	// redisUsername is the Redis user, given literally or from a Secret/ConfigMap.
	// +optional
	RedisUsername *RedisCredential `json:"redisUsername,omitempty"`

	// redisPassword is the Redis password, given literally or from a Secret/ConfigMap.
	// +optional
	RedisPassword *RedisCredential `json:"redisPassword,omitempty"`

	// externalStorageNamespace prefixes the cluster's keys in Redis. Defaults to the RayCluster UID.
	// +optional
	ExternalStorageNamespace string `json:"externalStorageNamespace,omitempty"`

	// redisAddress is "host:port" (or a redis:// / rediss:// URI) of the Redis server.
	// +optional
	RedisAddress string `json:"redisAddress,omitempty"`

	// storage describes the persistent volume of the rocksdb backend.
	// +optional
	Storage *GcsStorage `json:"storage,omitempty"`
}

// RedisCredential is a string given either literally or through an EnvVarSource.
type RedisCredential struct {
	// valueFrom reads the value from a Secret, ConfigMap or field.
	// +optional
	ValueFrom *corev1.EnvVarSource `json:"valueFrom,omitempty"`

	// value is the literal value.
	// +optional
	Value string `json:"value,omitempty"`
}

// GcsStorageDeletionPolicy says what happens to the rocksdb volume when the cluster is deleted.
// +kubebuilder:validation:Enum=DeleteWithCluster;Retain
type GcsStorageDeletionPolicy string

const (
	// GcsStorageDeleteWithCluster garbage-collects the claim together with the RayCluster.
	GcsStorageDeleteWithCluster GcsStorageDeletionPolicy = "DeleteWithCluster"
	// GcsStorageRetain keeps the claim after the RayCluster is gone.
	GcsStorageRetain GcsStorageDeletionPolicy = "Retain"
)

// GcsStorage is the volume of the rocksdb backend: either an existing claim (claimName) or one the
// operator creates (size, storageClassName, accessModes).
//
// +kubebuilder:validation:XValidation:rule="!has(self.claimName) || (!has(self.size) && !has(self.storageClassName) && !has(self.accessModes))",message="claimName cannot be combined with size, storageClassName or accessModes",fieldPath=".claimName"
type GcsStorage struct {
	// claimName names an existing PersistentVolumeClaim to use.
	// +optional
	ClaimName string `json:"claimName,omitempty"`

	// size of the claim the operator creates (1Gi when unset).
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the claim the operator creates.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// accessModes of the claim the operator creates ([ReadWriteOnce] when unset).
	// +optional
	AccessModes []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`

	// subPath inside the volume where the data lives.
	// +optional
	SubPath string `json:"subPath,omitempty"`

	// deletionPolicy is DeleteWithCluster (when unset) or Retain.
	// +optional
	DeletionPolicy *GcsStorageDeletionPolicy `json:"deletionPolicy,omitempty"`
}

// HeadGroupSpec describes the head pod.
//
// +kubebuilder:validation:XValidation:rule="has(self.template.spec) && size(self.template.spec.containers) > 0",message="template.spec.containers must list the Ray container first",fieldPath=".template"
// +kubebuilder:validation:XValidation:rule="!has(self.rayStartParams) || !('labels' in self.rayStartParams)",message="rayStartParams cannot contain 'labels'; use the labels field",fieldPath=".rayStartParams"
// +kubebuilder:validation:XValidation:rule="!has(self.resources) || size(self.resources) == 0 || !has(self.rayStartParams) || !['num-cpus', 'num-gpus', 'memory', 'resources'].exists(k, k in self.rayStartParams)",message="resources cannot be combined with rayStartParams num-cpus, num-gpus, memory or resources",fieldPath=".resources"
type HeadGroupSpec struct {
	// template is the head pod. Its first container is the Ray container.
	// +required
	Template corev1.PodTemplateSpec `json:"template"`

	// headService, when set, is the starting point of the head Service (name, labels,
	// annotations, type, extra ports). The selector is always set by the operator.
	// +optional
	HeadService *corev1.Service `json:"headService,omitempty"`

	// enableIngress creates an Ingress (or an OpenShift Route) to the dashboard.
	// +optional
	EnableIngress *bool `json:"enableIngress,omitempty"`

	// ingressOptions customises the dashboard Ingress.
	// +optional
	IngressOptions *IngressOptions `json:"ingressOptions,omitempty"`

	// resources are the Ray logical resources the head advertises (cpu, memory, gpu or custom).
	// They take precedence over what would be derived from the container resources.
	// +optional
	Resources map[string]string `json:"resources,omitempty"`

	// labels are Ray node labels of the head; they are also added to the pod.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// rayStartParams are the "ray start" flags (without the leading dashes); values are strings.
	// +optional
	RayStartParams map[string]string `json:"rayStartParams,omitempty"`

	// serviceType is the type of the head Service (and the default type of a serve Service).
	// +optional
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`
}

// IngressOptions customises the dashboard Ingress.
type IngressOptions struct {
	// host of the Ingress rule.
	// +optional
	Host *string `json:"host,omitempty"`

	// path of the Ingress rule ("/" when unset).
	// +optional
	Path *string `json:"path,omitempty"`

	// pathType of the Ingress rule (Prefix when unset).
	// +kubebuilder:validation:Enum=Exact;Prefix;ImplementationSpecific
	// +optional
	PathType *networkingv1.PathType `json:"pathType,omitempty"`

	// tls of the Ingress.
	// +optional
	TLS []networkingv1.IngressTLS `json:"tls,omitempty"`
}

// WorkerGroupSpec describes a group of identical worker pods.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must be less than or equal to maxReplicas",fieldPath=".minReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || !has(self.maxReplicas) || self.replicas <= self.maxReplicas",message="replicas must be less than or equal to maxReplicas",fieldPath=".replicas"
// +kubebuilder:validation:XValidation:rule="has(self.template.spec) && size(self.template.spec.containers) > 0",message="template.spec.containers must list the Ray container first",fieldPath=".template"
// +kubebuilder:validation:XValidation:rule="!has(self.rayStartParams) || !('labels' in self.rayStartParams)",message="rayStartParams cannot contain 'labels'; use the labels field",fieldPath=".rayStartParams"
// +kubebuilder:validation:XValidation:rule="!has(self.resources) || size(self.resources) == 0 || !has(self.rayStartParams) || !['num-cpus', 'num-gpus', 'memory', 'resources'].exists(k, k in self.rayStartParams)",message="resources cannot be combined with rayStartParams num-cpus, num-gpus, memory or resources",fieldPath=".resources"
type WorkerGroupSpec struct {
	// suspend deletes all pods of this group while true. It is set by the RayJob DeleteWorkers
	// deletion policy rather than by users.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// groupName identifies the group; it becomes the ray.io/group pod label, so it must be a valid
	// label value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	// +required
	GroupName string `json:"groupName"`

	// replicas is the desired number of replicas. The autoscaler writes it when
	// enableInTreeAutoscaling is true. The effective count is clamped to [minReplicas, maxReplicas].
	// +kubebuilder:default:=0
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// minReplicas is the lower bound of replicas.
	// +kubebuilder:default:=0
	// +kubebuilder:validation:Minimum=0
	// +required
	MinReplicas *int32 `json:"minReplicas"`

	// maxReplicas is the upper bound of replicas.
	// +kubebuilder:default:=2147483647
	// +kubebuilder:validation:Minimum=0
	// +required
	MaxReplicas *int32 `json:"maxReplicas"`

	// idleTimeoutSeconds is how long an idle worker of this group lives before the autoscaler
	// (v2) removes it; overrides autoscalerOptions.idleTimeoutSeconds.
	// +optional
	IdleTimeoutSeconds *int32 `json:"idleTimeoutSeconds,omitempty"`

	// priority orders worker groups for the autoscaler (v2); higher is preferred.
	// +kubebuilder:default:=0
	// +optional
	Priority *int32 `json:"priority,omitempty"`

	// resources are the Ray logical resources each worker advertises.
	// +optional
	Resources map[string]string `json:"resources,omitempty"`

	// labels are Ray node labels of the workers; they are also added to the pods.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// rayStartParams are the "ray start" flags (without the leading dashes); values are strings.
	// +optional
	RayStartParams map[string]string `json:"rayStartParams,omitempty"`

	// template is the worker pod. Its first container is the Ray container.
	// +required
	Template corev1.PodTemplateSpec `json:"template"`

	// scaleStrategy lists specific workers to remove.
	// +optional
	ScaleStrategy ScaleStrategy `json:"scaleStrategy,omitempty"`

	// numOfHosts is the number of pods per replica (for multi-host accelerators such as TPU
	// slices). The group runs replicas x numOfHosts pods.
	// +kubebuilder:default:=1
	// +kubebuilder:validation:Minimum=1
	// +optional
	NumOfHosts int32 `json:"numOfHosts,omitempty"`
}

// ScaleStrategy names pods the autoscaler wants removed.
type ScaleStrategy struct {
	// workersToDelete are pod names to delete. The autoscaler clears the list itself.
	// +optional
	WorkersToDelete []string `json:"workersToDelete,omitempty"`
}

// UpscalingMode is how fast the autoscaler adds workers.
// +kubebuilder:validation:Enum=Default;Aggressive;Conservative
type UpscalingMode string

const (
	// UpscalingDefault lets the autoscaler pick.
	UpscalingDefault UpscalingMode = "Default"
	// UpscalingAggressive launches all needed workers at once.
	UpscalingAggressive UpscalingMode = "Aggressive"
	// UpscalingConservative bounds the pending workers.
	UpscalingConservative UpscalingMode = "Conservative"
)

// AutoscalerVersion selects the Ray autoscaler implementation.
// +kubebuilder:validation:Enum=v1;v2
type AutoscalerVersion string

const (
	// AutoscalerVersionV1 is the original autoscaler.
	AutoscalerVersionV1 AutoscalerVersion = "v1"
	// AutoscalerVersionV2 is the newer autoscaler; it requires restartPolicy Never on Ray pods.
	AutoscalerVersionV2 AutoscalerVersion = "v2"
)

// AutoscalerOptions overrides parts of the autoscaler sidecar. Resources, image, pull policy,
// security context, command and args replace the defaults; env, envFrom and volumeMounts are added.
type AutoscalerOptions struct {
	// resources of the autoscaler container (500m CPU and 512Mi when unset).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// image of the autoscaler container (the head's Ray image when unset).
	// +optional
	Image *string `json:"image,omitempty"`

	// imagePullPolicy of the autoscaler container (IfNotPresent when unset).
	// +optional
	ImagePullPolicy *corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// securityContext of the autoscaler container.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`

	// idleTimeoutSeconds is how long a worker must be idle before it is removed.
	// +optional
	IdleTimeoutSeconds *int32 `json:"idleTimeoutSeconds,omitempty"`

	// upscalingMode is Default, Aggressive or Conservative.
	// +optional
	UpscalingMode *UpscalingMode `json:"upscalingMode,omitempty"`

	// version is v1 or v2. When unset the Ray version decides.
	// +optional
	Version *AutoscalerVersion `json:"version,omitempty"`

	// env is added to the autoscaler container.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// envFrom is added to the autoscaler container.
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`

	// volumeMounts are added to the autoscaler container.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// command replaces the autoscaler container's command.
	// +optional
	Command []string `json:"command,omitempty"`

	// args replaces the autoscaler container's arguments.
	// +optional
	Args []string `json:"args,omitempty"`
}

// ClusterState is the coarse, deprecated state of a RayCluster; prefer status.conditions.
type ClusterState string

const (
	// ClusterStateReady means every pod has been running and ready at least once.
	ClusterStateReady ClusterState = "ready"
	// ClusterStateFailed is declared for compatibility; rayk8s never sets it.
	ClusterStateFailed ClusterState = "failed"
	// ClusterStateSuspended means spec.suspend is true and all pods are gone.
	ClusterStateSuspended ClusterState = "suspended"
)

// RayClusterStatus is the observed state of a RayCluster.
type RayClusterStatus struct {
	// state is the deprecated coarse state (ready, suspended).
	// +optional
	State ClusterState `json:"state,omitempty"`

	// desiredCPU is the CPU requested by all desired pods.
	// +optional
	DesiredCPU resource.Quantity `json:"desiredCPU,omitempty"`

	// desiredMemory is the memory requested by all desired pods.
	// +optional
	DesiredMemory resource.Quantity `json:"desiredMemory,omitempty"`

	// desiredGPU is the number of GPUs requested by all desired pods.
	// +optional
	DesiredGPU resource.Quantity `json:"desiredGPU,omitempty"`

	// desiredTPU is the number of TPUs requested by all desired pods.
	// +optional
	DesiredTPU resource.Quantity `json:"desiredTPU,omitempty"`

	// lastUpdateTime is when the status was last written.
	// +nullable
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`

	// stateTransitionTimes records when each state was entered.
	// +optional
	StateTransitionTimes map[ClusterState]*metav1.Time `json:"stateTransitionTimes,omitempty"`

	// endpoints maps head Service port names to port numbers.
	// +optional
	Endpoints map[string]string `json:"endpoints,omitempty"`

	// head describes the head pod and Service.
	// +optional
	Head HeadInfo `json:"head,omitempty"`

	// reason explains the state when it is not ready.
	// +optional
	Reason string `json:"reason,omitempty"`

	// conditions are the RayCluster conditions (see the RayClusterConditionType constants).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// readyWorkerReplicas counts worker pods that are running and ready.
	// +optional
	ReadyWorkerReplicas int32 `json:"readyWorkerReplicas,omitempty"`

	// availableWorkerReplicas counts worker pods that are running.
	// +optional
	AvailableWorkerReplicas int32 `json:"availableWorkerReplicas,omitempty"`

	// desiredWorkerReplicas is the number of worker pods wanted across all groups.
	// +optional
	DesiredWorkerReplicas int32 `json:"desiredWorkerReplicas,omitempty"`

	// minWorkerReplicas is the sum of the groups' lower bounds, in pods.
	// +optional
	MinWorkerReplicas int32 `json:"minWorkerReplicas,omitempty"`

	// maxWorkerReplicas is the sum of the groups' upper bounds, in pods.
	// +optional
	MaxWorkerReplicas int32 `json:"maxWorkerReplicas,omitempty"`

	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// HeadInfo locates the head pod and Service.
type HeadInfo struct {
	// podIP of the head pod.
	// +optional
	PodIP string `json:"podIP,omitempty"`

	// podName of the head pod.
	// +optional
	PodName string `json:"podName,omitempty"`

	// serviceIP is the head Service's cluster IP, or the head pod IP when the Service is headless.
	// +optional
	ServiceIP string `json:"serviceIP,omitempty"`

	// serviceName of the head Service.
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
}

// RayCluster is a Ray cluster: a head pod plus groups of worker pods.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="desired workers",type=integer,JSONPath=".status.desiredWorkerReplicas"
// +kubebuilder:printcolumn:name="ready workers",type=integer,JSONPath=".status.readyWorkerReplicas"
// +kubebuilder:printcolumn:name="available workers",type=integer,JSONPath=".status.availableWorkerReplicas"
// +kubebuilder:printcolumn:name="cpus",type=string,JSONPath=".status.desiredCPU"
// +kubebuilder:printcolumn:name="memory",type=string,JSONPath=".status.desiredMemory"
// +kubebuilder:printcolumn:name="gpus",type=string,JSONPath=".status.desiredGPU"
// +kubebuilder:printcolumn:name="tpus",type=string,JSONPath=".status.desiredTPU",priority=1
// +kubebuilder:printcolumn:name="status",type=string,JSONPath=".status.state"
// +kubebuilder:printcolumn:name="provisioned",type=string,JSONPath=".status.conditions[?(@.type==\"RayClusterProvisioned\")].status",priority=1
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="head pod IP",type=string,JSONPath=".status.head.podIP",priority=1
// +kubebuilder:printcolumn:name="head service IP",type=string,JSONPath=".status.head.serviceIP",priority=1
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 53",message="metadata.name must be no more than 53 characters: the operator appends suffixes such as -serve-svc to it"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): it names the cluster's Services"
type RayCluster struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired cluster.
	// +optional
	Spec RayClusterSpec `json:"spec,omitempty"`

	// status is the observed cluster.
	// +optional
	Status RayClusterStatus `json:"status,omitempty"`
}

// RayClusterList is a list of RayClusters.
//
// +kubebuilder:object:root=true
type RayClusterList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the RayClusters.
	Items []RayCluster `json:"items"`
}
