package resources

import (
	"fmt"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Length limits of generated names.
const (
	// maxGenerateNamePrefix leaves room for "-worker-" and the five random characters the API server
	// appends, so that a generated pod name stays a 63-character DNS label.
	maxGenerateNamePrefix = 50
	// maxClippedName is the length RBAC object names are clipped to.
	maxClippedName = 50
	// maxLabelValue is the longest label value Kubernetes accepts.
	maxLabelValue = 63
)

// Name suffixes of generated objects.
const (
	headServiceSuffix     = "head-svc"
	serveServiceSuffix    = "serve-svc"
	headlessServiceSuffix = "headless"
	ingressSuffix         = "head-ingress"
	redisCleanupSuffix    = "redis-cleanup"
	gcsPVCSuffix          = "gcs-pvc"
)

// RayContainerIndex is the index of the Ray container in head and worker pod templates. Everything
// the operator injects targets this container.
func RayContainerIndex() int { return 0 }

// NewestHeadPod returns the most recently created head pod among pods that is controlled by c and
// not being deleted, or nil when there is none. It returns a pointer into pods.
func NewestHeadPod(c *rayv1.RayCluster, pods []corev1.Pod) *corev1.Pod {
	var newest *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Labels[rayv1.RayNodeTypeLabelKey] != string(rayv1.HeadNode) || !metav1.IsControlledBy(p, c) || p.DeletionTimestamp != nil {
			continue
		}
		if newest == nil || p.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = p
		}
	}
	return newest
}

// PodRunningAndReady reports whether a pod is in phase Running with its Ready condition true.
func PodRunningAndReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// HeadPodName is the fixed head pod name used when Options.DeterministicHeadPodName is set:
// "<cluster>-head", lowercased, with the cluster part truncated like a generateName prefix.
func HeadPodName(c *rayv1.RayCluster) string {
	return strings.TrimSuffix(HeadPodGenerateName(c), "-")
}

// HeadPodGenerateName is the generateName of head pods: "<cluster>-head-".
func HeadPodGenerateName(c *rayv1.RayCluster) string {
	return podGenerateName(c.Name, rayv1.HeadNode)
}

// WorkerPodGenerateName is the generateName of the pods of a worker group:
// "<cluster>-<group>-worker-".
func WorkerPodGenerateName(c *rayv1.RayCluster, group string) string {
	return podGenerateName(c.Name+"-"+group, rayv1.WorkerNode)
}

// podGenerateName truncates prefix to maxGenerateNamePrefix characters, appends "-<type>-" and
// lowercases the result.
func podGenerateName(prefix string, nodeType rayv1.RayNodeType) string {
	if len(prefix) > maxGenerateNamePrefix {
		prefix = prefix[:maxGenerateNamePrefix]
	}
	return strings.ToLower(prefix + "-" + string(nodeType) + "-")
}

// HeadServiceName is the name of the head Service: headGroupSpec.headService.metadata.name when
// given, otherwise "<cluster>-head-svc".
func HeadServiceName(c *rayv1.RayCluster) string {
	if hs := c.Spec.HeadGroupSpec.HeadService; hs != nil && hs.Name != "" {
		return hs.Name
	}
	return c.Name + "-" + headServiceSuffix
}

// ServeServiceName is the name of the serve Service of a standalone RayCluster.
func ServeServiceName(c *rayv1.RayCluster) string { return c.Name + "-" + serveServiceSuffix }

// HeadlessWorkerServiceName is the name of the headless Service of multi-host worker groups.
func HeadlessWorkerServiceName(c *rayv1.RayCluster) string {
	return c.Name + "-" + headlessServiceSuffix
}

// IngressName is the name of the dashboard Ingress.
func IngressName(c *rayv1.RayCluster) string { return c.Name + "-" + ingressSuffix }

// RedisCleanupJobName is the name of the Job that removes a deleted cluster's keys from Redis.
func RedisCleanupJobName(c *rayv1.RayCluster) string {
	return trimToLabel(c.Name + "-" + redisCleanupSuffix)
}

// GCSPVCName is the name of the PersistentVolumeClaim of the rocksdb GCS backend: the user's
// storage.claimName when given, otherwise "<cluster>-gcs-pvc".
func GCSPVCName(c *rayv1.RayCluster) string {
	if ft := c.Spec.GcsFaultToleranceOptions; ft != nil && ft.Storage != nil && ft.Storage.ClaimName != "" {
		return ft.Storage.ClaimName
	}
	return c.Name + "-" + gcsPVCSuffix
}

// AutoscalerRBACName is the name of the autoscaler Role and RoleBinding (and of its
// ServiceAccount unless the head template names one).
func AutoscalerRBACName(c *rayv1.RayCluster) string { return clipName(c.Name) }

// HeadServiceAccountName is the service account of the head pod when autoscaling is on: the one the
// head template names, or the operator-created "<cluster>".
func HeadServiceAccountName(c *rayv1.RayCluster) string {
	if sa := c.Spec.HeadGroupSpec.Template.Spec.ServiceAccountName; sa != "" {
		return clipName(sa)
	}
	return clipName(c.Name)
}

// HeadServiceFQDN is the in-cluster DNS name of the head Service:
// "<head-svc>.<namespace>.svc.<cluster domain>".
func HeadServiceFQDN(c *rayv1.RayCluster, o Options) string {
	domain := o.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	return fmt.Sprintf("%s.%s.svc.%s", HeadServiceName(c), c.Namespace, domain)
}

// identifier is the ray.io/identifier label value: "<cluster>-head" or "<cluster>-worker".
func identifier(cluster string, nodeType rayv1.RayNodeType) string {
	return trimToLabel(cluster + "-" + string(nodeType))
}

// clipName keeps the last maxClippedName characters of s and makes sure it starts with a letter.
func clipName(s string) string {
	if len(s) > maxClippedName {
		s = s[len(s)-maxClippedName:]
	}
	return fixFirstChar(s)
}

// trimToLabel keeps the last 63 characters of s and makes sure it starts with a letter.
func trimToLabel(s string) string {
	if len(s) > maxLabelValue {
		s = s[len(s)-maxLabelValue:]
	}
	return fixFirstChar(s)
}

func fixFirstChar(s string) string {
	if s == "" {
		return s
	}
	if r := rune(s[0]); unicode.IsDigit(r) || unicode.IsPunct(r) {
		s = "r" + s[1:]
	}
	return s
}

// OwnerReference is the controller reference every child of c carries.
func OwnerReference(c *rayv1.RayCluster) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         rayv1.GroupVersion.String(),
		Kind:               "RayCluster",
		Name:               c.Name,
		UID:                c.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

func ownerRefs(c *rayv1.RayCluster) []metav1.OwnerReference {
	return []metav1.OwnerReference{OwnerReference(c)}
}

// ClusterSelector selects every Ray pod of the cluster.
func ClusterSelector(cluster string) map[string]string {
	return map[string]string{rayv1.RayClusterLabelKey: cluster}
}

// WorkerSelector selects every worker pod of the cluster.
func WorkerSelector(cluster string) map[string]string {
	return map[string]string{
		rayv1.RayClusterLabelKey:  cluster,
		rayv1.RayNodeTypeLabelKey: string(rayv1.WorkerNode),
	}
}

// operatorLabels are the labels of non-pod children (RBAC, Ingress).
func operatorLabels(cluster string) map[string]string {
	return map[string]string{
		rayv1.RayClusterLabelKey:                cluster,
		rayv1.KubernetesApplicationNameLabelKey: rayv1.ApplicationName,
		rayv1.KubernetesCreatedByLabelKey:       rayv1.ComponentName,
	}
}

// creatorCRD is the kind that created the cluster: o.CreatorCRD, else the cluster's
// ray.io/originated-from-crd label, else RayCluster.
func creatorCRD(c *rayv1.RayCluster, o Options) rayv1.CRDType {
	if o.CreatorCRD != "" {
		return rayv1.CRDType(o.CreatorCRD)
	}
	switch v := rayv1.CRDType(c.Labels[rayv1.RayOriginatedFromCRDLabelKey]); v {
	case rayv1.RayJobCRD, rayv1.RayServiceCRD:
		return v
	}
	return rayv1.RayClusterCRD
}

// rayContainer returns the Ray container of a pod spec, or nil when the spec has no container.
func rayContainer(spec *corev1.PodSpec) *corev1.Container {
	if len(spec.Containers) <= RayContainerIndex() {
		return nil
	}
	return &spec.Containers[RayContainerIndex()]
}
