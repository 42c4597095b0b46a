package resources

import (
	"maps"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

const (
	defaultGCSStorageSize = "1Gi"
	// redisCleanupDeadlineSeconds bounds the clean-up Job: it is best effort.
	redisCleanupDeadlineSeconds = 300
	redisCleanupConnectRetries  = "120"
	redisCleanupConnectWaitMs   = "500"
)

// GCSFaultToleranceEnabled reports whether the head keeps its GCS state outside the pod, through
// gcsFaultToleranceOptions or the legacy ray.io/ft-enabled annotation.
func GCSFaultToleranceEnabled(c *rayv1.RayCluster) bool {
	return c.Spec.GcsFaultToleranceOptions != nil || strings.EqualFold(c.Annotations[rayv1.RayFTEnabledAnnotationKey], "true")
}

// gcsBackend is the configured backend, redis when unset.
func gcsBackend(ft *rayv1.GcsFaultToleranceOptions) rayv1.GcsFaultToleranceBackend {
	if ft == nil || ft.Backend == nil || *ft.Backend == "" {
		return rayv1.GcsBackendRedis
	}
	return *ft.Backend
}

// UsesRedisGCS reports whether fault tolerance is on with the Redis backend, i.e. whether the
// cluster needs the Redis clean-up finalizer and Job.
func UsesRedisGCS(c *rayv1.RayCluster) bool {
	return GCSFaultToleranceEnabled(c) && gcsBackend(c.Spec.GcsFaultToleranceOptions) == rayv1.GcsBackendRedis
}

// UsesRocksDBGCS reports whether fault tolerance is on with the embedded RocksDB backend.
func UsesRocksDBGCS(c *rayv1.RayCluster) bool {
	return GCSFaultToleranceEnabled(c) && gcsBackend(c.Spec.GcsFaultToleranceOptions) == rayv1.GcsBackendRocksDB
}

// ExternalStorageNamespace is the Redis key namespace of the cluster: gcsFaultToleranceOptions,
// else the legacy annotation, else the RayCluster UID.
func ExternalStorageNamespace(c *rayv1.RayCluster) string {
	if ft := c.Spec.GcsFaultToleranceOptions; ft != nil && ft.ExternalStorageNamespace != "" {
		return ft.ExternalStorageNamespace
	}
	if v, ok := c.Annotations[rayv1.RayExternalStorageNSAnnotationKey]; ok {
		return v
	}
	return string(c.UID)
}

// configureGCSFaultTolerance records whether fault tolerance is on in the pod annotations and sets
// what the Ray container needs: on the head the storage settings, on workers a long GCS reconnect
// timeout so that they survive a head restart.
func configureGCSFaultTolerance(c *rayv1.RayCluster, nodeType rayv1.RayNodeType, pod *corev1.Pod, ctr *corev1.Container) {
	enabled := GCSFaultToleranceEnabled(c)
	if nodeType == rayv1.HeadNode {
		// Only the head records it, as in KubeRay: it is the head whose restart keeps state.
		pod.Annotations[rayv1.RayFTEnabledAnnotationKey] = strconv.FormatBool(enabled)
	}
	if !enabled {
		return
	}
	if nodeType == rayv1.WorkerNode {
		// Ray's default (60s) is shorter than a typical head restart.
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvGCSReconnectTimeout, Value: defaultWorkerGCSReconnectS})
		return
	}

	ft := c.Spec.GcsFaultToleranceOptions
	if gcsBackend(ft) == rayv1.GcsBackendRocksDB {
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvGCSStorage, Value: string(rayv1.GcsBackendRocksDB)})
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvGCSStoragePath, Value: gcsStorageMountPath})
		addVolume(&pod.Spec, corev1.Volume{Name: gcsStorageVolumeName, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: GCSPVCName(c)},
		}})
		m := corev1.VolumeMount{Name: gcsStorageVolumeName, MountPath: gcsStorageMountPath}
		if ft.Storage != nil {
			m.SubPath = ft.Storage.SubPath
		}
		addVolumeMount(ctr, m)
		return
	}

	if !envExists(ctr.Env, EnvExternalStorageNS) {
		ns := ExternalStorageNamespace(c)
		pod.Annotations[rayv1.RayExternalStorageNSAnnotationKey] = ns
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: EnvExternalStorageNS, Value: ns})
	}
	if ft == nil {
		return // legacy annotation: the user sets RAY_REDIS_ADDRESS themselves
	}
	if ft.RedisAddress != "" {
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvRedisAddress, Value: ft.RedisAddress})
	}
	if ft.RedisUsername != nil {
		addEnvIfAbsent(ctr, credentialEnv(EnvRedisUsername, ft.RedisUsername))
	}
	if ft.RedisPassword != nil {
		addEnvIfAbsent(ctr, credentialEnv(EnvRedisPassword, ft.RedisPassword))
	}
}

func credentialEnv(name string, cred *rayv1.RedisCredential) corev1.EnvVar {
	return corev1.EnvVar{Name: name, Value: cred.Value, ValueFrom: cred.ValueFrom.DeepCopy()}
}

// redisCleanupScript deletes the cluster's keys from the first Redis address in RAY_REDIS_ADDRESS
// using Ray's own helper, and exits non-zero when it could not.
const redisCleanupScript = `echo "Removing this RayCluster's GCS data from Redis. If this Job fails, delete the storage namespace from Redis by hand (see https://docs.ray.io/en/master/cluster/kubernetes/user-guides/kuberay-gcs-ft.html)." && ` +
	`python -c "` +
	`import os, sys; ` +
	`from urllib.parse import urlparse; ` +
	`from ray._private.gcs_utils import cleanup_redis_storage; ` +
	`address = os.getenv('RAY_REDIS_ADDRESS', '').split(',')[0]; ` +
	`address = address if '://' in address else 'redis://' + address; ` +
	`url = urlparse(address); ` +
	`ok = cleanup_redis_storage(host=url.hostname, port=url.port, username=os.getenv('REDIS_USERNAME', url.username), password=os.getenv('REDIS_PASSWORD', url.password), use_ssl=url.scheme == 'rediss', storage_namespace=os.getenv('RAY_external_storage_namespace')); ` +
	`sys.exit(0 if ok else 1)"`

// BuildRedisCleanupJob builds the Job that removes the cluster's GCS data from Redis after the
// cluster's pods are gone. It runs the head's Ray container (image, env, mounts) with a clean-up
// script instead of "ray start". It returns nil when the cluster does not use Redis fault
// tolerance.
func BuildRedisCleanupJob(c *rayv1.RayCluster, o Options) *batchv1.Job {
	if !UsesRedisGCS(c) {
		return nil
	}
	head := buildHeadPod(c, o)
	if len(head.Spec.Containers) == 0 {
		return nil
	}
	head.Labels[rayv1.RayNodeTypeLabelKey] = string(rayv1.RedisCleanupNode)
	delete(head.Annotations, PodTemplateHashAnnotationKey)

	ctr := head.Spec.Containers[RayContainerIndex()]
	ctr.Command = []string{shellCommand, shellFlag(o), "--"}
	ctr.Args = []string{redisCleanupScript}
	// No Ray processes run in this pod, so there is nothing to probe.
	ctr.LivenessProbe = nil
	ctr.ReadinessProbe = nil
	ctr.StartupProbe = nil
	// Give Redis at least a minute to answer.
	setEnv(&ctr, corev1.EnvVar{Name: EnvRedisDBConnectRetries, Value: redisCleanupConnectRetries})
	setEnv(&ctr, corev1.EnvVar{Name: EnvRedisDBConnectWaitMs, Value: redisCleanupConnectWaitMs})
	// The script is small; never hold on to the head's GPUs or large memory.
	ctr.Resources = fixedResources("200m", "256Mi")
	head.Spec.Containers = []corev1.Container{ctr}
	head.Spec.RestartPolicy = corev1.RestartPolicyNever

	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            RedisCleanupJobName(c),
			Namespace:       c.Namespace,
			Labels:          maps.Clone(head.Labels),
			Annotations:     maps.Clone(head.Annotations),
			OwnerReferences: ownerRefs(c),
		},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: head.Labels, Annotations: head.Annotations},
				Spec:       head.Spec,
			},
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: ptr.To[int64](redisCleanupDeadlineSeconds),
		},
	}
}

// BuildGCSStoragePVC builds the PersistentVolumeClaim of the rocksdb GCS backend. It returns nil
// when the backend is not rocksdb or the user brings their own claim (storage.claimName). The
// claim is owned by the cluster unless deletionPolicy is Retain.
func BuildGCSStoragePVC(c *rayv1.RayCluster) *corev1.PersistentVolumeClaim {
	if !UsesRocksDBGCS(c) {
		return nil
	}
	st := c.Spec.GcsFaultToleranceOptions.Storage
	if st == nil {
		st = &rayv1.GcsStorage{}
	}
	if st.ClaimName != "" {
		return nil
	}
	size := resource.MustParse(defaultGCSStorageSize)
	if st.Size != nil {
		size = st.Size.DeepCopy()
	}
	modes := st.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      GCSPVCName(c),
			Namespace: c.Namespace,
			Labels:    operatorLabels(c.Name),
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      append([]corev1.PersistentVolumeAccessMode(nil), modes...),
			StorageClassName: copyPtr(st.StorageClassName),
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}
	if st.DeletionPolicy == nil || *st.DeletionPolicy != rayv1.GcsStorageRetain {
		pvc.OwnerReferences = ownerRefs(c)
	}
	return pvc
}

// fixedResources sets requests equal to limits.
func fixedResources(cpu, memory string) corev1.ResourceRequirements {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory),
	}
	return corev1.ResourceRequirements{Limits: rl, Requests: rl.DeepCopy()}
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
