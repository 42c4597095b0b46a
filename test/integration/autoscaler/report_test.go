package autoscaler

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/requestapi"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// countingRecorder passes every event on to the real recorder and keeps the notes by reason, so a
// spec can count events the API server would fold into one series.
type countingRecorder struct {
	events.EventRecorder
	mu    sync.Mutex
	notes map[string][]string
}

func (r *countingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.mu.Lock()
	r.notes[reason] = append(r.notes[reason], fmt.Sprintf(note, args...))
	r.mu.Unlock()
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (r *countingRecorder) of(reason string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.notes[reason]...)
}

// statusReport reads the autoscaler's report for `ray status` from the head's KV store.
func (f *fixture) statusReport() *report.Report {
	GinkgoHelper()
	b, found, err := f.head.Storage().Get(f.ctx, report.KVNamespace, report.KVKey)
	Expect(err).NotTo(HaveOccurred())
	Expect(found).To(BeTrue(), "no autoscaler report in the head's KV")
	r, err := report.Decode(b)
	Expect(err).NotTo(HaveOccurred())
	return r
}

// requestResources calls the dashboard's request_resources endpoint, served over the head's state.
func requestResources(url, body string) {
	GinkgoHelper()
	resp, err := http.Post(url+requestapi.Path, "application/json", strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.Body.Close()).To(Succeed())
	Expect(resp.StatusCode).To(Equal(http.StatusOK), "request_resources %s", body)
}

var _ = Describe("The autoscaler's reports", func() {
	It("reports a shape no group can hold once, not every round, and in the report for ray status", func() {
		f, a := newFixture(nil)
		ctx := f.ctx

		By("a 64-CPU job on 2-CPU workers: infeasible")
		f.demand(64)
		for range 3 {
			Expect(round(ctx, a)).NotTo(patched(), "an infeasible demand scaled something")
		}
		f.demand(64)
		Expect(round(ctx, a)).NotTo(patched())
		warned := f.recorded.of(autoscaler.EventInfeasibleDemand)
		Expect(warned).To(HaveLen(1), "InfeasibleDemand events over four rounds and a second bundle of the same shape")
		Expect(warned[0]).To(And(ContainSubstring("{CPU: 64}"), ContainSubstring("no worker group's node shape can hold"), ContainSubstring("small {CPU: 2}")))
		Eventually(func() ([]string, error) { return warningNotes(f) }).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).Should(ContainElement(ContainSubstring("{CPU: 64}")), "the Warning event reached the API server")

		r := f.statusReport()
		Expect(r.Cluster).To(Equal(f.ns + "/rc"))
		Expect(r.NodeGroups).To(Equal(map[string]string{"head": report.HeadGroup}))
		Expect(r.Unmet).To(ConsistOf(And(
			HaveField("Resources", Equal(map[string]float64{"CPU": 64})), HaveField("Count", 2), HaveField("Infeasible", true),
		)), "unmet shapes in the report")

		By("another infeasible shape is reported on its own")
		f.demand(32)
		Expect(round(ctx, a)).NotTo(patched())
		Expect(f.recorded.of(autoscaler.EventInfeasibleDemand)).To(HaveLen(2))
		Expect(f.recorded.of(autoscaler.EventInfeasibleDemand)[1]).To(ContainSubstring("{CPU: 32}"))
	})

	It("keeps request_resources capacity up until it is withdrawn", func() {
		f, a := newFixture(nil)
		ctx := f.ctx
		dash := httptest.NewServer(requestapi.NewHandler(f.state, logr.Discard()))
		DeferCleanup(dash.Close)

		By("a request of 2 CPUs on a 1-CPU head, with no job pending: one 2-CPU worker")
		requestResources(dash.URL, `{"bundles": [{"CPU": 2}]}`)
		Expect(round(ctx, a)).To(patched(), "a standing request did not scale up")
		Expect(*f.smallGroup().Replicas).To(BeEquivalentTo(1))
		f.expectEvent("a ScaledUp event naming the request", autoscaler.EventScaledUp, "1 requested bundles")

		By("the worker joins and stays idle far past the idle timeout: the request holds it")
		f.workerPod("rc-small-a", workerIP)
		Expect(f.head.RegisterNode(ctx, &gcsv1.Node{NodeId: "w1", NodeIpAddress: workerIP, ResourcesTotal: map[string]float64{"CPU": 2}}, nil)).To(Succeed())
		f.clk.Step(10 * time.Minute)
		Expect(round(ctx, a)).NotTo(patched(), "a worker held by request_resources was scaled down")
		Expect(f.statusReport().NodeGroups).To(HaveKeyWithValue("w1", "small"))

		By("the request is withdrawn: the idle worker goes")
		requestResources(dash.URL, `{}`)
		Expect(round(ctx, a)).To(patched(), "the idle worker was kept after the request was withdrawn")
		g := f.smallGroup()
		Expect(*g.Replicas).To(BeEquivalentTo(0))
		Expect(g.ScaleStrategy.WorkersToDelete).To(Equal([]string{"rc-small-a"}))
	})
})

// warningNotes lists the Warning notes about the RayCluster rc.
func warningNotes(f *fixture) ([]string, error) {
	evs, err := testenv.ListEvents(f.ctx, env.Client, f.ns, "RayCluster", "rc")
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, e := range evs {
		if e.Type == corev1.EventTypeWarning {
			notes = append(notes, e.Note)
		}
	}
	return notes, nil
}
