package raycluster

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gomegatypes "github.com/onsi/gomega/types"

	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"

	corev1 "k8s.io/api/core/v1"
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

// use makes the reader return b for the rest of the spec.
func (r *fixedByteReader) use(b byte) {
	prev := r.b.Swap(uint32(b))
	DeferCleanup(func() { r.b.Store(prev) })
}

// tokenOf is the token newAuthToken makes from a fixedByteReader returning b.
func tokenOf(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), authTokenBytes) }

// setGate sets a feature gate of the suite's controller for the duration of the spec.
func setGate(f featuregate.Feature, on bool) {
	prev := gates.Enabled(f)
	Expect(gates.SetFromMap(map[string]bool{string(f): on})).To(Succeed())
	DeferCleanup(func() { _ = gates.SetFromMap(map[string]bool{string(f): prev}) })
}

func getSecret(key types.NamespacedName) (*corev1.Secret, error) {
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
func checkAuthTokenEnv(pods []corev1.Pod, secret string) {
	GinkgoHelper()
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
		Expect(mode).To(HaveField("Value", string(rayv1.AuthModeToken)), "pod %s: %s", pods[i].Name, resources.EnvAuthMode)
		Expect(token).To(HaveField("ValueFrom.SecretKeyRef", And(Not(BeNil()), HaveField("Name", secret), HaveField("Key", "auth_token"))),
			"pod %s: %s, want a secretKeyRef to %s/auth_token", pods[i].Name, resources.EnvAuthToken, secret)
	}
}

// rocksDB returns gcsFaultToleranceOptions for the rocksdb backend with the given storage.
func rocksDB(st *rayv1.GcsStorage) *rayv1.GcsFaultToleranceOptions {
	return &rayv1.GcsFaultToleranceOptions{Backend: ptr.To(rayv1.GcsBackendRocksDB), Storage: st}
}

// pvcOf returns a function fetching the claim, for Eventually.
func pvcOf(key types.NamespacedName) func() (*corev1.PersistentVolumeClaim, error) {
	return func() (*corev1.PersistentVolumeClaim, error) { return getPVC(key) }
}

// onlyControlledBy matches a claim whose one owner reference is a controller reference to owner.
func onlyControlledBy(owner *rayv1.RayCluster) gomegatypes.GomegaMatcher {
	return And(BeControlledBy(owner), HaveField("OwnerReferences", HaveLen(1)))
}

// unowned matches a claim without owner references (deletionPolicy Retain).
var unowned = HaveField("OwnerReferences", BeEmpty())

var _ = Describe("RayCluster auth token and GCS storage", func() {
	It("generated auth secret is created once and used by pods", func() {
		tokenSource.use(0x5a)
		ns := newNamespace()
		c := builders.RayCluster(ns, "auth").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")

		secretKey := types.NamespacedName{Namespace: ns, Name: "auth"}
		secret, err := getSecret(secretKey)
		Expect(err).NotTo(HaveOccurred(), "the auth Secret <cluster> was not created")
		Expect(string(secret.Data["auth_token"])).To(Equal(tokenOf(0x5a)), "auth_token, want the token made from the injected random source")
		Expect(secret).To(BeControlledBy(getCluster(key)))
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventCreatedSecret, "auth"), "CreatedSecret event")
		checkAuthTokenEnv(listPods(ns, "", ""), "auth")

		// Never rotated: more reconciles, even ones that create pods, keep the Secret as it is.
		tokenSource.use(0x11)
		updateCluster(key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](2) })
		Eventually(podNamesOf(ns, rayv1.WorkerNode, "small")).Should(HaveLen(2), "2 workers")
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready again")
		waitObservedGeneration(key)
		waitReconciled(key)
		after, err := getSecret(secretKey)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.ResourceVersion).To(Equal(secret.ResourceVersion), "the Secret changed: the token must never be rotated")
		Expect(string(after.Data["auth_token"])).To(Equal(tokenOf(0x5a)), "the Secret changed: the token must never be rotated")
		checkAuthTokenEnv(listPods(ns, "", ""), "auth")

		// The Secret watch brings the cluster back when its Secret is deleted; the new one has a new
		// token (what pods started from now on read).
		Expect(k8s.Delete(context.Background(), after)).To(Succeed())
		Eventually(func(g Gomega) {
			s, err := getSecret(secretKey)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.UID).NotTo(Equal(after.UID), "still the deleted Secret")
			g.Expect(string(s.Data["auth_token"])).To(Equal(tokenOf(0x11)), "want a fresh token")
		}).Should(Succeed(), "the Secret to be recreated")
	})

	It("user auth secret must exist", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "byo").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken, SecretName: ptr.To("my-token")}
		create(c)
		key := client.ObjectKeyFromObject(c)

		Eventually(clusterOf(key)).Should(And(
			HaveCondition(rayv1.RayClusterReplicaFailure, metav1.ConditionTrue, rayv1.AuthSecretNotFound),
			WithTransform(conditionMessage(rayv1.RayClusterReplicaFailure), ContainSubstring("my-token"))),
			"ReplicaFailure naming the Secret")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeWarning, EventAuthSecretNotFound, "my-token"), "a Warning event naming the Secret")
		Expect(getCluster(key).Status.Reason).To(ContainSubstring("my-token"), "status.reason does not name the missing Secret")
		waitReconciled(key)
		Expect(podNames(listPods(ns, "", ""))).To(BeEmpty(), "pods created while their auth Secret is missing")
		_, err := getSecret(types.NamespacedName{Namespace: ns, Name: "byo"})
		Expect(err).To(Satisfy(isNotFound), "the operator generated a Secret although the user names one")

		// The suite's cache, like the operator's, leaves users' Secrets out: what brings the
		// cluster back is a watch on that one name, kept only while the cluster waits.
		secretKey := types.NamespacedName{Namespace: ns, Name: "my-token"}
		Expect(reconciler.secretWaits.Watching()).To(ContainElement(secretKey), "no watch for the missing Secret")

		// The user's Secret appears: the watch brings the cluster back, which then starts.
		create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-token"},
			Data: map[string][]byte{"auth_token": []byte("users-own-token")}})
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		Eventually(clusterOf(key)).ShouldNot(HaveField("Status.Conditions",
			ContainElement(HaveField("Type", string(rayv1.RayClusterReplicaFailure)))), "ReplicaFailure removed")
		checkAuthTokenEnv(listPods(ns, "", ""), "my-token")
		Expect(reconciler.secretWaits.Watching()).NotTo(ContainElement(secretKey), "the watch outlived the wait")
		s, err := getSecret(secretKey)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["auth_token"])).To(Equal("users-own-token"), "the user's Secret was modified")
		Expect(s.OwnerReferences).To(BeEmpty(), "the user's Secret was modified")
	})

	It("RocksDB storage claim", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "rdb").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.GcsFaultToleranceOptions = rocksDB(&rayv1.GcsStorage{
			Size: resourceQty("5Gi"), StorageClassName: ptr.To("fast"),
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod},
		})
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		cluster := getCluster(key)
		Expect(cluster.Finalizers).To(BeEmpty(), "finalizers on a rocksdb cluster, want none (the Redis clean-up is for the redis backend)")

		pvcKey := types.NamespacedName{Namespace: ns, Name: "rdb-gcs-pvc"}
		pvc, err := getPVC(pvcKey)
		Expect(err).NotTo(HaveOccurred(), "the GCS storage claim was not created")
		Expect(pvc.Spec.Resources.Requests[corev1.ResourceStorage]).To(BeComparableTo(resource.MustParse("5Gi")), "size")
		Expect(pvc.Spec.StorageClassName).To(HaveValue(Equal("fast")), "storageClassName")
		Expect(pvc.Spec.AccessModes).To(Equal([]corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}), "accessModes")
		Expect(pvc).To(onlyControlledBy(cluster))
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventCreatedPVC, "rdb-gcs-pvc"), "CreatedPVC event")
		heads := listPods(ns, rayv1.HeadNode, "")
		Expect(podNames(heads)).To(HaveLen(1), "head pods")
		var claim string
		for _, v := range heads[0].Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		Expect(claim).To(Equal("rdb-gcs-pvc"), "the claim the head pod mounts")

		// Created once: a new size is not applied to the existing claim.
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.GcsFaultToleranceOptions.Storage.Size = resourceQty("10Gi")
		})
		waitObservedGeneration(key)
		Expect(getPVC(pvcKey)).To(HaveField("ResourceVersion", pvc.ResourceVersion), "the claim was changed after creation")

		// The owner reference follows deletionPolicy.
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.GcsFaultToleranceOptions.Storage.DeletionPolicy = ptr.To(rayv1.GcsStorageRetain)
		})
		Eventually(pvcOf(pvcKey)).Should(unowned, "the owner reference removed (Retain)")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeNormal, EventUpdatedPVC, "Retain"), "UpdatedPVC event")
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Spec.GcsFaultToleranceOptions.Storage.DeletionPolicy = ptr.To(rayv1.GcsStorageDeleteWithCluster)
		})
		Eventually(pvcOf(pvcKey)).Should(onlyControlledBy(cluster), "the owner reference back (DeleteWithCluster)")
		Expect(podNames(listPods(ns, "", ""))).To(HaveLen(2), "want the 2 untouched pods")
	})

	It("RocksDB retained claim is created without owner", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "keep").Obj()
		c.Spec.GcsFaultToleranceOptions = rocksDB(&rayv1.GcsStorage{DeletionPolicy: ptr.To(rayv1.GcsStorageRetain)})
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		pvcKey := types.NamespacedName{Namespace: ns, Name: "keep-gcs-pvc"}
		pvc, err := getPVC(pvcKey)
		Expect(err).NotTo(HaveOccurred())
		Expect(pvc).To(unowned)
		Expect(pvc.Spec.Resources.Requests[corev1.ResourceStorage]).To(BeComparableTo(resource.MustParse("1Gi")), "size, want the 1Gi default")
		Expect(pvc.Spec.AccessModes).To(Equal([]corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}), "accessModes, want the [ReadWriteOnce] default")
	})

	It("RocksDB user claim is only checked", func() {
		ns := newNamespace()
		c := builders.RayCluster(ns, "own").Obj()
		c.Spec.GcsFaultToleranceOptions = rocksDB(&rayv1.GcsStorage{ClaimName: "my-claim"})
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeWarning, EventGCSStoragePVCNotFound, "my-claim"), "a Warning event naming the claim")
		// The head pod is created anyway: it waits (Pending) for its claim like any pod.
		Eventually(podNamesOf(ns, rayv1.HeadNode, "")).Should(HaveLen(1), "the head pod")
		var list corev1.PersistentVolumeClaimList
		Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
		Expect(list.Items).To(BeEmpty(), "claims created although the user names one")

		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-claim"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			}}
		create(pvc)
		waitReconciled(key)
		got, err := getPVC(client.ObjectKeyFromObject(pvc))
		Expect(err).NotTo(HaveOccurred())
		Expect(got.OwnerReferences).To(BeEmpty(), "the user's claim was modified")
		Expect(got.ResourceVersion).To(Equal(pvc.ResourceVersion), "the user's claim was modified")
	})

	It("RocksDB requires feature gate", func() {
		setGate(features.GCSFaultToleranceEmbeddedStorage, false)
		ns := newNamespace()
		c := builders.RayCluster(ns, "nogate").WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.GcsFaultToleranceOptions = rocksDB(nil)
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(And(
			HaveCondition(rayv1.RayClusterSpecValid, metav1.ConditionFalse, rayv1.InvalidRayClusterSpec),
			WithTransform(conditionMessage(rayv1.RayClusterSpecValid), ContainSubstring(string(features.GCSFaultToleranceEmbeddedStorage)))),
			"SpecValid=False naming the gate")
		Eventually(eventsOf(key)).Should(HaveEvent(corev1.EventTypeWarning, rayv1.InvalidRayClusterSpec, string(features.GCSFaultToleranceEmbeddedStorage)), "a Warning event naming the gate")
		waitReconciled(key)
		Expect(podNames(listPods(ns, "", ""))).To(BeEmpty(), "pods created for a rocksdb cluster with the gate off")
		_, err := getPVC(types.NamespacedName{Namespace: ns, Name: "nogate-gcs-pvc"})
		Expect(err).To(Satisfy(isNotFound), "GCS storage claim created with the gate off")
	})
})
