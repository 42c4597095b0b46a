package rayjob

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/dashboardresolver"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// lastAppliedAnnotation is kubectl's copy of the applied object; it describes the RayJob, not the
// cluster, so it is not copied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// BuildRayCluster builds the RayCluster of the current attempt (named status.rayClusterName):
// labels and annotations of the RayJob plus the originated-from and submission-mode labels, a deep
// copy of spec.rayClusterSpec, and in SidecarMode the submitter container appended to the head
// pod, which then must not restart nor be recreated.
func BuildRayCluster(job *rayv1.RayJob) (*rayv1.RayCluster, error) {
	if job.Spec.RayClusterSpec == nil {
		return nil, fmt.Errorf("spec.rayClusterSpec is not set")
	}
	labels := mergeLabels(job.Labels, map[string]string{
		rayv1.RayOriginatedFromCRNameLabelKey: job.Name,
		rayv1.RayOriginatedFromCRDLabelKey:    string(rayv1.RayJobCRD),
		rayv1.RayJobSubmissionModeLabelKey:    string(mode(job)),
	})
	annotations := map[string]string{}
	for k, v := range job.Annotations {
		if k != lastAppliedAnnotation {
			annotations[k] = v
		}
	}
	rc := &rayv1.RayCluster{
		TypeMeta: metav1.TypeMeta{APIVersion: rayv1.GroupVersion.String(), Kind: "RayCluster"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            job.Status.RayClusterName,
			Namespace:       job.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{ownerReference(job)},
		},
		Spec: *job.Spec.RayClusterSpec.DeepCopy(),
	}
	if job.Spec.SubmissionMode == rayv1.SidecarMode {
		head := &rc.Spec.HeadGroupSpec.Template.Spec
		ctr, err := BuildSidecarSubmitter(job, headImage(&rc.Spec), resources.DashboardPort(rc))
		if err != nil {
			return nil, err
		}
		head.Containers = append(head.Containers, ctr)
		head.RestartPolicy = corev1.RestartPolicyNever
		rc.Annotations[rayv1.DisableProvisionedHeadRestartAnnotationKey] = "true"
	}
	if len(rc.Annotations) == 0 {
		rc.Annotations = nil
	}
	return rc, nil
}

// ownerReference makes the RayJob the controller of what it creates, so deleting it deletes them.
func ownerReference(job *rayv1.RayJob) metav1.OwnerReference {
	return *metav1.NewControllerRef(job, rayv1.GroupVersion.WithKind(string(rayv1.RayJobCRD)))
}

// dashboardAddress is status.dashboardURL: host:port of the head Service's cluster DNS name.
func dashboardAddress(cluster *rayv1.RayCluster, cfg Config) string {
	return dashboardresolver.DashboardAddress(cluster, cfg.Resources)
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
