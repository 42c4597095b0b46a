package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxRayCronJobNameLength is the longest RayCronJob name accepted: each RayJob it creates is named
// "<name>-<scheduled time in minutes since the epoch>" (8 digits until the 22nd century) and must
// itself fit MaxRayJobNameLength.
const MaxRayCronJobNameLength = MaxRayJobNameLength - 9

// Annotations on a RayCronJob that tune what KubeRay's schema has no field for (rayk8s additions).
// Bad values are reported by the RayCronJobSpecValid condition and an InvalidRayCronJobSpec event.
const (
	// RayCronJobConcurrencyPolicyAnnotation is Allow (the default, KubeRay's behaviour), Forbid
	// (skip a run while an earlier RayJob is still active) or Replace (delete the active RayJobs
	// and start the new one).
	RayCronJobConcurrencyPolicyAnnotation = "rayk8s.io/concurrency-policy"
	// RayCronJobSuccessfulHistoryLimitAnnotation is how many Complete RayJobs to keep (a
	// non-negative integer); older ones are deleted. Unset keeps them all, as KubeRay does.
	RayCronJobSuccessfulHistoryLimitAnnotation = "rayk8s.io/successful-jobs-history-limit"
	// RayCronJobFailedHistoryLimitAnnotation is how many Failed RayJobs to keep (a non-negative
	// integer); older ones are deleted. Unset keeps them all, as KubeRay does.
	RayCronJobFailedHistoryLimitAnnotation = "rayk8s.io/failed-jobs-history-limit"
)

// ConcurrencyPolicy is a value of RayCronJobConcurrencyPolicyAnnotation.
type ConcurrencyPolicy string

// The concurrency policies.
const (
	AllowConcurrent   ConcurrencyPolicy = "Allow"
	ForbidConcurrent  ConcurrencyPolicy = "Forbid"
	ReplaceConcurrent ConcurrencyPolicy = "Replace"
)

// RayCronJobConditionType is the type of a condition in RayCronJob status.conditions.
type RayCronJobConditionType string

// RayCronJob condition types and their reasons (rayk8s additions).
const (
	// RayCronJobSpecValid is False when the schedule, the time zone or a rayk8s.io annotation
	// cannot be used; the message names the field. Nothing is scheduled while it is False.
	RayCronJobSpecValid RayCronJobConditionType = "RayCronJobSpecValid"
	// ValidRayCronJobSpec is the reason of RayCronJobSpecValid=True.
	ValidRayCronJobSpec = "ValidRayCronJobSpec"
	// InvalidRayCronJobSpec is the reason of RayCronJobSpecValid=False and of its Warning event
	// (KubeRay's event reason).
	InvalidRayCronJobSpec = "InvalidRayCronJobSpec"
)

// RayCronJobSpec is the desired state of a RayCronJob.
type RayCronJobSpec struct {
	// jobTemplate is the spec of the RayJob created at each scheduled time.
	JobTemplate RayJobSpec `json:"jobTemplate"`

	// schedule is a standard five-field cron expression (or a descriptor such as @hourly or
	// @every 1h). It is checked by the operator: a bad one sets RayCronJobSpecValid to False.
	Schedule string `json:"schedule"`

	// timeZone is the IANA time zone the schedule is read in (for example "Asia/Taipei"). Unset,
	// the schedule uses the operator's local time zone.
	// +kubebuilder:validation:MinLength=1
	// +optional
	TimeZone *string `json:"timeZone,omitempty"`

	// suspend stops new RayJobs from being created; RayJobs already created are left alone.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// RayCronJobStatus is the observed state of a RayCronJob.
type RayCronJobStatus struct {
	// lastScheduleTime is the most recent schedule time a RayJob was created (or, under the
	// Forbid policy, skipped) for.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// active lists the RayJobs created by this RayCronJob that have not finished (a rayk8s
	// addition).
	// +listType=atomic
	// +optional
	Active []corev1.ObjectReference `json:"active,omitempty"`

	// conditions are the RayCronJob conditions (a rayk8s addition, see RayCronJobConditionType).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// RayCronJob creates a RayJob from its template on a cron schedule.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=all
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="schedule",type=string,JSONPath=".spec.schedule"
// +kubebuilder:printcolumn:name="timezone",type=string,JSONPath=".spec.timeZone"
// +kubebuilder:printcolumn:name="last schedule",type=date,JSONPath=".status.lastScheduleTime"
// +kubebuilder:printcolumn:name="age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="suspend",type=boolean,JSONPath=".spec.suspend"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 38",message="metadata.name must be no more than 38 characters: each RayJob created is named <name>-<scheduled minute since the epoch> and RayJob names are limited to 47 characters"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): it prefixes the names of the RayJobs created"
type RayCronJob struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the schedule and the RayJob template.
	// +optional
	Spec RayCronJobSpec `json:"spec,omitempty"`

	// status is the observed schedule state.
	// +optional
	Status RayCronJobStatus `json:"status,omitempty"`
}

// RayCronJobList is a list of RayCronJobs.
//
// +kubebuilder:object:root=true
type RayCronJobList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the RayCronJobs.
	Items []RayCronJob `json:"items"`
}
