package reconcilekit_test

import (
	"context"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// ownerIndex indexes ConfigMaps by their "owner" label, standing in for a controller's index.
const ownerIndex = ".metadata.labels.owner"

// logLines is a logger that keeps what it was given.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

var _ = Describe("RequestsByIndex", func() {
	It("maps to every object of the namespace whose index holds the value", func(ctx context.Context) {
		c, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme})
		Expect(err).NotTo(HaveOccurred())
		Expect(c.IndexField(ctx, &corev1.ConfigMap{}, ownerIndex, func(o client.Object) []string {
			if v := o.GetLabels()["owner"]; v != "" {
				return []string{v}
			}
			return nil
		})).To(Succeed())
		cctx, cancel := context.WithCancel(ctx)
		DeferCleanup(cancel)
		go func() { _ = c.Start(cctx) }()
		Expect(c.WaitForCacheSync(ctx)).To(BeTrue())

		ns, other := newNamespace(ctx), newNamespace(ctx)
		for _, o := range []struct{ ns, name, owner string }{{ns, "a", "x"}, {ns, "b", "x"}, {ns, "c", "y"}, {other, "d", "x"}} {
			Expect(k8s.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Namespace: o.ns, Name: o.name, Labels: map[string]string{"owner": o.owner}}})).To(Succeed())
		}
		Eventually(func() []reconcile.Request {
			return reconcilekit.RequestsByIndex(ctx, c, &corev1.ConfigMapList{}, ns, ownerIndex, "x")
		}).WithContext(ctx).Should(ConsistOf(
			reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "a"}},
			reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "b"}},
		))
	})

	It("logs a failed List with what it looked up, and maps to nothing", func(ctx context.Context) {
		var logs logLines
		ctx = logr.NewContext(ctx, logs.logger())
		// The API server has no such field selector: the List fails as a cache without the index
		// would.
		reqs := reconcilekit.RequestsByIndex(ctx, k8s, &corev1.ConfigMapList{}, "default", ownerIndex, "x")
		Expect(reqs).To(BeEmpty())
		Expect(logs.all()).To(And(
			ContainSubstring("Listing objects for a watch event failed"),
			ContainSubstring(ownerIndex),
			ContainSubstring("ConfigMapList"),
		))
	})
})
