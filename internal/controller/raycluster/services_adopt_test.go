package raycluster

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

// The suite's cache, like the operator's, holds only Services labelled created-by: a serve Service
// an earlier build created without that label is invisible to it.
var _ = Describe("A Service created without the created-by label", func() {
	// serveCluster creates a ready cluster whose head declares a serve port, and the serve Service
	// an earlier build would have made for it, without the label; controlled says whether the
	// cluster controls that Service.
	serveCluster := func(name string, controlled bool) (client.ObjectKey, *corev1.Service) {
		ns := newNamespace()
		c := builders.RayCluster(ns, name).WorkerGroup("small", 1, 0, 10).Obj()
		c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "serve", ContainerPort: 8000}}
		create(c)
		key := client.ObjectKeyFromObject(c)
		Eventually(clusterOf(key)).Should(HaveState(rayv1.ClusterStateReady), "ready")
		old, err := resources.BuildServeService(getCluster(key))
		Expect(err).NotTo(HaveOccurred())
		delete(old.Labels, rayv1.KubernetesCreatedByLabelKey)
		if !controlled {
			old.OwnerReferences = nil
		}
		create(old)
		updateCluster(key, func(c *rayv1.RayCluster) {
			c.Annotations = map[string]string{rayv1.EnableServeServiceAnnotationKey: "true"}
		})
		return key, old
	}
	serviceOf := func(key client.ObjectKey) func() (*corev1.Service, error) {
		return func() (*corev1.Service, error) {
			var svc corev1.Service
			err := k8s.Get(context.Background(), key, &svc)
			return &svc, err
		}
	}

	It("is labelled and kept when the cluster controls it", func() {
		key, old := serveCluster("adopt", true)
		Eventually(serviceOf(client.ObjectKeyFromObject(old))).Should(
			HaveField("Labels", HaveKeyWithValue(rayv1.KubernetesCreatedByLabelKey, rayv1.ComponentName)), "the old Service labelled")
		svc, err := serviceOf(client.ObjectKeyFromObject(old))()
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.UID).To(Equal(old.UID), "the Service was replaced instead of adopted")
		Expect(svc.Labels).To(HaveKeyWithValue(rayv1.RayClusterServingServiceLabelKey, "adopt-serve"), "KubeRay's labels kept")
		waitReconciled(key)
		Expect(getCluster(key)).To(And(HaveState(rayv1.ClusterStateReady), HaveField("Status.Reason", BeEmpty())), "the cluster after adoption")
	})

	It("is left alone and reported when something else owns that name", func() {
		key, old := serveCluster("foreign", false)
		Eventually(clusterOf(key)).Should(HaveField("Status.Reason", ContainSubstring("not controlled by this RayCluster")), "the conflict reported")
		svc, err := serviceOf(client.ObjectKeyFromObject(old))()
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Labels).NotTo(HaveKey(rayv1.KubernetesCreatedByLabelKey), "someone else's Service labelled")
		Expect(svc.OwnerReferences).To(BeEmpty(), "someone else's Service adopted")
	})
})
