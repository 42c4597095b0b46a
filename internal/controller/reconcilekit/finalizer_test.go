package reconcilekit_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

const finalizer = "ray.io/kit-test"

var _ = Describe("Finalizers", func() {
	var cm *corev1.ConfigMap
	BeforeEach(func(ctx context.Context) {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: newNamespace(ctx)}}
		Expect(k8s.Create(ctx, cm)).To(Succeed())
	})

	stored := func(ctx context.Context) *corev1.ConfigMap {
		got := &corev1.ConfigMap{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(cm), got)).To(Succeed())
		return got
	}

	It("adds a missing finalizer once and reports the patch", func(ctx context.Context) {
		added, err := reconcilekit.AddFinalizer(ctx, k8s, cm, finalizer)
		Expect(err).NotTo(HaveOccurred())
		Expect(added).To(BeTrue())
		Expect(stored(ctx).Finalizers).To(ConsistOf(finalizer))

		rv := stored(ctx).ResourceVersion
		added, err = reconcilekit.AddFinalizer(ctx, k8s, cm, finalizer)
		Expect(err).NotTo(HaveOccurred())
		Expect(added).To(BeFalse())
		Expect(stored(ctx).ResourceVersion).To(Equal(rv), "a finalizer already present was patched again")
	})

	It("refuses to patch a stale copy (optimistic lock)", func(ctx context.Context) {
		stale := cm.DeepCopy()
		cur := stored(ctx)
		cur.Data = map[string]string{"k": "v"}
		Expect(k8s.Update(ctx, cur)).To(Succeed())

		added, err := reconcilekit.AddFinalizer(ctx, k8s, stale, finalizer)
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(finalizer))
		Expect(added).To(BeFalse())
		Expect(stored(ctx).Finalizers).To(BeEmpty())
	})

	It("removes a finalizer, and lets a deleted object go", func(ctx context.Context) {
		_, err := reconcilekit.AddFinalizer(ctx, k8s, cm, finalizer)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Delete(ctx, cm)).To(Succeed())
		deleting := stored(ctx)
		Expect(deleting.DeletionTimestamp).NotTo(BeNil())

		removed, err := reconcilekit.RemoveFinalizer(ctx, k8s, deleting, finalizer)
		Expect(err).NotTo(HaveOccurred())
		Expect(removed).To(BeTrue())
		err = k8s.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the object outlived its last finalizer: %v", err)

		// The object is gone: removing again from the copy in hand is not an error.
		deleting.Finalizers = []string{finalizer}
		removed, err = reconcilekit.RemoveFinalizer(ctx, k8s, deleting, finalizer)
		Expect(err).NotTo(HaveOccurred())
		Expect(removed).To(BeTrue())
	})

	It("does not patch when the finalizer is absent", func(ctx context.Context) {
		rv := stored(ctx).ResourceVersion
		removed, err := reconcilekit.RemoveFinalizer(ctx, k8s, cm, finalizer)
		Expect(err).NotTo(HaveOccurred())
		Expect(removed).To(BeFalse())
		Expect(stored(ctx).ResourceVersion).To(Equal(rv))
	})
})
