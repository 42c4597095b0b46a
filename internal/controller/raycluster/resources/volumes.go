package resources

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// Volumes the operator adds to Ray pods.
const (
	sharedMemVolumeName  = "shared-mem"
	sharedMemMountPath   = "/dev/shm"
	rayLogsVolumeName    = "ray-logs"
	rayLogsMountPath     = "/tmp/ray"
	gcsStorageVolumeName = "gcs-storage"
	gcsStorageMountPath  = "/data/gcs"
	rayTokenVolumeName   = "ray-token"
	rayTokenMountPath    = "/var/run/secrets/ray.io/serviceaccount"
	rayTokenPath         = "token"
	rayTokenExpirySecs   = 3600
)

func hasVolume(spec *corev1.PodSpec, name string) bool {
	return slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
}

func mountsPath(ctr *corev1.Container, path string) bool {
	return slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == path })
}

// addVolumeMount mounts m into ctr unless something is already mounted at that path.
func addVolumeMount(ctr *corev1.Container, m corev1.VolumeMount) {
	if !mountsPath(ctr, m.MountPath) {
		ctr.VolumeMounts = append(ctr.VolumeMounts, m)
	}
}

// addVolume adds v to the pod unless a volume of that name exists.
func addVolume(spec *corev1.PodSpec, v corev1.Volume) {
	if !hasVolume(spec, v.Name) {
		spec.Volumes = append(spec.Volumes, v)
	}
}

// addSharedMemory backs /dev/shm of the Ray container with memory, sized like the container's
// memory limit (or request), so that Ray's object store does not spill to disk. Nothing is done
// when the container already mounts /dev/shm.
func addSharedMemory(spec *corev1.PodSpec, ctr *corev1.Container) {
	if mountsPath(ctr, sharedMemMountPath) {
		return
	}
	var size *resource.Quantity
	if q, ok := ctr.Resources.Limits[corev1.ResourceMemory]; ok && !q.IsZero() {
		size = ptr.To(q.DeepCopy())
	} else if q, ok := ctr.Resources.Requests[corev1.ResourceMemory]; ok && !q.IsZero() {
		size = ptr.To(q.DeepCopy())
	}
	addVolume(spec, corev1.Volume{Name: sharedMemVolumeName, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: size},
	}})
	ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: sharedMemVolumeName, MountPath: sharedMemMountPath})
}

// addRayLogs shares /tmp/ray between the given containers through an emptyDir.
func addRayLogs(spec *corev1.PodSpec, ctrs ...*corev1.Container) {
	addVolume(spec, corev1.Volume{Name: rayLogsVolumeName, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{},
	}})
	for _, ctr := range ctrs {
		addVolumeMount(ctr, corev1.VolumeMount{Name: rayLogsVolumeName, MountPath: rayLogsMountPath})
	}
}

// rayTokenVolume is the projected service-account token Ray presents when authentication is
// delegated to Kubernetes.
func rayTokenVolume() corev1.Volume {
	return corev1.Volume{Name: rayTokenVolumeName, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Path:              rayTokenPath,
				ExpirationSeconds: ptr.To[int64](rayTokenExpirySecs),
			},
		}}},
	}}
}
