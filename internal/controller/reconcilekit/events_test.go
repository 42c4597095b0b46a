package reconcilekit_test

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rayk8s/rayk8s/internal/controller/eventnote"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

var _ = Describe("Events", func() {
	It("records the queued events in order, with notes the API accepts", func(ctx context.Context) {
		cs, err := kubernetes.NewForConfig(env.Config)
		Expect(err).NotTo(HaveOccurred())
		b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
		b.StartRecordingToSink(ctx.Done())
		DeferCleanup(b.Shutdown)
		rec := b.NewRecorder(env.Scheme, "reconcilekit-test")

		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: newNamespace(ctx)}}
		Expect(k8s.Create(ctx, cm)).To(Succeed())

		var q reconcilekit.Events
		q.Add(corev1.EventTypeNormal, "Created", "Create", "Created pod %s", "p1")
		q.Add(corev1.EventTypeWarning, "Failed", "Update", "%s", strings.Repeat("é", 1000)) // 2000 bytes
		Expect(q).To(HaveLen(2))
		Expect(q[0]).To(Equal(reconcilekit.Event{Type: "Normal", Reason: "Created", Action: "Create", Note: "Created pod p1"}))
		q.Emit(rec, cm)

		Eventually(func(g Gomega) {
			var list eventsv1.EventList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(cm.Namespace))).To(Succeed())
			byReason := map[string]eventsv1.Event{}
			for _, e := range list.Items {
				byReason[e.Reason] = e
			}
			g.Expect(byReason).To(HaveKey("Created"))
			g.Expect(byReason).To(HaveKey("Failed"))
			g.Expect(byReason["Created"].Note).To(Equal("Created pod p1"))
			g.Expect(byReason["Created"].Action).To(Equal("Create"))
			g.Expect(byReason["Created"].Regarding.Name).To(Equal("cm"))
			g.Expect(byReason["Failed"].Type).To(Equal(corev1.EventTypeWarning))
			g.Expect(len(byReason["Failed"].Note)).To(BeNumerically("<=", eventnote.Max))
			g.Expect(byReason["Failed"].Note).To(HaveSuffix("..."))
		}).WithContext(ctx).Should(Succeed())
	})
})
