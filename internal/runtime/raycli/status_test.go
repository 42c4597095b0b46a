package raycli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// statusHead is an in-process head: the control service with its autoscaling state, served on a
// loopback port for `ray status` to dial.
type statusHead struct {
	ctx   context.Context
	srv   *gcs.Server
	state *gcs.AutoscalingState
	clk   *clocktesting.FakeClock
	addr  string
}

func newStatusHead(t *testing.T) *statusHead {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	clk := clocktesting.NewFakeClock(time.Now())
	srv, err := gcs.NewServer(ctx, gcs.Options{Clock: clk, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	state := gcs.NewAutoscalingState(srv, gcs.AutoscalingOptions{Clock: clk, ProcessKinds: []string{"job"}})
	srv.RegisterService(state.Register)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("control service: %v", err)
		}
	})
	return &statusHead{ctx: ctx, srv: srv, state: state, clk: clk, addr: l.Addr().String()}
}

func (h *statusHead) node(t *testing.T, id, ip string, head bool, cpus float64) {
	t.Helper()
	if err := h.srv.RegisterNode(h.ctx, &gcsv1.Node{NodeId: id, NodeIpAddress: ip, IsHead: head, ResourcesTotal: map[string]float64{"CPU": cpus}}, nil); err != nil {
		t.Fatal(err)
	}
}

// place places a job process; a pinned one runs on its node.
func (h *statusHead) place(t *testing.T, id, nodeID string, cpus float64) error {
	t.Helper()
	spec := &gcsv1.ProcessSpec{ProcessId: id, Kind: "job", Resources: map[string]float64{"CPU": cpus}}
	_, err := h.state.PlaceProcess(gcs.Placement{Spec: spec, NodeID: nodeID})
	if err == nil {
		h.srv.ReportProcessEvent(nodeID, &gcsv1.ProcessStatus{Spec: spec, State: gcsv1.ProcessState_PROCESS_STATE_RUNNING})
	}
	return err
}

func statusOutput(t *testing.T, addr string) string {
	t.Helper()
	code, out, stderr := runCLI(nil, "status", "--address", addr)
	if code != 0 {
		t.Fatalf("ray status exit %d: %s", code, stderr)
	}
	return out
}

// summary is the output without its timestamp line and the node table.
func summary(t *testing.T, out string) string {
	t.Helper()
	first, rest, ok := strings.Cut(out, "\n")
	if !ok || !strings.HasPrefix(first, "======== Autoscaler status: ") {
		t.Fatalf("output does not start with the status header:\n%s", out)
	}
	body, table, ok := strings.Cut(rest, "\nNodes\n")
	if !ok || !strings.Contains(table, "NODE ID") {
		t.Fatalf("output lacks the node table:\n%s", out)
	}
	return body
}

func TestStatusWithoutAutoscaler(t *testing.T) {
	h := newStatusHead(t)
	h.node(t, "h", "10.0.0.1", true, 1)
	h.node(t, "w1", "10.0.0.2", false, 2)
	if err := h.place(t, "busy", "w1", 1); err != nil {
		t.Fatal(err)
	}
	out := statusOutput(t, h.addr)
	want := `Node status
---------------------------------------------------------------
Active:
 1 worker
Idle:
 1 head
Pending:
 (no pending nodes)
Recent failures:
 (no failures)

Resources
---------------------------------------------------------------
Usage:
 1.0/3.0 CPU

Constraints:
 (no request_resources() constraints)
Demands:
 (no resource demands)
`
	if diff := cmp.Diff(want, summary(t, out)); diff != "" {
		t.Errorf("ray status (-want +got):\n%s", diff)
	}
	for _, line := range []string{"h  ", "10.0.0.2", "ALIVE", "CPU 1.0/2.0"} {
		if !strings.Contains(out, line) {
			t.Errorf("node table lacks %q:\n%s", line, out)
		}
	}
}

// The autoscaler's view: nodes named by group, pods launching, a node that missed its heartbeats
// and a failed pod as recent failures, request_resources constraints, pending demand by kind, and
// the shapes the autoscaler reports it cannot serve, infeasible ones apart.
func TestStatusWithAutoscalerReport(t *testing.T) {
	h := newStatusHead(t)
	h.node(t, "h", "10.0.0.1", true, 1)
	h.node(t, "w1", "10.0.0.2", false, 2)
	h.node(t, "w2", "10.0.0.3", false, 2)
	h.node(t, "lost", "10.0.0.4", false, 2)
	h.node(t, "left", "10.0.0.5", false, 2)
	if err := h.srv.UnregisterNode(h.ctx, "left", gracefulDeathReason); err != nil {
		t.Fatal(err)
	}
	h.clk.Step(time.Minute)
	for _, id := range []string{"h", "w1", "w2"} {
		if err := h.srv.Heartbeat(id); err != nil {
			t.Fatal(err)
		}
	}
	h.srv.CheckHeartbeats(h.ctx)

	for _, p := range []struct {
		id, node string
		cpus     float64
	}{{"driver", "h", 1}, {"busy", "w2", 2}} {
		if err := h.place(t, p.id, p.node, p.cpus); err != nil {
			t.Fatalf("placing %s: %v", p.id, err)
		}
	}
	for i, cpus := range []float64{3, 64, 64} {
		if err := h.place(t, fmt.Sprintf("pending-%d", i), "", cpus); err == nil {
			t.Fatalf("a job of %v CPUs was placed; want it pending", cpus)
		}
	}
	if err := h.state.SetRequests([]map[string]float64{{"CPU": 1}, {"CPU": 1}, {"CPU": 2}}); err != nil {
		t.Fatal(err)
	}
	r := &report.Report{
		Time: h.clk.Now(), Cluster: "ns/rc",
		NodeGroups: map[string]string{"h": report.HeadGroup, "w1": "small", "w2": "small", "lost": "small"},
		Launching:  map[string]int{"small": 1},
		FailedPods: []report.FailedPod{{Pod: "rc-small-x", Group: "small", IP: "10.0.0.9", Reason: "Evicted"}},
		Unmet: []report.Unmet{
			{Resources: map[string]float64{"CPU": 64}, Count: 2, Infeasible: true, Reason: "no worker group's node shape can hold {CPU: 64} (groups: small {CPU: 2})"},
			{Resources: map[string]float64{"CPU": 3}, Count: 1, Reason: "group big is at maxReplicas 1"},
		},
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.Storage().Put(h.ctx, report.KVNamespace, report.KVKey, b, true); err != nil {
		t.Fatal(err)
	}
	out := statusOutput(t, h.addr)
	want := `Node status
---------------------------------------------------------------
Active:
 1 headgroup
 1 small
Idle:
 1 small
Pending:
 small, 1 launching
Recent failures:
 small: NodeTerminated: missed heartbeats for more than 15s (ip: 10.0.0.4)
 small: pod rc-small-x failed: Evicted (ip: 10.0.0.9)

Resources
---------------------------------------------------------------
Usage:
 3.0/5.0 CPU

Constraints:
 {'CPU': 1.0}: 2 from request_resources()
 {'CPU': 2.0}: 1 from request_resources()
Demands:
 {'CPU': 3.0}: 1+ pending jobs
 {'CPU': 64.0}: 2+ pending jobs
Infeasible demands:
 {'CPU': 64.0}: 2 bundles: no worker group's node shape can hold {CPU: 64} (groups: small {CPU: 2})
Waiting for capacity:
 {'CPU': 3.0}: 1 bundle: group big is at maxReplicas 1
`
	if diff := cmp.Diff(want, summary(t, out)); diff != "" {
		t.Errorf("ray status (-want +got):\n%s", diff)
	}
}

// A report the autoscaler stopped renewing is set aside with a note, not shown as current.
func TestStatusSetsAsideAStaleReport(t *testing.T) {
	h := newStatusHead(t)
	h.node(t, "h", "10.0.0.1", true, 1)
	r := &report.Report{Time: time.Now().Add(-time.Hour), NodeGroups: map[string]string{"h": report.HeadGroup}, Launching: map[string]int{"small": 3}}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.Storage().Put(h.ctx, report.KVNamespace, report.KVKey, b, true); err != nil {
		t.Fatal(err)
	}
	out := summary(t, statusOutput(t, h.addr))
	for _, want := range []string{"Idle:\n 1 head\n", "Pending:\n (no pending nodes)\n", "(the autoscaler's last report is 1h0m0s old and is not shown"} {
		if !strings.Contains(out, want) {
			t.Errorf("ray status lacks %q:\n%s", want, out)
		}
	}
}
