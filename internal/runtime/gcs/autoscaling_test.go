package gcs

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func activity(t *testing.T, a *AutoscalingState, nodeID string) *gcsv1.NodeActivity {
	t.Helper()
	for _, act := range a.ClusterState().Activity {
		if act.NodeId == nodeID {
			return act
		}
	}
	t.Fatalf("no activity for node %s in %v", nodeID, a.ClusterState().Activity)
	return nil
}

func spec(id, kind string, res map[string]float64) *gcsv1.ProcessSpec {
	return &gcsv1.ProcessSpec{ProcessId: id, Kind: kind, Resources: res}
}

func TestAutoscalingTracksIdleness(t *testing.T) {
	s, clk := newTestServer(t)
	ctx := context.Background()
	a := NewAutoscalingState(s, AutoscalingOptions{Clock: clk, ProcessKinds: []string{"job"}})
	t0 := clk.Now()
	if err := s.RegisterNode(ctx, node("1", false, map[string]float64{"CPU": 2}, nil), nil); err != nil {
		t.Fatal(err)
	}
	if got := activity(t, a, "1").IdleSinceMs; got != t0.UnixMilli() {
		t.Fatalf("new node idle since %d, want %d", got, t0.UnixMilli())
	}

	clk.Step(10 * time.Second)
	if _, err := a.PlaceProcess(Placement{Spec: spec("p1", "serve_replica", map[string]float64{"CPU": 1})}); err != nil {
		t.Fatal(err)
	}
	if got := activity(t, a, "1").IdleSinceMs; got != 0 {
		t.Fatalf("node with a placed process idle since %d, want busy", got)
	}

	clk.Step(10 * time.Second)
	s.ReportProcessEvent("1", &gcsv1.ProcessStatus{Spec: spec("p1", "serve_replica", map[string]float64{"CPU": 1}), State: gcsv1.ProcessState_PROCESS_STATE_EXITED})
	if got, want := activity(t, a, "1").IdleSinceMs, clk.Now().UnixMilli(); got != want {
		t.Fatalf("after the process exited: idle since %d, want %d (the exit time)", got, want)
	}
}

func TestAutoscalingZeroResourceProcessKeepsNodeBusy(t *testing.T) {
	s, clk := newTestServer(t)
	ctx := context.Background()
	a := NewAutoscalingState(s, AutoscalingOptions{Clock: clk, ProcessKinds: []string{"job"}})
	if err := s.RegisterNode(ctx, node("1", false, map[string]float64{"CPU": 2}, nil), nil); err != nil {
		t.Fatal(err)
	}
	driver := spec("driver", "job", nil)
	if _, err := a.PlaceProcess(Placement{Spec: driver, NodeID: "1"}); err != nil {
		t.Fatal(err)
	}
	s.ReportProcessEvent("1", &gcsv1.ProcessStatus{Spec: driver, State: gcsv1.ProcessState_PROCESS_STATE_RUNNING})
	// An unrelated node change must not make the node look idle while the driver runs.
	if err := s.RegisterNode(ctx, node("1", false, map[string]float64{"CPU": 2}, nil), nil); err != nil {
		t.Fatal(err)
	}
	act := activity(t, a, "1")
	if act.IdleSinceMs != 0 || act.RunningProcesses != 1 {
		t.Fatalf("node running a zero-resource job driver: %+v, want busy with 1 process", act)
	}
	s.ReportProcessEvent("1", &gcsv1.ProcessStatus{Spec: driver, State: gcsv1.ProcessState_PROCESS_STATE_EXITED})
	if act := activity(t, a, "1"); act.IdleSinceMs == 0 || act.RunningProcesses != 0 {
		t.Fatalf("after the driver exited: %+v, want idle", act)
	}
}

func TestAutoscalingPendingDemand(t *testing.T) {
	s, clk := newTestServer(t)
	ctx := context.Background()
	a := NewAutoscalingState(s, AutoscalingOptions{Clock: clk})
	if err := s.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 1}, nil), nil); err != nil {
		t.Fatal(err)
	}
	big := spec("job-1", "job", map[string]float64{"CPU": 4})
	first := clk.Now().UnixMilli()
	if _, err := a.PlaceProcess(Placement{Spec: big}); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("placing 4 CPUs on 1: err = %v, want ErrNoCapacity", err)
	}
	clk.Step(time.Second)
	if _, err := a.PlaceProcess(Placement{Spec: big}); !errors.Is(err, ErrNoCapacity) {
		t.Fatal(err)
	}
	if _, err := a.PlaceProcess(Placement{Spec: spec("gone", "job", map[string]float64{"GPU": 1})}); !errors.Is(err, ErrNoCapacity) {
		t.Fatal(err)
	}
	a.Withdraw("gone")
	p := a.ClusterState().Pending
	if len(p) != 1 || p[0].Id != "job-1" || p[0].Kind != "job" || p[0].Resources["CPU"] != 4 || p[0].SinceMs != first {
		t.Fatalf("pending = %v, want job-1 for 4 CPUs since the first attempt", p)
	}

	// A worker joins; the retry places the job and the demand disappears.
	if err := s.RegisterNode(ctx, node("2", false, map[string]float64{"CPU": 4}, nil), nil); err != nil {
		t.Fatal(err)
	}
	n, err := a.PlaceProcess(Placement{Spec: big})
	if err != nil || n.NodeId != "2" {
		t.Fatalf("retry: node %v, err %v", n, err)
	}
	if p := a.ClusterState().Pending; len(p) != 0 {
		t.Fatalf("pending after placement = %v", p)
	}
}

func TestAutoscalingDropsDeadNodes(t *testing.T) {
	s, clk := newTestServer(t)
	ctx := context.Background()
	a := NewAutoscalingState(s, AutoscalingOptions{Clock: clk})
	if err := s.RegisterNode(ctx, node("1", false, map[string]float64{"CPU": 1}, nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.UnregisterNode(ctx, "1", "bye"); err != nil {
		t.Fatal(err)
	}
	if st := a.ClusterState(); len(st.Nodes) != 0 || len(st.Activity) != 0 {
		t.Fatalf("state after the node died: %v", st)
	}
}

func TestAutoscalingServiceOverGRPC(t *testing.T) {
	s, clk := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := NewAutoscalingState(s, AutoscalingOptions{Clock: clk})
	s.RegisterService(a.Register)
	if err := s.RegisterNode(ctx, node("1", true, map[string]float64{"CPU": 1}, nil), nil); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, l) }()
	conn, err := Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := gcsv1.NewAutoscalerStateServiceClient(conn)

	_, err = c.RequestResources(ctx, &gcsv1.RequestResourcesRequest{Bundles: []*gcsv1.ResourceBundle{
		{Resources: map[string]float64{"CPU": 1}}, {Resources: map[string]float64{"CPU": -2}},
	}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "bundles[1].CPU") {
		t.Fatalf("negative request: err = %v, want InvalidArgument naming bundles[1].CPU", err)
	}
	if _, err := c.RequestResources(ctx, &gcsv1.RequestResourcesRequest{Bundles: []*gcsv1.ResourceBundle{
		{Resources: map[string]float64{"CPU": 3}},
	}}); err != nil {
		t.Fatal(err)
	}
	st, err := c.GetClusterState(ctx, &gcsv1.GetClusterStateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 1 || len(st.Activity) != 1 || st.Activity[0].IdleSinceMs == 0 {
		t.Fatalf("state: %v", st)
	}
	if len(st.Requested) != 1 || st.Requested[0].Resources["CPU"] != 3 {
		t.Fatalf("requested = %v, want one bundle of 3 CPUs", st.Requested)
	}
	if _, err := c.RequestResources(ctx, &gcsv1.RequestResourcesRequest{}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.GetClusterState(ctx, &gcsv1.GetClusterStateRequest{}); err != nil || len(st.Requested) != 0 {
		t.Fatalf("after withdrawing: %v, %v", st, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

func TestDemandReportingServerReportsThroughTheState(t *testing.T) {
	s, clk := newTestServer(t)
	a := NewAutoscalingState(s, AutoscalingOptions{Clock: clk})
	cluster := a.Cluster()
	if _, err := cluster.PlaceProcess(Placement{Spec: spec("r1", "serve_replica", map[string]float64{"CPU": 1})}); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("placing on an empty cluster: %v", err)
	}
	if p := a.ClusterState().Pending; len(p) != 1 || p[0].Id != "r1" || p[0].Kind != "serve_replica" {
		t.Fatalf("pending = %v, want r1", p)
	}
	// The rest of the Server is reachable unchanged.
	if len(cluster.Nodes()) != 0 {
		t.Fatal("nodes on an empty cluster")
	}
}
