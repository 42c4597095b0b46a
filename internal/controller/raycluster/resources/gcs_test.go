package resources

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func TestBuildRedisCleanupJob(t *testing.T) {
	c := testCluster()
	if BuildRedisCleanupJob(c, testOptions()) != nil {
		t.Fatalf("clean-up job built without fault tolerance")
	}
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)
	c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{RedisAddress: "redis:6379"}
	job := BuildRedisCleanupJob(c, testOptions())
	if job == nil {
		t.Fatal("no clean-up job")
	}
	if job.Name != "rc-redis-cleanup" || job.Namespace != "ns" || len(job.OwnerReferences) != 1 {
		t.Errorf("metadata = %+v", job.ObjectMeta)
	}
	if job.Labels[rayv1.RayNodeTypeLabelKey] != "redis-cleanup" || job.Spec.Template.Labels[rayv1.RayNodeTypeLabelKey] != "redis-cleanup" {
		t.Errorf("labels = %v / %v", job.Labels, job.Spec.Template.Labels)
	}
	if job.Annotations[rayv1.RayExternalStorageNSAnnotationKey] != testUID {
		t.Errorf("annotations = %v", job.Annotations)
	}
	if _, ok := job.Annotations[PodTemplateHashAnnotationKey]; ok {
		t.Errorf("pod template hash copied onto the job")
	}
	if *job.Spec.BackoffLimit != 0 || *job.Spec.ActiveDeadlineSeconds != 300 {
		t.Errorf("backoffLimit %d activeDeadline %d", *job.Spec.BackoffLimit, *job.Spec.ActiveDeadlineSeconds)
	}
	spec := job.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever || len(spec.Containers) != 1 {
		t.Fatalf("restartPolicy %q, %d containers (want Never and only the Ray container)", spec.RestartPolicy, len(spec.Containers))
	}
	ctr := spec.Containers[0]
	if ctr.LivenessProbe != nil || ctr.ReadinessProbe != nil {
		t.Errorf("probes kept")
	}
	if diff := cmp.Diff([]string{"/bin/bash", "-c", "--"}, ctr.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if !strings.Contains(ctr.Args[0], "cleanup_redis_storage") || !strings.Contains(ctr.Args[0], "RAY_external_storage_namespace") {
		t.Errorf("args = %q", ctr.Args[0])
	}
	mustEnv(t, &ctr, EnvRedisAddress, "redis:6379")
	mustEnv(t, &ctr, EnvExternalStorageNS, testUID)
	mustEnv(t, &ctr, EnvRedisDBConnectRetries, "120")
	mustEnv(t, &ctr, EnvRedisDBConnectWaitMs, "500")
	if diff := cmp.Diff(fixedResources("200m", "256Mi"), ctr.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
}

func TestBuildGCSStoragePVC(t *testing.T) {
	c := testCluster()
	if BuildGCSStoragePVC(c) != nil {
		t.Fatal("pvc built without rocksdb")
	}
	c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{Backend: ptr.To(rayv1.GcsBackendRocksDB)}
	pvc := BuildGCSStoragePVC(c)
	if pvc == nil || pvc.Name != "rc-gcs-pvc" || len(pvc.OwnerReferences) != 1 {
		t.Fatalf("pvc = %+v", pvc)
	}
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("size = %v", q)
	}
	if diff := cmp.Diff([]corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, pvc.Spec.AccessModes); diff != "" {
		t.Errorf("access modes (-want +got):\n%s", diff)
	}

	c.Spec.GcsFaultToleranceOptions.Storage = &rayv1.GcsStorage{
		Size: ptr.To(resource.MustParse("5Gi")), StorageClassName: ptr.To("fast"),
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, DeletionPolicy: ptr.To(rayv1.GcsStorageRetain),
	}
	pvc = BuildGCSStoragePVC(c)
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("5Gi")) != 0 || *pvc.Spec.StorageClassName != "fast" ||
		pvc.Spec.AccessModes[0] != corev1.ReadWriteMany || len(pvc.OwnerReferences) != 0 {
		t.Errorf("pvc = %+v", pvc)
	}

	c.Spec.GcsFaultToleranceOptions.Storage = &rayv1.GcsStorage{ClaimName: "mine"}
	if BuildGCSStoragePVC(c) != nil {
		t.Errorf("pvc built for a user claim")
	}
	if GCSPVCName(c) != "mine" {
		t.Errorf("GCSPVCName = %q", GCSPVCName(c))
	}
}
