package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxRayJobNameLength is the longest RayJob name accepted: the generated RayCluster is named
// "<rayjob>-<5 random characters>" and must itself fit MaxRayClusterNameLength.
const MaxRayJobNameLength = 47

// JobStatus is the status of a Ray job as reported by the Ray dashboard. The empty value means
// the job has not been seen yet.
type JobStatus string

const (
	// JobStatusNew means the job has not been submitted or observed yet.
	JobStatusNew JobStatus = ""
	// JobStatusPending means the job was submitted and waits to start.
	JobStatusPending JobStatus = "PENDING"
	// JobStatusRunning means the entrypoint is running.
	JobStatusRunning JobStatus = "RUNNING"
	// JobStatusStopped means the job was stopped by a user (terminal).
	JobStatusStopped JobStatus = "STOPPED"
	// JobStatusSucceeded means the entrypoint exited 0 (terminal).
	JobStatusSucceeded JobStatus = "SUCCEEDED"
	// JobStatusFailed means the entrypoint failed (terminal).
	JobStatusFailed JobStatus = "FAILED"
)

// IsJobTerminal reports whether a Ray job status can no longer change.
func IsJobTerminal(status JobStatus) bool {
	switch status {
	case JobStatusStopped, JobStatusSucceeded, JobStatusFailed:
		return true
	default:
		return false
	}
}

// JobDeploymentStatus is the phase of a RayJob as driven by the operator (cluster creation,
// submission, completion), as opposed to the Ray job status.
type JobDeploymentStatus string

const (
	// JobDeploymentStatusNew is the initial, empty status.
	JobDeploymentStatusNew JobDeploymentStatus = ""
	// JobDeploymentStatusInitializing means the RayCluster is being created or waited for.
	JobDeploymentStatusInitializing JobDeploymentStatus = "Initializing"
	// JobDeploymentStatusRunning means the job has been handed to Ray and is being tracked.
	JobDeploymentStatusRunning JobDeploymentStatus = "Running"
	// JobDeploymentStatusComplete means the Ray job reached SUCCEEDED or STOPPED (terminal).
	JobDeploymentStatusComplete JobDeploymentStatus = "Complete"
	// JobDeploymentStatusFailed means the RayJob failed (terminal); status.reason says why.
	JobDeploymentStatusFailed JobDeploymentStatus = "Failed"
	// JobDeploymentStatusValidationFailed means the spec was rejected by the operator.
	JobDeploymentStatusValidationFailed JobDeploymentStatus = "ValidationFailed"
	// JobDeploymentStatusSuspending means the cluster and submitter are being deleted after
	// spec.suspend became true.
	JobDeploymentStatusSuspending JobDeploymentStatus = "Suspending"
	// JobDeploymentStatusSuspended means everything was deleted and the RayJob waits for
	// spec.suspend to become false.
	JobDeploymentStatusSuspended JobDeploymentStatus = "Suspended"
	// JobDeploymentStatusRetrying means a failed attempt is being cleaned up before a new one.
	JobDeploymentStatusRetrying JobDeploymentStatus = "Retrying"
	// JobDeploymentStatusWaiting means the cluster is ready and, in InteractiveMode, the operator
	// waits for spec.jobId.
	JobDeploymentStatusWaiting JobDeploymentStatus = "Waiting"
)

// IsJobDeploymentTerminal reports whether a RayJob deployment status is final.
func IsJobDeploymentTerminal(status JobDeploymentStatus) bool {
	return status == JobDeploymentStatusComplete || status == JobDeploymentStatusFailed
}

// JobFailedReason explains a Failed (or ValidationFailed) RayJob.
type JobFailedReason string

const (
	// SubmissionFailed means the submitter could not submit the job.
	SubmissionFailed JobFailedReason = "SubmissionFailed"
	// DeadlineExceeded means spec.activeDeadlineSeconds elapsed.
	DeadlineExceeded JobFailedReason = "DeadlineExceeded"
	// PreRunningDeadlineExceeded means spec.preRunningDeadlineSeconds elapsed before Running.
	PreRunningDeadlineExceeded JobFailedReason = "PreRunningDeadlineExceeded"
	// AppFailed means the Ray job itself failed.
	AppFailed JobFailedReason = "AppFailed"
	// JobDeploymentStatusTransitionGracePeriodExceeded means the job ended but the RayJob could not
	// be completed within the grace period.
	JobDeploymentStatusTransitionGracePeriodExceeded JobFailedReason = "JobDeploymentStatusTransitionGracePeriodExceeded"
	// JobStatusCheckTimeoutExceeded means the dashboard could not be queried for too long.
	JobStatusCheckTimeoutExceeded JobFailedReason = "JobStatusCheckTimeoutExceeded"
	// ValidationFailed means the spec or metadata failed the operator's validation.
	ValidationFailed JobFailedReason = "ValidationFailed"

	// The reasons below are rayk8s additions: each names why a RayJob could not run instead of
	// leaving it waiting forever.

	// HeadPodUnschedulable means the head pod stayed unschedulable past the pending timeout.
	HeadPodUnschedulable JobFailedReason = "HeadPodUnschedulable"
	// HeadPodCrashLoopBackOff means the head's Ray container kept crashing.
	HeadPodCrashLoopBackOff JobFailedReason = "HeadPodCrashLoopBackOff"
	// HeadPodInitContainerFailed means an init container of the head pod kept failing.
	HeadPodInitContainerFailed JobFailedReason = "HeadPodInitContainerFailed"
	// HeadPodImagePullFailed means an image of the head pod could not be pulled.
	HeadPodImagePullFailed JobFailedReason = "HeadPodImagePullFailed"
	// HeadPodFailed means the head pod terminated (phase Failed).
	HeadPodFailed JobFailedReason = "HeadPodFailed"
	// JobLost means the dashboard no longer knows a job it reported before (the head restarted
	// without GCS fault tolerance and lost its job table).
	JobLost JobFailedReason = "JobLost"
)

// JobSubmissionMode chooses how the job is handed to Ray.
type JobSubmissionMode string

const (
	// K8sJobMode submits from a Kubernetes Job running "ray job submit" (the default).
	K8sJobMode JobSubmissionMode = "K8sJobMode"
	// HTTPMode makes the operator submit through the dashboard HTTP API.
	HTTPMode JobSubmissionMode = "HTTPMode"
	// InteractiveMode waits for the user to submit the job and set spec.jobId.
	InteractiveMode JobSubmissionMode = "InteractiveMode"
	// SidecarMode submits from a container added to the head pod.
	SidecarMode JobSubmissionMode = "SidecarMode"
)

// DeletionPolicyType is what to delete once a RayJob finishes.
// +kubebuilder:validation:Enum=DeleteCluster;DeleteWorkers;DeleteSelf;DeleteNone
type DeletionPolicyType string

const (
	// DeleteCluster deletes the RayCluster.
	DeleteCluster DeletionPolicyType = "DeleteCluster"
	// DeleteWorkers removes the worker pods and keeps the head.
	DeleteWorkers DeletionPolicyType = "DeleteWorkers"
	// DeleteSelf deletes the RayJob and, through ownership, everything it created.
	DeleteSelf DeletionPolicyType = "DeleteSelf"
	// DeleteNone deletes nothing.
	DeleteNone DeletionPolicyType = "DeleteNone"
)

// MaxDeletionRules bounds spec.deletionStrategy.deletionRules: rules are unique per (condition,
// policy) and there are 3 conditions and 4 policies.
const MaxDeletionRules = 12

// RayJobSpec is the desired state of a RayJob.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.rayClusterSpec) && has(self.clusterSelector) && size(self.clusterSelector) > 0)",message="rayClusterSpec and clusterSelector are mutually exclusive: set rayClusterSpec to create a cluster or clusterSelector to use an existing one",fieldPath=".clusterSelector"
// +kubebuilder:validation:XValidation:rule="has(self.rayClusterSpec) || (has(self.clusterSelector) && size(self.clusterSelector) > 0)",message="one of rayClusterSpec or clusterSelector must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterSelector) || size(self.clusterSelector) == 0 || ('ray.io/cluster' in self.clusterSelector && size(self.clusterSelector['ray.io/cluster']) > 0)",message="clusterSelector must map 'ray.io/cluster' to the name of an existing RayCluster",fieldPath=".clusterSelector"
// +kubebuilder:validation:XValidation:rule="!has(self.suspend) || !self.suspend || (has(self.shutdownAfterJobFinishes) && self.shutdownAfterJobFinishes)",message="suspend requires shutdownAfterJobFinishes to be true",fieldPath=".suspend"
// +kubebuilder:validation:XValidation:rule="!has(self.suspend) || !self.suspend || !has(self.clusterSelector) || size(self.clusterSelector) == 0",message="suspend cannot be used with clusterSelector",fieldPath=".suspend"
// +kubebuilder:validation:XValidation:rule="!has(self.ttlSecondsAfterFinished) || self.ttlSecondsAfterFinished == 0 || (has(self.shutdownAfterJobFinishes) && self.shutdownAfterJobFinishes)",message="ttlSecondsAfterFinished greater than 0 requires shutdownAfterJobFinishes to be true",fieldPath=".ttlSecondsAfterFinished"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterSelector) || size(self.clusterSelector) == 0 || !has(self.submissionMode) || self.submissionMode != 'SidecarMode'",message="submissionMode SidecarMode cannot be used with clusterSelector",fieldPath=".submissionMode"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterSelector) || size(self.clusterSelector) == 0 || !has(self.backoffLimit) || self.backoffLimit == 0",message="backoffLimit must be 0 with clusterSelector: retries need a new cluster",fieldPath=".backoffLimit"
// +kubebuilder:validation:XValidation:rule="!has(self.submissionMode) || self.submissionMode != 'InteractiveMode' || !has(self.backoffLimit) || self.backoffLimit == 0",message="backoffLimit must be 0 in InteractiveMode",fieldPath=".backoffLimit"
// +kubebuilder:validation:XValidation:rule="!has(self.submissionMode) || self.submissionMode != 'SidecarMode' || !has(self.submitterPodTemplate)",message="submitterPodTemplate cannot be used in SidecarMode",fieldPath=".submitterPodTemplate"
// +kubebuilder:validation:XValidation:rule="!has(self.submissionMode) || self.submissionMode != 'SidecarMode' || !has(self.rayClusterSpec) || !has(self.rayClusterSpec.headGroupSpec.template.spec) || !has(self.rayClusterSpec.headGroupSpec.template.spec.restartPolicy) || self.rayClusterSpec.headGroupSpec.template.spec.restartPolicy == 'Never'",message="SidecarMode requires the head pod restartPolicy to be Never or unset",fieldPath=".rayClusterSpec.headGroupSpec.template.spec.restartPolicy"
// +kubebuilder:validation:XValidation:rule="!has(self.deletionStrategy) || !has(self.deletionStrategy.deletionRules) || !has(self.shutdownAfterJobFinishes) || !self.shutdownAfterJobFinishes",message="deletionStrategy.deletionRules cannot be used with shutdownAfterJobFinishes",fieldPath=".deletionStrategy.deletionRules"
// +kubebuilder:validation:XValidation:rule="!has(self.shutdownAfterJobFinishes) || !self.shutdownAfterJobFinishes || !has(self.deletionStrategy) || ((!has(self.deletionStrategy.onSuccess) || !has(self.deletionStrategy.onSuccess.policy) || self.deletionStrategy.onSuccess.policy != 'DeleteNone') && (!has(self.deletionStrategy.onFailure) || !has(self.deletionStrategy.onFailure.policy) || self.deletionStrategy.onFailure.policy != 'DeleteNone'))",message="deletionStrategy policy DeleteNone cannot be used with shutdownAfterJobFinishes",fieldPath=".deletionStrategy"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterSelector) || size(self.clusterSelector) == 0 || !has(self.deletionStrategy) || ((!has(self.deletionStrategy.deletionRules) || self.deletionStrategy.deletionRules.all(r, r.policy != 'DeleteCluster' && r.policy != 'DeleteWorkers')) && (!has(self.deletionStrategy.onSuccess) || !has(self.deletionStrategy.onSuccess.policy) || !(self.deletionStrategy.onSuccess.policy in ['DeleteCluster', 'DeleteWorkers'])) && (!has(self.deletionStrategy.onFailure) || !has(self.deletionStrategy.onFailure.policy) || !(self.deletionStrategy.onFailure.policy in ['DeleteCluster', 'DeleteWorkers'])))",message="deletionStrategy policies DeleteCluster and DeleteWorkers cannot be used with clusterSelector: the cluster is not owned by the RayJob",fieldPath=".deletionStrategy"
// +kubebuilder:validation:XValidation:rule="!has(self.rayClusterSpec) || !has(self.rayClusterSpec.enableInTreeAutoscaling) || !self.rayClusterSpec.enableInTreeAutoscaling || !has(self.deletionStrategy) || ((!has(self.deletionStrategy.deletionRules) || self.deletionStrategy.deletionRules.all(r, r.policy != 'DeleteWorkers')) && (!has(self.deletionStrategy.onSuccess) || !has(self.deletionStrategy.onSuccess.policy) || self.deletionStrategy.onSuccess.policy != 'DeleteWorkers') && (!has(self.deletionStrategy.onFailure) || !has(self.deletionStrategy.onFailure.policy) || self.deletionStrategy.onFailure.policy != 'DeleteWorkers'))",message="deletionStrategy policy DeleteWorkers cannot be used when rayClusterSpec.enableInTreeAutoscaling is true",fieldPath=".deletionStrategy"
// +kubebuilder:validation:XValidation:rule="!has(self.rayClusterSpec) || !has(self.rayClusterSpec.upgradeStrategy) || !has(self.rayClusterSpec.upgradeStrategy.type) || self.rayClusterSpec.upgradeStrategy.type != 'Recreate'",message="rayClusterSpec.upgradeStrategy.type Recreate is only supported on RayClusters created directly",fieldPath=".rayClusterSpec.upgradeStrategy.type"
// +kubebuilder:validation:XValidation:rule="!has(self.rayClusterSpec) || !has(self.rayClusterSpec.authOptions) || !has(self.rayClusterSpec.authOptions.enableK8sTokenAuth) || !self.rayClusterSpec.authOptions.enableK8sTokenAuth",message="rayClusterSpec.authOptions.enableK8sTokenAuth is only supported on RayClusters created directly",fieldPath=".rayClusterSpec.authOptions.enableK8sTokenAuth"
// +kubebuilder:validation:XValidation:rule="has(self.managedBy) == has(oldSelf.managedBy)",message="the managedBy field is immutable: it cannot be added or removed after creation",fieldPath=".managedBy"
type RayJobSpec struct {
	// activeDeadlineSeconds bounds, from status.startTime, how long the RayJob may be initializing
	// or running before it fails with reason DeadlineExceeded.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ActiveDeadlineSeconds *int32 `json:"activeDeadlineSeconds,omitempty"`

	// backoffLimit is how many times a failed RayJob is retried, each time on a new RayCluster with
	// a new job id.
	// +kubebuilder:default:=0
	// +kubebuilder:validation:Minimum=0
	// +optional
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// rayClusterSpec is the RayCluster to create for the job. Mutually exclusive with
	// clusterSelector. Changes after the cluster exists are ignored.
	// +optional
	RayClusterSpec *RayClusterSpec `json:"rayClusterSpec,omitempty"`

	// submitterPodTemplate replaces the default pod of the submitter Job (K8sJobMode).
	// +optional
	SubmitterPodTemplate *corev1.PodTemplateSpec `json:"submitterPodTemplate,omitempty"`

	// metadata is attached to the Ray job.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`

	// clusterSelector runs the job on an existing RayCluster: key "ray.io/cluster" holds its name.
	// Mutually exclusive with rayClusterSpec.
	// +optional
	ClusterSelector map[string]string `json:"clusterSelector,omitempty"`

	// submitterConfig tunes the submitter.
	// +optional
	SubmitterConfig *SubmitterConfig `json:"submitterConfig,omitempty"`

	// managedBy names the controller that reconciles this object. rayk8s reconciles objects where
	// it is unset or "ray.io/kuberay-operator"; "kueue.x-k8s.io/multikueue" hands the object to
	// MultiKueue. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the managedBy field is immutable"
	// +kubebuilder:validation:XValidation:rule="self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']",message="the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"
	// +optional
	ManagedBy *string `json:"managedBy,omitempty"`

	// deletionStrategy says what to delete after the job finishes: either both onSuccess and
	// onFailure (legacy) or deletionRules.
	// +optional
	DeletionStrategy *DeletionStrategy `json:"deletionStrategy,omitempty"`

	// entrypoint is the shell command that runs the job driver.
	// +optional
	Entrypoint string `json:"entrypoint,omitempty"`

	// runtimeEnvYAML is the job's runtime environment as a YAML document.
	// +optional
	RuntimeEnvYAML string `json:"runtimeEnvYAML,omitempty"`

	// jobId is the submission id. Generated as "<name>-<random>" when unset; in InteractiveMode the
	// user sets it to the id of a job they submitted.
	// +optional
	JobID string `json:"jobId,omitempty"`

	// submissionMode is K8sJobMode (default), HTTPMode, InteractiveMode or SidecarMode.
	// +kubebuilder:default:=K8sJobMode
	// +kubebuilder:validation:Enum=K8sJobMode;HTTPMode;InteractiveMode;SidecarMode
	// +optional
	SubmissionMode JobSubmissionMode `json:"submissionMode,omitempty"`

	// entrypointResources is a JSON object of custom resources reserved for the driver.
	// +optional
	EntrypointResources string `json:"entrypointResources,omitempty"`

	// entrypointNumCpus is the number of CPUs reserved for the driver.
	// +kubebuilder:validation:Minimum=0
	// +optional
	EntrypointNumCPUs float32 `json:"entrypointNumCpus,omitempty"`

	// entrypointNumGpus is the number of GPUs reserved for the driver.
	// +kubebuilder:validation:Minimum=0
	// +optional
	EntrypointNumGPUs float32 `json:"entrypointNumGpus,omitempty"`

	// ttlSecondsAfterFinished delays the cluster deletion requested by shutdownAfterJobFinishes.
	// +kubebuilder:default:=0
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// shutdownAfterJobFinishes deletes the RayCluster once the job is finished (after
	// ttlSecondsAfterFinished).
	// +optional
	ShutdownAfterJobFinishes bool `json:"shutdownAfterJobFinishes,omitempty"`

	// suspend, when true, deletes the cluster and submitter and keeps the RayJob waiting; used by
	// batch schedulers such as Kueue.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// preRunningDeadlineSeconds fails the RayJob with reason PreRunningDeadlineExceeded if it is not
	// Running this many seconds after status.startTime.
	// +kubebuilder:validation:Minimum=1
	// +optional
	PreRunningDeadlineSeconds *int32 `json:"preRunningDeadlineSeconds,omitempty"`
}

// SubmitterConfig tunes the job submitter.
type SubmitterConfig struct {
	// backoffLimit is the submitter Job's backoffLimit (2 when unset).
	// +kubebuilder:validation:Minimum=0
	// +optional
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
}

// DeletionStrategy is the clean-up policy of a finished RayJob: either the legacy pair
// onSuccess/onFailure, or deletionRules.
//
// +kubebuilder:validation:XValidation:rule="!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))",message="legacy policies (onSuccess/onFailure) and deletionRules cannot be used together within the same deletionStrategy"
// +kubebuilder:validation:XValidation:rule="((has(self.onSuccess) && has(self.onFailure)) || has(self.deletionRules))",message="deletionStrategy requires either BOTH onSuccess and onFailure, OR the deletionRules field (cannot be empty)"
type DeletionStrategy struct {
	// onSuccess is applied when the job SUCCEEDED (legacy style; needs onFailure too).
	// +optional
	OnSuccess *DeletionPolicy `json:"onSuccess,omitempty"`

	// onFailure is applied when the job FAILED (legacy style; needs onSuccess too).
	// +optional
	OnFailure *DeletionPolicy `json:"onFailure,omitempty"`

	// deletionRules are applied when their condition holds, each after its own delay. Rules are
	// unique per condition and policy, and for the same condition the delays must not decrease from
	// DeleteWorkers to DeleteCluster to DeleteSelf.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=12
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.policy == a.policy && ((has(a.condition.jobStatus) && has(b.condition.jobStatus) && a.condition.jobStatus == b.condition.jobStatus) || (has(a.condition.jobDeploymentStatus) && has(b.condition.jobDeploymentStatus) && a.condition.jobDeploymentStatus == b.condition.jobDeploymentStatus))))",message="deletionRules must be unique per condition and policy"
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.all(b, !(((has(a.condition.jobStatus) && has(b.condition.jobStatus) && a.condition.jobStatus == b.condition.jobStatus) || (has(a.condition.jobDeploymentStatus) && has(b.condition.jobDeploymentStatus) && a.condition.jobDeploymentStatus == b.condition.jobDeploymentStatus)) && ((a.policy == 'DeleteWorkers' && (b.policy == 'DeleteCluster' || b.policy == 'DeleteSelf')) || (a.policy == 'DeleteCluster' && b.policy == 'DeleteSelf'))) || a.condition.ttlSeconds <= b.condition.ttlSeconds))",message="for the same condition, ttlSeconds must satisfy DeleteWorkers <= DeleteCluster <= DeleteSelf"
	// +optional
	DeletionRules []DeletionRule `json:"deletionRules,omitempty"`
}

// DeletionPolicy is a legacy deletion policy.
type DeletionPolicy struct {
	// policy is what to delete.
	// +optional
	Policy *DeletionPolicyType `json:"policy,omitempty"`
}

// DeletionRule deletes something once its condition holds and its delay has passed.
type DeletionRule struct {
	// policy is what to delete.
	// +required
	Policy DeletionPolicyType `json:"policy"`

	// condition triggers the rule.
	// +required
	Condition DeletionCondition `json:"condition"`
}

// DeletionCondition matches a finished RayJob either by Ray job status or by deployment status.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.jobStatus) && has(self.jobDeploymentStatus))",message="JobStatus and JobDeploymentStatus cannot be used together within the same deletion condition."
// +kubebuilder:validation:XValidation:rule="has(self.jobStatus) || has(self.jobDeploymentStatus)",message="the deletion condition requires either the JobStatus or the JobDeploymentStatus field."
type DeletionCondition struct {
	// jobStatus matches the final Ray job status.
	// +kubebuilder:validation:Enum=SUCCEEDED;FAILED
	// +optional
	JobStatus *JobStatus `json:"jobStatus,omitempty"`

	// jobDeploymentStatus matches the final deployment status (e.g. a cluster that never came up).
	// +kubebuilder:validation:Enum=Failed
	// +optional
	JobDeploymentStatus *JobDeploymentStatus `json:"jobDeploymentStatus,omitempty"`

	// ttlSeconds delays the rule after status.endTime.
	// +kubebuilder:default:=0
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSeconds int32 `json:"ttlSeconds,omitempty"`
}

// RayJobStatusInfo holds times reported by Ray for the job.
type RayJobStatusInfo struct {
	// startTime is when Ray started the job.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// endTime is when the job reached a terminal status.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
}

// RayJobStatus is the observed state of a RayJob.
type RayJobStatus struct {
	// rayJobInfo holds times reported by Ray.
	// +optional
	RayJobStatusInfo RayJobStatusInfo `json:"rayJobInfo,omitempty"`

	// jobId is the submission id of the current attempt.
	// +optional
	JobID string `json:"jobId,omitempty"`

	// rayClusterName is the RayCluster of the current attempt.
	// +optional
	RayClusterName string `json:"rayClusterName,omitempty"`

	// dashboardURL is host:port of the cluster's dashboard (no scheme).
	// +optional
	DashboardURL string `json:"dashboardURL,omitempty"`

	// jobStatus is the Ray job status.
	// +optional
	JobStatus JobStatus `json:"jobStatus,omitempty"`

	// jobDeploymentStatus is the operator-level phase.
	// +optional
	JobDeploymentStatus JobDeploymentStatus `json:"jobDeploymentStatus,omitempty"`

	// reason explains a failure.
	// +optional
	Reason JobFailedReason `json:"reason,omitempty"`

	// message is the Ray job message or failure detail.
	// +optional
	Message string `json:"message,omitempty"`

	// startTime is when the RayJob left the New state.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// endTime is when the RayJob became Complete or Failed.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`

	// succeeded counts successful attempts.
	// +kubebuilder:default:=0
	// +optional
	Succeeded *int32 `json:"succeeded,omitempty"`

	// failed counts failed attempts.
	// +kubebuilder:default:=0
	// +optional
	Failed *int32 `json:"failed,omitempty"`

	// rayClusterStatus mirrors the status of the current RayCluster.
	// +optional
	RayClusterStatus RayClusterStatus `json:"rayClusterStatus,omitempty"`

	// jobStatusCheckFailureStartTime is when dashboard status queries started failing; cleared on
	// the next success.
	// +optional
	JobStatusCheckFailureStartTime *metav1.Time `json:"jobStatusCheckFailureStartTime,omitempty"`

	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// RayJob runs one Ray job, on a RayCluster it creates or on an existing one.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="job status",type=string,JSONPath=".status.jobStatus"
// +kubebuilder:printcolumn:name="deployment status",type=string,JSONPath=".status.jobDeploymentStatus"
// +kubebuilder:printcolumn:name="ray cluster name",type=string,JSONPath=".status.rayClusterName"
// +kubebuilder:printcolumn:name="start time",type=string,JSONPath=".status.startTime"
// +kubebuilder:printcolumn:name="end time",type=string,JSONPath=".status.endTime"
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="reason",type=string,JSONPath=".status.reason",priority=1
// +kubebuilder:printcolumn:name="submission mode",type=string,JSONPath=".spec.submissionMode",priority=1
// +kubebuilder:printcolumn:name="job id",type=string,JSONPath=".status.jobId",priority=1
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 47",message="metadata.name must be no more than 47 characters: the RayCluster created for the job is named <name>-<5 random characters>"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): it names the job's RayCluster and Services"
type RayJob struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired job.
	// +optional
	Spec RayJobSpec `json:"spec,omitempty"`

	// status is the observed job.
	// +optional
	Status RayJobStatus `json:"status,omitempty"`
}

// RayJobList is a list of RayJobs.
//
// +kubebuilder:object:root=true
type RayJobList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the RayJobs.
	Items []RayJob `json:"items"`
}
