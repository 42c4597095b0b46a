package autoscaler

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
	"github.com/rayk8s/rayk8s/internal/testsupport/matchers"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

const headIP, workerIP = "10.9.0.1", "10.9.0.2"

// fixture is one autoscaling RayCluster with the operator's RBAC, an in-process head serving the
// control service on a local port, and an autoscaler acting as the head's ServiceAccount.
type fixture struct {
	ctx    context.Context
	ns     string
	rc     *rayv1.RayCluster
	clk    *clocktesting.FakeClock
	head   *gcs.Server
	state  *gcs.AutoscalingState
	sa     client.Client // impersonates the ServiceAccount
	saCfg  *rest.Config
	nextID int
	// recorded counts the events the autoscaler emitted, by reason; they still go to the API server.
	recorded *countingRecorder
}

type patchHook func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error

// newFixture builds the fixture for the running spec; everything it starts stops when the spec
// ends.
func newFixture(hook patchHook) (*fixture, *autoscaler.Autoscaler) {
	GinkgoHelper()
	return newFixtureWithHead(hook, nil)
}

// newFixtureWithHead is newFixture with the autoscaler reaching the head through wrap, given the
// gRPC client of the real head.
func newFixtureWithHead(hook patchHook, wrap func(*autoscaler.GRPCHead) autoscaler.HeadState) (*fixture, *autoscaler.Autoscaler) {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(context.Background())
	DeferCleanup(cancel)
	ns, err := testenv.CreateNamespace(ctx, env.Client, "autoscaler-")
	Expect(err).NotTo(HaveOccurred())
	f := &fixture{ctx: ctx, ns: ns, clk: clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))}

	// Worker hosts offer 2 CPUs (num-cpus wins over the container's request).
	f.rc = builders.RayCluster(f.ns, "rc").WorkerGroup("small", 0, 0, 5).With(func(rc *rayv1.RayCluster) {
		rc.Spec.EnableInTreeAutoscaling = ptr.To(true)
		rc.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{IdleTimeoutSeconds: ptr.To[int32](60)}
		rc.Spec.WorkerGroupSpecs[0].RayStartParams["num-cpus"] = "2"
	}).Obj()
	Expect(env.Client.Create(ctx, f.rc)).To(Succeed())

	// The operator's RBAC for the autoscaler, from its own builders.
	for _, obj := range []client.Object{
		resources.BuildAutoscalerServiceAccount(f.rc), resources.BuildAutoscalerRole(f.rc), resources.BuildAutoscalerRoleBinding(f.rc),
	} {
		Expect(env.Client.Create(ctx, obj)).To(Succeed())
	}
	saName := resources.HeadServiceAccountName(f.rc)
	f.saCfg = rest.CopyConfig(env.Config)
	f.saCfg.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", f.ns, saName),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + f.ns, "system:authenticated"},
	}
	f.sa, err = client.New(f.saCfg, client.Options{Scheme: autoscaler.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	c := f.sa
	if hook != nil {
		ww, err := client.NewWithWatch(f.saCfg, client.Options{Scheme: autoscaler.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		c = interceptor.NewClient(ww, interceptor.Funcs{Patch: hook})
	}

	// Our head: the control service with its autoscaling state, served on a local port.
	f.head, err = gcs.NewServer(ctx, gcs.Options{Clock: f.clk, Logger: logr.Discard()})
	Expect(err).NotTo(HaveOccurred())
	f.state = gcs.NewAutoscalingState(f.head, gcs.AutoscalingOptions{Clock: f.clk, ProcessKinds: []string{"job"}})
	f.head.RegisterService(f.state.Register)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	served := make(chan error, 1)
	go func() { served <- f.head.Serve(ctx, l) }()
	DeferCleanup(func() {
		cancel()
		Expect(<-served).To(Succeed(), "the head's control service stopped with an error")
	})
	Expect(f.head.RegisterNode(ctx, &gcsv1.Node{NodeId: "head", NodeIpAddress: headIP, IsHead: true, ResourcesTotal: map[string]float64{"CPU": 1}}, nil)).To(Succeed())

	// Events are recorded as the ServiceAccount too: the Role grants events.k8s.io events.
	cs, err := kubernetes.NewForConfig(f.saCfg)
	Expect(err).NotTo(HaveOccurred())
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	b.StartRecordingToSink(ctx.Done())

	f.recorded = &countingRecorder{EventRecorder: b.NewRecorder(autoscaler.Scheme(), autoscaler.Component), notes: map[string][]string{}}
	opts := autoscaler.Options{
		ClusterName: "rc", Namespace: f.ns, Config: f.saCfg, Client: c,
		HeadAddress: l.Addr().String(), Recorder: f.recorded,
		Clock: f.clk, Logger: logr.Discard(),
	}
	if wrap != nil {
		conn, err := gcs.Dial(l.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(conn.Close)
		opts.Head = wrap(autoscaler.NewGRPCHead(conn))
	}
	a, err := autoscaler.New(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	return f, a
}

// expectEvent waits for a Normal event about the RayCluster rc with reason and a note containing note.
func (f *fixture) expectEvent(what, reason, note string) {
	GinkgoHelper()
	Eventually(func() ([]eventsv1.Event, error) {
		return testenv.ListEvents(f.ctx, env.Client, f.ns, "RayCluster", "rc")
	}).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).Should(matchers.HaveEvent(corev1.EventTypeNormal, reason, note), what)
}

// demand places a job entrypoint needing cpus; with nothing free it becomes pending demand.
func (f *fixture) demand(cpus float64) string {
	GinkgoHelper()
	f.nextID++
	id := fmt.Sprintf("job-%d", f.nextID)
	_, err := f.state.PlaceProcess(gcs.Placement{Spec: &gcsv1.ProcessSpec{ProcessId: id, Kind: "job", Resources: map[string]float64{"CPU": cpus}}})
	Expect(err).To(MatchError(gcs.ErrNoCapacity), "placing %s: want it pending", id)
	return id
}

// workerPod stands in for the operator and the kubelet: a running worker pod with an IP.
func (f *fixture) workerPod(name, ip string) {
	GinkgoHelper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{
			rayv1.RayClusterLabelKey: "rc", rayv1.RayNodeTypeLabelKey: string(rayv1.WorkerNode), rayv1.RayNodeGroupLabelKey: "small",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "ray-worker", Image: builders.RayImage}}},
	}
	Expect(env.Client.Create(f.ctx, p)).To(Succeed())
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}
	Expect(env.Client.Status().Update(f.ctx, p)).To(Succeed())
}

// idleWorker stands in for a scale-up done earlier: one replica, its running pod, its Ray node
// w1 with 2 CPUs registered and idle for longer than the 60 s idle timeout.
func (f *fixture) idleWorker() {
	GinkgoHelper()
	rc := f.cluster()
	rc.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1)
	Expect(env.Client.Update(f.ctx, rc)).To(Succeed())
	f.workerPod("rc-small-a", workerIP)
	Expect(f.head.RegisterNode(f.ctx, &gcsv1.Node{NodeId: "w1", NodeIpAddress: workerIP, ResourcesTotal: map[string]float64{"CPU": 2}}, nil)).To(Succeed())
	f.clk.Step(61 * time.Second)
	Expect(f.head.Heartbeat("head")).To(Succeed())
	Expect(f.head.Heartbeat("w1")).To(Succeed())
}

// activity is the head's activity record of a node, as the autoscaler reads it.
func (f *fixture) activity(nodeID string) *gcsv1.NodeActivity {
	GinkgoHelper()
	for _, act := range f.state.ClusterState().Activity {
		if act.NodeId == nodeID {
			return act
		}
	}
	Fail("no activity record for node " + nodeID)
	return nil
}

// racingHead is the real head with a race injected: before it forwards the first drain of a
// node, placeFirst places work there, as a task submitted between the autoscaler's read of the
// head's state and its drain would be. It exists because that window cannot be hit on demand.
type racingHead struct {
	*autoscaler.GRPCHead
	placeFirst func(nodeID string)
	raced      bool
}

func (h *racingHead) DrainNode(ctx context.Context, nodeID, reason string, deadline time.Time) (bool, string, error) {
	if !h.raced {
		h.raced = true
		h.placeFirst(nodeID)
	}
	return h.GRPCHead.DrainNode(ctx, nodeID, reason, deadline)
}

func (f *fixture) cluster() *rayv1.RayCluster {
	GinkgoHelper()
	var rc rayv1.RayCluster
	Expect(env.Client.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "rc"}, &rc)).To(Succeed())
	return &rc
}

// smallGroup is the RayCluster's only worker group as the API server has it.
func (f *fixture) smallGroup() rayv1.WorkerGroupSpec {
	GinkgoHelper()
	return f.cluster().Spec.WorkerGroupSpecs[0]
}

func round(ctx context.Context, a *autoscaler.Autoscaler) autoscaler.RoundResult {
	GinkgoHelper()
	res, err := a.Round(ctx)
	Expect(err).NotTo(HaveOccurred(), "round")
	return res
}

// patched matches a round that wrote the RayCluster; a failure shows the decision.
func patched() OmegaMatcher {
	return HaveField("Patched", BeTrue())
}

var _ = Describe("The autoscaler acting as the head's ServiceAccount", func() {
	It("scales up for demand and scales an idle worker down", func() {
		f, a := newFixture(nil)
		ctx := f.ctx

		By("a job needing 2 CPUs on a 1-CPU head: one 2-CPU worker")
		job := f.demand(2)
		Expect(round(ctx, a)).To(patched(), "the first round did not write")
		g := f.smallGroup()
		Expect(*g.Replicas).To(BeEquivalentTo(1), "replicas after scale-up")
		Expect(g.ScaleStrategy.WorkersToDelete).To(BeEmpty(), "workersToDelete after scale-up")
		f.expectEvent("a ScaledUp event", autoscaler.EventScaledUp, "replicas 0 -> 1")

		By("the same observation again: the pod is in flight, nothing is written")
		Expect(round(ctx, a)).NotTo(patched(), "the second round wrote again")

		By("the worker comes up and registers; the job is placed on it")
		f.workerPod("rc-small-a", workerIP)
		Expect(f.head.RegisterNode(ctx, &gcsv1.Node{NodeId: "w1", NodeIpAddress: workerIP, ResourcesTotal: map[string]float64{"CPU": 2}}, nil)).To(Succeed())
		n, err := f.state.PlaceProcess(gcs.Placement{Spec: &gcsv1.ProcessSpec{ProcessId: job, Kind: "job", Resources: map[string]float64{"CPU": 2}}})
		Expect(err).NotTo(HaveOccurred(), "placing the job once the worker joined")
		Expect(n.NodeId).To(Equal("w1"), "the node the job was placed on")
		f.head.ReportProcessEvent("w1", &gcsv1.ProcessStatus{Spec: &gcsv1.ProcessSpec{ProcessId: job, Kind: "job", Resources: map[string]float64{"CPU": 2}}, State: gcsv1.ProcessState_PROCESS_STATE_RUNNING})

		By("busy for a long time: never removed")
		f.clk.Step(10 * time.Minute)
		Expect(round(ctx, a)).NotTo(patched(), "a busy worker was scaled down")

		By("the job ends; idle for less than the timeout, then longer")
		f.head.ReportProcessEvent("w1", &gcsv1.ProcessStatus{Spec: &gcsv1.ProcessSpec{ProcessId: job, Kind: "job", Resources: map[string]float64{"CPU": 2}}, State: gcsv1.ProcessState_PROCESS_STATE_EXITED})
		f.clk.Step(30 * time.Second)
		Expect(round(ctx, a)).NotTo(patched(), "a worker idle for 30s was scaled down")
		f.clk.Step(31 * time.Second)
		Expect(round(ctx, a)).To(patched(), "a worker idle for 61s was kept")
		g = f.smallGroup()
		Expect(*g.Replicas).To(BeEquivalentTo(0), "replicas after scale-down")
		Expect(g.ScaleStrategy.WorkersToDelete).To(Equal([]string{"rc-small-a"}), "workersToDelete in the same patch as the scale-down")
		f.expectEvent("a ScaledDown event", autoscaler.EventScaledDown, "deleting rc-small-a")

		By("the operator deletes the pod (unscheduled pods go at once) and the node leaves: the autoscaler clears the list")
		Expect(env.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rc-small-a", Namespace: f.ns}})).To(Succeed())
		Expect(f.head.UnregisterNode(ctx, "w1", "pod deleted")).To(Succeed())
		Expect(round(ctx, a)).To(patched(), "the deleted pod's name was not cleared")
		g = f.smallGroup()
		Expect(*g.Replicas).To(BeEquivalentTo(0), "replicas after cleanup")
		Expect(g.ScaleStrategy.WorkersToDelete).To(BeEmpty(), "workersToDelete after cleanup")
		Expect(round(ctx, a)).NotTo(patched(), "a settled cluster was written again")
	})

	It("drains an idle worker before naming it, so no new work lands on it", func() {
		f, a := newFixture(nil)
		ctx := f.ctx
		f.idleWorker()
		Expect(f.activity("w1").Draining).To(BeFalse(), "w1 draining before any decision")

		Expect(round(ctx, a)).To(patched(), "an idle worker was kept")
		Expect(f.smallGroup().ScaleStrategy.WorkersToDelete).To(Equal([]string{"rc-small-a"}), "workersToDelete")
		Expect(f.activity("w1").Draining).To(BeTrue(), "w1 draining once named for deletion")

		By("a job that only w1 could hold waits instead of landing on the node being removed")
		f.demand(2)

		By("while the pod is terminating, each round renews the drain past its first deadline")
		for range 10 {
			f.clk.Step(10 * time.Second)
			Expect(f.head.Heartbeat("head")).To(Succeed())
			Expect(f.head.Heartbeat("w1")).To(Succeed())
			f.head.CheckHeartbeats(ctx)
			round(ctx, a)
			Expect(f.activity("w1").Draining).To(BeTrue(), "w1 draining %s after it was named", f.clk.Since(time.Unix(1_700_000_061, 0)))
		}
		f.demand(2)
	})

	It("keeps a worker that got work between the head's state and the drain", func() {
		var f *fixture
		f, a := newFixtureWithHead(nil, func(h *autoscaler.GRPCHead) autoscaler.HeadState {
			return &racingHead{GRPCHead: h, placeFirst: func(nodeID string) {
				_, err := f.state.PlaceProcess(gcs.Placement{NodeID: nodeID, Spec: &gcsv1.ProcessSpec{ProcessId: "job-raced", Kind: "job", Resources: map[string]float64{"CPU": 1}}})
				Expect(err).NotTo(HaveOccurred(), "placing the racing job on %s", nodeID)
			}}
		})
		ctx := f.ctx
		f.idleWorker()

		res := round(ctx, a)
		Expect(res).NotTo(patched(), "the worker that got work was scaled down")
		g := f.smallGroup()
		Expect(*g.Replicas).To(BeEquivalentTo(1), "replicas")
		Expect(g.ScaleStrategy.WorkersToDelete).To(BeEmpty(), "workersToDelete")
		Expect(f.activity("w1").Draining).To(BeFalse(), "the worker with work was drained")
		_, err := f.state.PlaceProcess(gcs.Placement{NodeID: "w1", Spec: &gcsv1.ProcessSpec{ProcessId: "job-next", Kind: "job", Resources: map[string]float64{"CPU": 1}}})
		Expect(err).NotTo(HaveOccurred(), "placing more work on the kept worker")

		By("once its work is done and it idles past the timeout, it is drained and removed")
		for _, id := range []string{"job-raced", "job-next"} {
			f.head.ReportProcessEvent("w1", &gcsv1.ProcessStatus{Spec: &gcsv1.ProcessSpec{ProcessId: id, Kind: "job", Resources: map[string]float64{"CPU": 1}}, State: gcsv1.ProcessState_PROCESS_STATE_EXITED})
		}
		f.clk.Step(61 * time.Second)
		Expect(round(ctx, a)).To(patched(), "the idle worker was kept")
		Expect(f.smallGroup().ScaleStrategy.WorkersToDelete).To(Equal([]string{"rc-small-a"}), "workersToDelete")
		Expect(f.activity("w1").Draining).To(BeTrue(), "w1 draining once named")
	})

	It("rereads on a conflict and keeps the user's edit", func() {
		var f *fixture
		raced := false
		f, a := newFixture(func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if !raced {
				// A user raises replicas between the autoscaler's read and its write.
				raced = true
				rc := f.cluster()
				rc.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3)
				Expect(env.Client.Update(ctx, rc)).To(Succeed())
			}
			return c.Patch(ctx, obj, p, opts...)
		})
		f.demand(2)
		res := round(f.ctx, a)
		Expect(res.Conflicts).To(Equal(1), "conflicts")
		// Re-decided on the user's 3 replicas: they are in flight and hold the demand, so nothing is
		// written and the user's value stands.
		Expect(res).NotTo(patched(), "the round wrote after the conflict")
		Expect(*f.smallGroup().Replicas).To(BeEquivalentTo(3), "replicas: want the user's 3")
	})

	It("keeps a user's edit between rounds", func() {
		f, a := newFixture(nil)
		f.demand(2)
		Expect(round(f.ctx, a)).To(patched(), "no scale-up")
		rc := f.cluster()
		rc.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](4)
		Expect(env.Client.Update(f.ctx, rc)).To(Succeed())
		Expect(round(f.ctx, a)).NotTo(patched(), "the round after a user's edit wrote")
		Expect(*f.smallGroup().Replicas).To(BeEquivalentTo(4), "replicas: want the user's 4")
	})

	It("needs no more than the Role grants", func() {
		f, a := newFixture(nil)
		// RBAC is enforced for the impersonated account: the Role grants get and patch on
		// rayclusters, not list.
		var list rayv1.RayClusterList
		err := f.sa.List(f.ctx, &list, client.InNamespace(f.ns))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing RayClusters as the ServiceAccount: err = %v, want Forbidden", err)
		// Nor another namespace's pods.
		var pods corev1.PodList
		err = f.sa.List(f.ctx, &pods, client.InNamespace("default"))
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing pods of another namespace: err = %v, want Forbidden", err)
		// Yet a full round with a write succeeds with the Role alone.
		f.demand(2)
		Expect(round(f.ctx, a)).To(patched(), "no write")
		// And its decision reached the API server as an Event, recorded with the Role alone.
		Eventually(func() ([]eventsv1.Event, error) {
			var evs eventsv1.EventList
			err := env.Client.List(f.ctx, &evs, client.InNamespace(f.ns))
			return evs.Items, err
		}).WithTimeout(30*time.Second).Should(ContainElement(
			HaveField("Regarding.Name", f.rc.Name)), "an Event about the RayCluster from the autoscaler's ServiceAccount")
	})
})
