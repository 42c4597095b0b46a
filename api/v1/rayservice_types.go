package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxRayServiceNameLength is the longest RayService name accepted: each generation of its
// RayCluster is named "<rayservice>-<5 random characters>" and must fit MaxRayClusterNameLength.
const MaxRayServiceNameLength = 47

// RayServiceUpgradeType chooses how a RayService rolls out a changed rayClusterConfig.
// +kubebuilder:validation:Enum=NewCluster;NewClusterWithIncrementalUpgrade;None
type RayServiceUpgradeType string

const (
	// NewCluster prepares a whole new cluster and switches traffic to it once its applications
	// are running (blue/green). This is the behaviour when no type is given.
	NewCluster RayServiceUpgradeType = "NewCluster"
	// NewClusterWithIncrementalUpgrade shifts capacity and traffic to the new cluster step by step
	// through a Gateway API HTTPRoute.
	NewClusterWithIncrementalUpgrade RayServiceUpgradeType = "NewClusterWithIncrementalUpgrade"
	// RayServiceUpgradeNone ignores rayClusterConfig changes; only serveConfigV2 is applied.
	RayServiceUpgradeNone RayServiceUpgradeType = "None"
)

// RayServiceSpec is the desired state of a RayService.
//
// +kubebuilder:validation:XValidation:rule="!has(self.rayClusterConfig.headGroupSpec.headService) || !has(self.rayClusterConfig.headGroupSpec.headService.metadata) || !has(self.rayClusterConfig.headGroupSpec.headService.metadata.name)",message="rayClusterConfig.headGroupSpec.headService.metadata.name cannot be set: each cluster generation needs its own head Service",fieldPath=".rayClusterConfig.headGroupSpec.headService"
// +kubebuilder:validation:XValidation:rule="!has(self.upgradeStrategy) || !has(self.upgradeStrategy.type) || self.upgradeStrategy.type != 'NewClusterWithIncrementalUpgrade' || has(self.upgradeStrategy.clusterUpgradeOptions)",message="upgradeStrategy.clusterUpgradeOptions is required when upgradeStrategy.type is NewClusterWithIncrementalUpgrade",fieldPath=".upgradeStrategy"
// +kubebuilder:validation:XValidation:rule="!has(self.upgradeStrategy) || !has(self.upgradeStrategy.type) || self.upgradeStrategy.type != 'NewClusterWithIncrementalUpgrade' || (has(self.rayClusterConfig.enableInTreeAutoscaling) && self.rayClusterConfig.enableInTreeAutoscaling)",message="upgradeStrategy.type NewClusterWithIncrementalUpgrade requires rayClusterConfig.enableInTreeAutoscaling to be true",fieldPath=".upgradeStrategy.type"
// +kubebuilder:validation:XValidation:rule="!has(self.rayClusterConfig.upgradeStrategy) || !has(self.rayClusterConfig.upgradeStrategy.type) || self.rayClusterConfig.upgradeStrategy.type != 'Recreate'",message="rayClusterConfig.upgradeStrategy.type Recreate is only supported on RayClusters created directly; use upgradeStrategy instead",fieldPath=".rayClusterConfig.upgradeStrategy.type"
// +kubebuilder:validation:XValidation:rule="!has(self.rayClusterConfig.authOptions) || !has(self.rayClusterConfig.authOptions.enableK8sTokenAuth) || !self.rayClusterConfig.authOptions.enableK8sTokenAuth",message="rayClusterConfig.authOptions.enableK8sTokenAuth is only supported on RayClusters created directly",fieldPath=".rayClusterConfig.authOptions.enableK8sTokenAuth"
// +kubebuilder:validation:XValidation:rule="has(self.managedBy) == has(oldSelf.managedBy)",message="the managedBy field is immutable: it cannot be added or removed after creation",fieldPath=".managedBy"
type RayServiceSpec struct {
	// rayClusterDeletionDelaySeconds is how long a superseded RayCluster is kept before it is
	// deleted (60 when unset).
	// +kubebuilder:validation:Minimum=0
	// +optional
	RayClusterDeletionDelaySeconds *int32 `json:"rayClusterDeletionDelaySeconds,omitempty"`

	// serviceUnhealthySecondThreshold is deprecated and ignored.
	// +optional
	ServiceUnhealthySecondThreshold *int32 `json:"serviceUnhealthySecondThreshold,omitempty"`

	// deploymentUnhealthySecondThreshold is deprecated and ignored.
	// +optional
	DeploymentUnhealthySecondThreshold *int32 `json:"deploymentUnhealthySecondThreshold,omitempty"`

	// serveService, when set, is the starting point of the serve Service (its name is honoured;
	// the selector is always set by the operator).
	// +optional
	ServeService *corev1.Service `json:"serveService,omitempty"`

	// upgradeStrategy chooses how rayClusterConfig changes are rolled out.
	// +optional
	UpgradeStrategy *RayServiceUpgradeStrategy `json:"upgradeStrategy,omitempty"`

	// serveConfigV2 is the Ray Serve configuration (applications, http_options, ...) as a YAML
	// document. It is applied to the running cluster without replacing it.
	// +optional
	ServeConfigV2 string `json:"serveConfigV2,omitempty"`

	// rayClusterConfig is the spec of every RayCluster generation the service runs on.
	// +required
	RayClusterSpec RayClusterSpec `json:"rayClusterConfig"`

	// managedBy names the controller that reconciles this object. rayk8s reconciles objects where
	// it is unset or "ray.io/kuberay-operator"; "kueue.x-k8s.io/multikueue" hands the object to
	// MultiKueue. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the managedBy field is immutable"
	// +kubebuilder:validation:XValidation:rule="self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",message="the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"
	// +optional
	ManagedBy *string `json:"managedBy,omitempty"`

	// excludeHeadPodFromServeSvc keeps the head pod out of the serve Service.
	// +optional
	ExcludeHeadPodFromServeSvc bool `json:"excludeHeadPodFromServeSvc,omitempty"`

	// suspend, when true, deletes every RayCluster and Service of the RayService until it is set
	// back to false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// RayServiceUpgradeStrategy holds the rollout policy of a RayService.
type RayServiceUpgradeStrategy struct {
	// type is NewCluster, NewClusterWithIncrementalUpgrade or None.
	// +optional
	Type *RayServiceUpgradeType `json:"type,omitempty"`

	// clusterUpgradeOptions tunes NewClusterWithIncrementalUpgrade.
	// +optional
	ClusterUpgradeOptions *ClusterUpgradeOptions `json:"clusterUpgradeOptions,omitempty"`
}

// ClusterUpgradeOptions tunes an incremental upgrade.
//
// +kubebuilder:validation:XValidation:rule="!has(self.maxSurgePercent) || self.stepSizePercent <= self.maxSurgePercent",message="stepSizePercent must be less than or equal to maxSurgePercent",fieldPath=".stepSizePercent"
type ClusterUpgradeOptions struct {
	// maxSurgePercent is the share of capacity added to the new cluster (or removed from the old
	// one) per scaling step.
	// +kubebuilder:default:=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxSurgePercent *int32 `json:"maxSurgePercent,omitempty"`

	// stepSizePercent is the share of traffic moved to the new cluster every intervalSeconds.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +required
	StepSizePercent *int32 `json:"stepSizePercent"`

	// intervalSeconds is the time between two traffic steps.
	// +kubebuilder:validation:Minimum=1
	// +required
	IntervalSeconds *int32 `json:"intervalSeconds"`

	// gatewayClassName is the GatewayClass of the Gateway the operator creates.
	// +kubebuilder:validation:MinLength=1
	// +required
	GatewayClassName string `json:"gatewayClassName"`
}

// ServiceStatus is the deprecated one-word status of a RayService; prefer the Ready condition.
type ServiceStatus string

const (
	// Running means the Ready condition is True.
	Running ServiceStatus = "Running"
	// NotRunning is the empty value used otherwise.
	NotRunning ServiceStatus = ""
)

// RayServiceStatuses is the observed state of a RayService.
type RayServiceStatuses struct {
	// conditions are the RayService conditions (see the RayServiceConditionType constants).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lastUpdateTime is when the status was last written.
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`

	// serviceStatus is deprecated: "Running" while Ready is True, empty otherwise.
	// +optional
	ServiceStatus ServiceStatus `json:"serviceStatus,omitempty"`

	// activeServiceStatus describes the cluster currently serving traffic.
	// +optional
	ActiveServiceStatus RayServiceStatus `json:"activeServiceStatus,omitempty"`

	// pendingServiceStatus describes the cluster being prepared by an upgrade.
	// +optional
	PendingServiceStatus RayServiceStatus `json:"pendingServiceStatus,omitempty"`

	// numServeEndpoints counts the ready pods behind the serve Service.
	// +optional
	NumServeEndpoints int32 `json:"numServeEndpoints,omitempty"`

	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// RayServiceStatus describes one RayCluster of a RayService and its Serve applications.
type RayServiceStatus struct {
	// applicationStatuses maps application names ("default" for the unnamed one) to their status.
	// +optional
	Applications map[string]AppStatus `json:"applicationStatuses,omitempty"`

	// targetCapacity is the Serve target_capacity (percent) of this cluster during an incremental
	// upgrade.
	// +optional
	TargetCapacity *int32 `json:"targetCapacity,omitempty"`

	// trafficRoutedPercent is the share of traffic sent to this cluster during an incremental
	// upgrade.
	// +optional
	TrafficRoutedPercent *int32 `json:"trafficRoutedPercent,omitempty"`

	// lastTrafficMigratedTime is when trafficRoutedPercent last changed.
	// +optional
	LastTrafficMigratedTime *metav1.Time `json:"lastTrafficMigratedTime,omitempty"`

	// rayClusterName is the RayCluster described.
	// +optional
	RayClusterName string `json:"rayClusterName,omitempty"`

	// rayClusterStatus mirrors that RayCluster's status.
	// +optional
	RayClusterStatus RayClusterStatus `json:"rayClusterStatus,omitempty"`
}

// AppStatus is the status of one Serve application.
type AppStatus struct {
	// serveDeploymentStatuses maps deployment names to their status.
	// +optional
	Deployments map[string]ServeDeploymentStatus `json:"serveDeploymentStatuses,omitempty"`

	// status is the Serve application status (see the ApplicationStatus constants).
	// +optional
	Status string `json:"status,omitempty"`

	// message explains the status.
	// +optional
	Message string `json:"message,omitempty"`
}

// ServeDeploymentStatus is the status of one Serve deployment.
type ServeDeploymentStatus struct {
	// status is the Serve deployment status (see the DeploymentStatus constants).
	// +optional
	Status string `json:"status,omitempty"`

	// message explains the status.
	// +optional
	Message string `json:"message,omitempty"`
}

// RayService runs Ray Serve applications on a RayCluster and upgrades that cluster without
// downtime.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="service status",type=string,JSONPath=".status.serviceStatus"
// +kubebuilder:printcolumn:name="num serve endpoints",type=integer,JSONPath=".status.numServeEndpoints"
// +kubebuilder:printcolumn:name="ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="upgrading",type=string,JSONPath=".status.conditions[?(@.type==\"UpgradeInProgress\")].status"
// +kubebuilder:printcolumn:name="active cluster",type=string,JSONPath=".status.activeServiceStatus.rayClusterName"
// +kubebuilder:printcolumn:name="pending cluster",type=string,JSONPath=".status.pendingServiceStatus.rayClusterName",priority=1
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 47",message="metadata.name must be no more than 47 characters: each RayCluster of the service is named <name>-<5 random characters>"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): it names the service's RayClusters and Services"
type RayService struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired service.
	// +optional
	Spec RayServiceSpec `json:"spec,omitempty"`

	// status is the observed service.
	// +optional
	Status RayServiceStatuses `json:"status,omitempty"`
}

// RayServiceList is a list of RayServices.
//
// +kubebuilder:object:root=true
type RayServiceList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the RayServices.
	Items []RayService `json:"items"`
}
