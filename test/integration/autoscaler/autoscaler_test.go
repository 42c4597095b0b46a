// Package autoscaler runs the cluster autoscaler sidecar's rounds against a real API server
// (envtest) and our in-process head's control service over gRPC. The autoscaler's client
// impersonates the head's ServiceAccount and has only the Role the operator's builders create, so
// every read and patch here proves that Role is enough.
package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
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
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/testsupport/matchers"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

const headIP, workerIP = "10.9.0.1", "10.9.0.2"

// fixture is one autoscaling RayCluster with the operator's RBAC, an in-process head serving the
// control service on a local port, and an autoscaler acting as the head's ServiceAccount.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	ns     string
	rc     *rayv1.RayCluster
	clk    *clocktesting.FakeClock
	head   *gcs.Server
	state  *gcs.AutoscalingState
	sa     client.Client // impersonates the ServiceAccount
	saCfg  *rest.Config
	nextID int
}

func container() corev1.Container {
	return corev1.Container{Name: "ray", Image: "rayproject/ray:2.52.0"}
}

func newFixture(t *testing.T, patchHook func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error) (*fixture, *autoscaler.Autoscaler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, ns: newNamespace(t), clk: clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))}

	f.rc = &rayv1.RayCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: f.ns},
		Spec: rayv1.RayClusterSpec{
			EnableInTreeAutoscaling: ptr.To(true),
			AutoscalerOptions:       &rayv1.AutoscalerOptions{IdleTimeoutSeconds: ptr.To[int32](60)},
			HeadGroupSpec: rayv1.HeadGroupSpec{
				RayStartParams: map[string]string{},
				Template:       corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{container()}}},
			},
			WorkerGroupSpecs: []rayv1.WorkerGroupSpec{{
				GroupName: "small", Replicas: ptr.To[int32](0), MinReplicas: ptr.To[int32](0), MaxReplicas: ptr.To[int32](5),
				RayStartParams: map[string]string{"num-cpus": "2"},
				Template:       corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{container()}}},
			}},
		},
	}
	must(t, env.Client.Create(ctx, f.rc))

	// The operator's RBAC for the autoscaler, from its own builders.
	for _, obj := range []client.Object{
		resources.BuildAutoscalerServiceAccount(f.rc), resources.BuildAutoscalerRole(f.rc), resources.BuildAutoscalerRoleBinding(f.rc),
	} {
		must(t, env.Client.Create(ctx, obj))
	}
	saName := resources.HeadServiceAccountName(f.rc)
	f.saCfg = rest.CopyConfig(env.Config)
	f.saCfg.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", f.ns, saName),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + f.ns, "system:authenticated"},
	}
	sa, err := client.New(f.saCfg, client.Options{Scheme: autoscaler.Scheme()})
	must(t, err)
	f.sa = sa
	c := sa
	if patchHook != nil {
		ww, err := client.NewWithWatch(f.saCfg, client.Options{Scheme: autoscaler.Scheme()})
		must(t, err)
		c = interceptor.NewClient(ww, interceptor.Funcs{Patch: patchHook})
	}

	// Our head: the control service with its autoscaling state, served on a local port.
	f.head, err = gcs.NewServer(ctx, gcs.Options{Clock: f.clk, Logger: logr.Discard()})
	must(t, err)
	f.state = gcs.NewAutoscalingState(f.head, gcs.AutoscalingOptions{Clock: f.clk, ProcessKinds: []string{"job"}})
	f.head.RegisterService(f.state.Register)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	served := make(chan error, 1)
	go func() { served <- f.head.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	must(t, f.head.RegisterNode(ctx, &gcsv1.Node{NodeId: "head", NodeIpAddress: headIP, IsHead: true, ResourcesTotal: map[string]float64{"CPU": 1}}, nil))

	// Events are recorded as the ServiceAccount too: the Role grants events.k8s.io events.
	cs, err := kubernetes.NewForConfig(f.saCfg)
	must(t, err)
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	b.StartRecordingToSink(ctx.Done())

	a, err := autoscaler.New(ctx, autoscaler.Options{
		ClusterName: "rc", Namespace: f.ns, Config: f.saCfg, Client: c,
		HeadAddress: l.Addr().String(), Recorder: b.NewRecorder(autoscaler.Scheme(), autoscaler.Component),
		Clock: f.clk, Logger: logr.Discard(),
	})
	must(t, err)
	return f, a
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := testenv.CreateNamespace(context.Background(), env.Client, "autoscaler-")
	must(t, err)
	return ns
}

// eventually waits for a Normal event about the RayCluster rc with reason and a note containing note.
func eventually(t *testing.T, f *fixture, what, reason, note string) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func() ([]eventsv1.Event, error) {
		return testenv.ListEvents(f.ctx, env.Client, f.ns, "RayCluster", "rc")
	}).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).Should(matchers.HaveEvent(corev1.EventTypeNormal, reason, note), what)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// demand places a job entrypoint needing cpus; with nothing free it becomes pending demand.
func (f *fixture) demand(cpus float64) string {
	f.nextID++
	id := fmt.Sprintf("job-%d", f.nextID)
	_, err := f.state.PlaceProcess(gcs.Placement{Spec: &gcsv1.ProcessSpec{ProcessId: id, Kind: "job", Resources: map[string]float64{"CPU": cpus}}})
	if !errors.Is(err, gcs.ErrNoCapacity) {
		f.t.Fatalf("placing %s: err = %v, want it pending", id, err)
	}
	return id
}

// workerPod stands in for the operator and the kubelet: a running worker pod with an IP.
func (f *fixture) workerPod(name, ip string) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{
			rayv1.RayClusterLabelKey: "rc", rayv1.RayNodeTypeLabelKey: string(rayv1.WorkerNode), rayv1.RayNodeGroupLabelKey: "small",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{container()}},
	}
	must(f.t, env.Client.Create(f.ctx, p))
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}
	must(f.t, env.Client.Status().Update(f.ctx, p))
}

func (f *fixture) cluster() *rayv1.RayCluster {
	var rc rayv1.RayCluster
	must(f.t, env.Client.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "rc"}, &rc))
	return &rc
}

func round(t *testing.T, ctx context.Context, a *autoscaler.Autoscaler) autoscaler.RoundResult {
	t.Helper()
	res, err := a.Round(ctx)
	if err != nil {
		t.Fatalf("round: %v", err)
	}
	return res
}

func TestScaleUpAndIdleScaleDownAsTheServiceAccount(t *testing.T) {
	f, a := newFixture(t, nil)
	ctx := f.ctx

	// A job needing 2 CPUs on a 1-CPU head: one 2-CPU worker.
	job := f.demand(2)
	if res := round(t, ctx, a); !res.Patched {
		t.Fatalf("first round did not write: %+v", res.Decision)
	}
	g := f.cluster().Spec.WorkerGroupSpecs[0]
	if *g.Replicas != 1 || len(g.ScaleStrategy.WorkersToDelete) != 0 {
		t.Fatalf("after scale-up: replicas %d, workersToDelete %v; want 1 and none", *g.Replicas, g.ScaleStrategy.WorkersToDelete)
	}
	eventually(t, f, "a ScaledUp event", autoscaler.EventScaledUp, "replicas 0 -> 1")

	// The same observation again: the pod is in flight, nothing is written.
	if res := round(t, ctx, a); res.Patched {
		t.Fatalf("second round wrote again: %+v", res.Decision)
	}

	// The worker comes up and registers; the job is placed on it.
	f.workerPod("rc-small-a", workerIP)
	must(t, f.head.RegisterNode(ctx, &gcsv1.Node{NodeId: "w1", NodeIpAddress: workerIP, ResourcesTotal: map[string]float64{"CPU": 2}}, nil))
	n, err := f.state.PlaceProcess(gcs.Placement{Spec: &gcsv1.ProcessSpec{ProcessId: job, Kind: "job", Resources: map[string]float64{"CPU": 2}}})
	if err != nil || n.NodeId != "w1" {
		t.Fatalf("placing the job once the worker joined: node %v, err %v", n, err)
	}
	f.head.ReportProcessEvent("w1", &gcsv1.ProcessStatus{Spec: &gcsv1.ProcessSpec{ProcessId: job, Kind: "job", Resources: map[string]float64{"CPU": 2}}, State: gcsv1.ProcessState_PROCESS_STATE_RUNNING})

	// Busy for a long time: never removed.
	f.clk.Step(10 * time.Minute)
	if res := round(t, ctx, a); res.Patched {
		t.Fatalf("a busy worker was scaled down: %+v", res.Decision)
	}

	// The job ends; idle for less than the timeout, then longer.
	f.head.ReportProcessEvent("w1", &gcsv1.ProcessStatus{Spec: &gcsv1.ProcessSpec{ProcessId: job, Kind: "job", Resources: map[string]float64{"CPU": 2}}, State: gcsv1.ProcessState_PROCESS_STATE_EXITED})
	f.clk.Step(30 * time.Second)
	if res := round(t, ctx, a); res.Patched {
		t.Fatalf("a worker idle for 30s was scaled down: %+v", res.Decision)
	}
	f.clk.Step(31 * time.Second)
	if res := round(t, ctx, a); !res.Patched {
		t.Fatalf("a worker idle for 61s was kept: %+v", res.Decision)
	}
	g = f.cluster().Spec.WorkerGroupSpecs[0]
	if *g.Replicas != 0 || !slices.Equal(g.ScaleStrategy.WorkersToDelete, []string{"rc-small-a"}) {
		t.Fatalf("after scale-down: replicas %d, workersToDelete %v; want 0 and [rc-small-a] in one patch", *g.Replicas, g.ScaleStrategy.WorkersToDelete)
	}
	eventually(t, f, "a ScaledDown event", autoscaler.EventScaledDown, "deleting rc-small-a")

	// The operator deletes the pod (unscheduled pods go at once) and the node leaves: the
	// autoscaler clears the list.
	must(t, env.Client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "rc-small-a", Namespace: f.ns}}))
	must(t, f.head.UnregisterNode(ctx, "w1", "pod deleted"))
	if res := round(t, ctx, a); !res.Patched {
		t.Fatalf("the deleted pod's name was not cleared: %+v", res.Decision)
	}
	if g := f.cluster().Spec.WorkerGroupSpecs[0]; *g.Replicas != 0 || len(g.ScaleStrategy.WorkersToDelete) != 0 {
		t.Fatalf("after cleanup: replicas %d, workersToDelete %v", *g.Replicas, g.ScaleStrategy.WorkersToDelete)
	}
	if res := round(t, ctx, a); res.Patched {
		t.Fatalf("a settled cluster was written again: %+v", res.Decision)
	}
}

func TestConflictRereadsAndKeepsTheUsersEdit(t *testing.T) {
	var f *fixture
	raced := false
	f, a := newFixture(t, func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
		if !raced {
			// A user raises replicas between the autoscaler's read and its write.
			raced = true
			rc := f.cluster()
			rc.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](3)
			must(f.t, env.Client.Update(ctx, rc))
		}
		return c.Patch(ctx, obj, p, opts...)
	})
	f.demand(2)
	res := round(t, f.ctx, a)
	if res.Conflicts != 1 {
		t.Fatalf("conflicts = %d, want 1", res.Conflicts)
	}
	// Re-decided on the user's 3 replicas: they are in flight and hold the demand, so nothing is
	// written and the user's value stands.
	if res.Patched {
		t.Fatalf("the round wrote after the conflict: %+v", res.Decision)
	}
	if got := *f.cluster().Spec.WorkerGroupSpecs[0].Replicas; got != 3 {
		t.Fatalf("replicas = %d, want the user's 3", got)
	}
}

func TestUserEditBetweenRoundsIsKept(t *testing.T) {
	f, a := newFixture(t, nil)
	f.demand(2)
	if res := round(t, f.ctx, a); !res.Patched {
		t.Fatal("no scale-up")
	}
	rc := f.cluster()
	rc.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](4)
	must(t, env.Client.Update(f.ctx, rc))
	if res := round(t, f.ctx, a); res.Patched {
		t.Fatalf("the round after a user's edit wrote: %+v", res.Decision)
	}
	if got := *f.cluster().Spec.WorkerGroupSpecs[0].Replicas; got != 4 {
		t.Fatalf("replicas = %d, want the user's 4", got)
	}
}

func TestRoleGrantsWhatTheAutoscalerNeeds(t *testing.T) {
	f, a := newFixture(t, nil)
	// RBAC is enforced for the impersonated account: the Role grants get and patch on
	// rayclusters, not list.
	var list rayv1.RayClusterList
	if err := f.sa.List(f.ctx, &list, client.InNamespace(f.ns)); !apierrors.IsForbidden(err) {
		t.Fatalf("listing RayClusters as the ServiceAccount: err = %v, want Forbidden", err)
	}
	// Nor another namespace's pods.
	var pods corev1.PodList
	if err := f.sa.List(f.ctx, &pods, client.InNamespace("default")); !apierrors.IsForbidden(err) {
		t.Fatalf("listing pods of another namespace: err = %v, want Forbidden", err)
	}
	// Yet a full round with a write succeeds with the Role alone.
	f.demand(2)
	if res := round(t, f.ctx, a); !res.Patched {
		t.Fatal("no write")
	}
	// And its decision reached the API server as an Event, recorded with the Role alone.
	gomega.NewWithT(t).Eventually(func() ([]eventsv1.Event, error) {
		var evs eventsv1.EventList
		err := env.Client.List(f.ctx, &evs, client.InNamespace(f.ns))
		return evs.Items, err
	}).WithTimeout(30*time.Second).Should(gomega.ContainElement(
		gomega.HaveField("Regarding.Name", f.rc.Name)), "an Event about the RayCluster from the autoscaler's ServiceAccount")
}
