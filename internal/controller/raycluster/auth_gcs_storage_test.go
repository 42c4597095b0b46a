package raycluster

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/featuregate"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// Integration tests of the auth-token Secret (spec.authOptions,
// https://docs.ray.io/en/latest/cluster/kubernetes/user-guides/kuberay-auth.html) and of the rocksdb
// GCS storage claim (spec.gcsFaultToleranceOptions.storage).

// fixedByteReader returns its current byte over and over, so that a generated token is known in
// advance and changing the byte shows whether a token was generated again.
type fixedByteReader struct{ b atomic.Uint32 }

func (r *fixedByteReader) Read(p []byte) (int, error) {
	v := byte(r.b.Load())
	for i := range p {
		p[i] = v
	}
	return len(p), nil
}

// use makes the reader return b for the rest of the test.
func (r *fixedByteReader) use(t *testing.T, b byte) {
	prev := r.b.Swap(uint32(b))
	t.Cleanup(func() { r.b.Store(prev) })
}

// tokenOf is the token newAuthToken makes from a fixedByteReader returning b.
func tokenOf(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), authTokenBytes) }

// setGate sets a feature gate of the suite's controller for the duration of the test.
func setGate(t *testing.T, f featuregate.Feature, on bool) {
	t.Helper()
	prev := gates.Enabled(f)
	if err := gates.SetFromMap(map[string]bool{string(f): on}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gates.SetFromMap(map[string]bool{string(f): prev}) })
}

func getSecret(t *testing.T, key types.NamespacedName) (*corev1.Secret, error) {
	t.Helper()
	var s corev1.Secret
	err := k8s.Get(context.Background(), key, &s)
	return &s, err
}

func getPVC(key types.NamespacedName) (*corev1.PersistentVolumeClaim, error) {
	var p corev1.PersistentVolumeClaim
	err := k8s.Get(context.Background(), key, &p)
	return &p, err
}

// checkAuthTokenEnv checks that the Ray container of every pod reads RAY_AUTH_TOKEN from the
// Secret's auth_token key.
func checkAuthTokenEnv(t *testing.T, pods []corev1.Pod, secret string) {
	t.Helper()
	for i := range pods {
		var mode, token *corev1.EnvVar
		for j, e := range rayContainerOf(&pods[i]).Env {
			switch e.Name {
			case resources.EnvAuthMode:
				mode = &rayContainerOf(&pods[i]).Env[j]
			case resources.EnvAuthToken:
				token = &rayContainerOf(&pods[i]).Env[j]
			}
		}
		if mode == nil || mode.Value != string(rayv1.AuthModeToken) {
			t.Errorf("pod %s: %s = %+v, want %q", pods[i].Name, resources.EnvAuthMode, mode, rayv1.AuthModeToken)
		}
		if token == nil || token.ValueFrom == nil || token.ValueFrom.SecretKeyRef == nil ||
			token.ValueFrom.SecretKeyRef.Name != secret || token.ValueFrom.SecretKeyRef.Key != "auth_token" {
			t.Errorf("pod %s: %s = %+v, want a secretKeyRef to %s/auth_token", pods[i].Name, resources.EnvAuthToken, token, secret)
		}
	}
}

func TestGeneratedAuthSecretIsCreatedOnceAndUsedByPods(t *testing.T) {
	tokenSource.use(t, 0x5a)
	ns := newNamespace(t)
	c := makeCluster(ns, "auth").workers("small", 1, 0, 10).obj()
	c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken}
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	uid := getCluster(t, key).UID

	secretKey := types.NamespacedName{Namespace: ns, Name: "auth"}
	secret, err := getSecret(t, secretKey)
	if err != nil {
		t.Fatalf("the auth Secret <cluster> was not created: %v", err)
	}
	if got := string(secret.Data["auth_token"]); got != tokenOf(0x5a) {
		t.Errorf("auth_token = %q, want the token made from the injected random source %q", got, tokenOf(0x5a))
	}
	if ref := metav1.GetControllerOf(secret); ref == nil || ref.UID != uid {
		t.Errorf("Secret controller = %+v, want the RayCluster (UID %s)", ref, uid)
	}
	eventually(t, "CreatedSecret event", hasEvent(t, key, corev1.EventTypeNormal, EventCreatedSecret, "auth"))
	checkAuthTokenEnv(t, listPods(t, ns, "", ""), "auth")

	// Never rotated: more reconciles, even ones that create pods, keep the Secret as it is.
	tokenSource.use(t, 0x11)
	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](2) })
	eventually(t, "2 workers", countPods(t, ns, rayv1.WorkerNode, "small", 2))
	eventually(t, "ready again", stateIs(t, key, rayv1.ClusterStateReady))
	waitObservedGeneration(t, key)
	waitReconciled(t, key)
	after, err := getSecret(t, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != secret.ResourceVersion || string(after.Data["auth_token"]) != tokenOf(0x5a) {
		t.Errorf("the Secret changed (resourceVersion %s -> %s, token %q): the token must never be rotated",
			secret.ResourceVersion, after.ResourceVersion, after.Data["auth_token"])
	}
	checkAuthTokenEnv(t, listPods(t, ns, "", ""), "auth")

	// The Secret watch brings the cluster back when its Secret is deleted; the new one has a new
	// token (what pods started from now on read).
	if err := k8s.Delete(context.Background(), after); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Secret to be recreated", func() error {
		s, err := getSecret(t, secretKey)
		if err != nil {
			return err
		}
		if s.UID == after.UID {
			return fmt.Errorf("still the deleted Secret")
		}
		if got := string(s.Data["auth_token"]); got != tokenOf(0x11) {
			return fmt.Errorf("token %q, want a fresh one %q", got, tokenOf(0x11))
		}
		return nil
	})
}

func TestUserAuthSecretMustExist(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "byo").workers("small", 1, 0, 10).obj()
	c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken, SecretName: ptr.To("my-token")}
	create(t, c)
	key := client.ObjectKeyFromObject(c)

	eventually(t, "ReplicaFailure naming the Secret", func() error {
		cond := findCondition(getCluster(t, key), rayv1.RayClusterReplicaFailure)
		if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != rayv1.AuthSecretNotFound || !strings.Contains(cond.Message, "my-token") {
			return fmt.Errorf("ReplicaFailure = %+v, want True/%s naming my-token", cond, rayv1.AuthSecretNotFound)
		}
		return nil
	})
	eventually(t, "a Warning event naming the Secret", hasEvent(t, key, corev1.EventTypeWarning, EventAuthSecretNotFound, "my-token"))
	if r := getCluster(t, key).Status.Reason; !strings.Contains(r, "my-token") {
		t.Errorf("status.reason %q does not name the missing Secret", r)
	}
	waitReconciled(t, key)
	if got := listPods(t, ns, "", ""); len(got) != 0 {
		t.Fatalf("pods created while their auth Secret is missing: %v", podNames(got))
	}
	if _, err := getSecret(t, types.NamespacedName{Namespace: ns, Name: "byo"}); !isNotFound(err) {
		t.Fatalf("the operator generated a Secret although the user names one (err %v)", err)
	}

	// The user's Secret appears: the watch brings the cluster back, which then starts.
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-token"},
		Data: map[string][]byte{"auth_token": []byte("users-own-token")}})
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	eventually(t, "ReplicaFailure removed", func() error {
		if cond := findCondition(getCluster(t, key), rayv1.RayClusterReplicaFailure); cond != nil {
			return fmt.Errorf("ReplicaFailure still %+v", cond)
		}
		return nil
	})
	checkAuthTokenEnv(t, listPods(t, ns, "", ""), "my-token")
	s, err := getSecret(t, types.NamespacedName{Namespace: ns, Name: "my-token"})
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Data["auth_token"]) != "users-own-token" || len(s.OwnerReferences) != 0 {
		t.Errorf("the user's Secret was modified: data %q, owners %+v", s.Data["auth_token"], s.OwnerReferences)
	}
}

// rocksDB returns gcsFaultToleranceOptions for the rocksdb backend with the given storage.
func rocksDB(st *rayv1.GcsStorage) *rayv1.GcsFaultToleranceOptions {
	return &rayv1.GcsFaultToleranceOptions{Backend: ptr.To(rayv1.GcsBackendRocksDB), Storage: st}
}

// ownedBy reports an error unless the claim's owner references are exactly a controller
// reference to uid (owned) or empty (not owned).
func ownedBy(key types.NamespacedName, uid types.UID, owned bool) func() error {
	return func() error {
		p, err := getPVC(key)
		if err != nil {
			return err
		}
		ref := metav1.GetControllerOf(p)
		switch {
		case owned && (len(p.OwnerReferences) != 1 || ref == nil || ref.UID != uid):
			return fmt.Errorf("owner references %+v, want a controller reference to the RayCluster %s", p.OwnerReferences, uid)
		case !owned && len(p.OwnerReferences) != 0:
			return fmt.Errorf("owner references %+v, want none (deletionPolicy Retain)", p.OwnerReferences)
		}
		return nil
	}
}

func TestRocksDBStorageClaim(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "rdb").workers("small", 1, 0, 10).obj()
	c.Spec.GcsFaultToleranceOptions = rocksDB(&rayv1.GcsStorage{
		Size: resourceQty("5Gi"), StorageClassName: ptr.To("fast"),
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
	})
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	cluster := getCluster(t, key)
	if len(cluster.Finalizers) != 0 {
		t.Errorf("finalizers %v on a rocksdb cluster, want none (the Redis clean-up is for the redis backend)", cluster.Finalizers)
	}

	pvcKey := types.NamespacedName{Namespace: ns, Name: "rdb-gcs-pvc"}
	pvc, err := getPVC(pvcKey)
	if err != nil {
		t.Fatalf("the GCS storage claim was not created: %v", err)
	}
	if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("5Gi")) != 0 {
		t.Errorf("size %s, want 5Gi", got.String())
	}
	if got := ptr.Deref(pvc.Spec.StorageClassName, ""); got != "fast" {
		t.Errorf("storageClassName %q, want fast", got)
	}
	if got := pvc.Spec.AccessModes; len(got) != 1 || got[0] != corev1.ReadWriteOncePod {
		t.Errorf("accessModes %v, want [ReadWriteOncePod]", got)
	}
	if err := ownedBy(pvcKey, cluster.UID, true)(); err != nil {
		t.Error(err)
	}
	eventually(t, "CreatedPVC event", hasEvent(t, key, corev1.EventTypeNormal, EventCreatedPVC, "rdb-gcs-pvc"))
	heads := listPods(t, ns, rayv1.HeadNode, "")
	if len(heads) != 1 {
		t.Fatalf("head pods %v, want 1", podNames(heads))
	}
	var claim string
	for _, v := range heads[0].Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != "rdb-gcs-pvc" {
		t.Errorf("head pod mounts claim %q, want rdb-gcs-pvc", claim)
	}

	// Created once: a new size is not applied to the existing claim.
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.GcsFaultToleranceOptions.Storage.Size = resourceQty("10Gi")
	})
	waitObservedGeneration(t, key)
	if p, err := getPVC(pvcKey); err != nil || p.ResourceVersion != pvc.ResourceVersion {
		t.Fatalf("the claim was changed after creation (err %v)", err)
	}

	// The owner reference follows deletionPolicy.
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.GcsFaultToleranceOptions.Storage.DeletionPolicy = ptr.To(rayv1.GcsStorageRetain)
	})
	eventually(t, "the owner reference removed (Retain)", ownedBy(pvcKey, cluster.UID, false))
	eventually(t, "UpdatedPVC event", hasEvent(t, key, corev1.EventTypeNormal, EventUpdatedPVC, "Retain"))
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.GcsFaultToleranceOptions.Storage.DeletionPolicy = ptr.To(rayv1.GcsStorageDeleteWithCluster)
	})
	eventually(t, "the owner reference back (DeleteWithCluster)", ownedBy(pvcKey, cluster.UID, true))
	if got := listPods(t, ns, "", ""); len(got) != 2 {
		t.Errorf("pods %v, want the 2 untouched pods", podNames(got))
	}
}

func TestRocksDBRetainedClaimIsCreatedWithoutOwner(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "keep").obj()
	c.Spec.GcsFaultToleranceOptions = rocksDB(&rayv1.GcsStorage{DeletionPolicy: ptr.To(rayv1.GcsStorageRetain)})
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	pvcKey := types.NamespacedName{Namespace: ns, Name: "keep-gcs-pvc"}
	if err := ownedBy(pvcKey, getCluster(t, key).UID, false)(); err != nil {
		t.Fatal(err)
	}
	pvc, _ := getPVC(pvcKey)
	if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("size %s, want the 1Gi default", got.String())
	}
	if got := pvc.Spec.AccessModes; len(got) != 1 || got[0] != corev1.ReadWriteOnce {
		t.Errorf("accessModes %v, want the [ReadWriteOnce] default", got)
	}
}

func TestRocksDBUserClaimIsOnlyChecked(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "own").obj()
	c.Spec.GcsFaultToleranceOptions = rocksDB(&rayv1.GcsStorage{ClaimName: "my-claim"})
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "a Warning event naming the claim", hasEvent(t, key, corev1.EventTypeWarning, EventGCSStoragePVCNotFound, "my-claim"))
	// The head pod is created anyway: it waits (Pending) for its claim like any pod.
	eventually(t, "the head pod", countPods(t, ns, rayv1.HeadNode, "", 1))
	var list corev1.PersistentVolumeClaimList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Fatalf("claims %v created although the user names one", list.Items)
	}

	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-claim"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		}}
	create(t, pvc)
	waitReconciled(t, key)
	got, err := getPVC(client.ObjectKeyFromObject(pvc))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.OwnerReferences) != 0 || got.ResourceVersion != pvc.ResourceVersion {
		t.Errorf("the user's claim was modified: owners %+v", got.OwnerReferences)
	}
}

func TestRocksDBRequiresFeatureGate(t *testing.T) {
	setGate(t, features.GCSFaultToleranceEmbeddedStorage, false)
	ns := newNamespace(t)
	c := makeCluster(ns, "nogate").workers("small", 1, 0, 10).obj()
	c.Spec.GcsFaultToleranceOptions = rocksDB(nil)
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "SpecValid=False naming the gate", func() error {
		cond := meta.FindStatusCondition(getCluster(t, key).Status.Conditions, string(rayv1.RayClusterSpecValid))
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != rayv1.InvalidRayClusterSpec ||
			!strings.Contains(cond.Message, string(features.GCSFaultToleranceEmbeddedStorage)) {
			return fmt.Errorf("RayClusterSpecValid = %+v, want False/%s naming %s", cond, rayv1.InvalidRayClusterSpec, features.GCSFaultToleranceEmbeddedStorage)
		}
		return nil
	})
	eventually(t, "a Warning event naming the gate", hasEvent(t, key, corev1.EventTypeWarning, rayv1.InvalidRayClusterSpec, string(features.GCSFaultToleranceEmbeddedStorage)))
	waitReconciled(t, key)
	if got := listPods(t, ns, "", ""); len(got) != 0 {
		t.Errorf("pods created for a rocksdb cluster with the gate off: %v", podNames(got))
	}
	if _, err := getPVC(types.NamespacedName{Namespace: ns, Name: "nogate-gcs-pvc"}); !isNotFound(err) {
		t.Errorf("GCS storage claim created with the gate off (err %v)", err)
	}
}
