package reconcilekit_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

func service(ns, selector string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: ns, Labels: map[string]string{"app": "kit"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"ray.io/cluster": selector},
			Ports:    []corev1.ServicePort{{Name: "serve", Port: 8000, TargetPort: intstr.FromInt32(8000)}},
		},
	}
}

// managers returns the field managers of obj with the operation each used.
func managers(obj client.Object) map[string]metav1.ManagedFieldsOperationType {
	out := map[string]metav1.ManagedFieldsOperationType{}
	for _, m := range obj.GetManagedFields() {
		out[m.Manager] = m.Operation
	}
	return out
}

var _ = Describe("Apply", func() {
	var ns string
	BeforeEach(func(ctx context.Context) { ns = newNamespace(ctx) })

	It("creates the object as the field manager, without claiming its status", func(ctx context.Context) {
		Expect(reconcilekit.Apply(ctx, k8s, "kit-a", service(ns, "c1"))).To(Succeed())

		got := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "svc"}, got)).To(Succeed())
		Expect(got.Spec.Selector).To(Equal(map[string]string{"ray.io/cluster": "c1"}))
		Expect(got.Labels).To(HaveKeyWithValue("app", "kit"))
		Expect(managers(got)).To(Equal(map[string]metav1.ManagedFieldsOperationType{"kit-a": metav1.ManagedFieldsOperationApply}))
		for _, m := range got.ManagedFields {
			Expect(m.Subresource).To(BeEmpty(), "the apply claimed a subresource")
			Expect(m.FieldsV1.GetRawString()).NotTo(ContainSubstring(`"f:status"`), "the apply claimed status fields")
		}
	})

	It("takes over a field another manager applied", func(ctx context.Context) {
		Expect(reconcilekit.Apply(ctx, k8s, "kit-other", service(ns, "c1"))).To(Succeed())
		Expect(reconcilekit.Apply(ctx, k8s, "kit-a", service(ns, "c2"))).To(Succeed())

		got := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "svc"}, got)).To(Succeed())
		Expect(got.Spec.Selector).To(HaveKeyWithValue("ray.io/cluster", "c2"))
		Expect(managers(got)).To(HaveKey("kit-a"))
	})

	It("applies an object read back from the API (resourceVersion and creationTimestamp set)", func(ctx context.Context) {
		Expect(reconcilekit.Apply(ctx, k8s, "kit-a", service(ns, "c1"))).To(Succeed())
		got := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "svc"}, got)).To(Succeed())
		stale := got.DeepCopy()
		stale.ResourceVersion = "1" // an optimistic lock would refuse this; apply does not send it
		stale.Spec.Selector = map[string]string{"ray.io/cluster": "c3"}
		Expect(reconcilekit.Apply(ctx, k8s, "kit-a", stale)).To(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "svc"}, got)).To(Succeed())
		Expect(got.Spec.Selector).To(HaveKeyWithValue("ray.io/cluster", "c3"))
	})

	It("applies kinds of other API groups (networking.k8s.io Ingress)", func(ctx context.Context) {
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "ing", Namespace: ns},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To("nginx"),
				DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "svc", Port: networkingv1.ServiceBackendPort{Number: 8265},
				}},
			},
		}
		Expect(reconcilekit.Apply(ctx, k8s, "kit-a", ing)).To(Succeed())
		got := &networkingv1.Ingress{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ing), got)).To(Succeed())
		Expect(got.Spec.DefaultBackend.Service.Port.Number).To(Equal(int32(8265)))
		Expect(managers(got)).To(HaveKeyWithValue("kit-a", metav1.ManagedFieldsOperationApply))
	})
})
