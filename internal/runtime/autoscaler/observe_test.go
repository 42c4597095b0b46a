package autoscaler

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func pod(name, nodeType, group, ip string, phase corev1.PodPhase, deleting bool) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			rayv1.RayNodeTypeLabelKey: nodeType, rayv1.RayNodeGroupLabelKey: group,
		}},
		Status: corev1.PodStatus{Phase: phase, PodIP: ip},
	}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	}
	return p
}

func testCluster() *rayv1.RayCluster {
	return &rayv1.RayCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", ResourceVersion: "42"},
		Spec: rayv1.RayClusterSpec{WorkerGroupSpecs: []rayv1.WorkerGroupSpec{
			{GroupName: "ok", RayStartParams: map[string]string{"num-cpus": "2"}},
			{GroupName: "bad", RayStartParams: map[string]string{"num-cpus": "two"}},
		}},
	}
}

func TestObserveJoinsNodesToPodsByIP(t *testing.T) {
	now := time.Unix(1000, 0)
	pods := []corev1.Pod{
		pod("head-pod", "head", "headgroup", "10.0.0.1", corev1.PodRunning, false),
		pod("w-run", "worker", "ok", "10.0.0.2", corev1.PodRunning, false),
		pod("w-new", "worker", "ok", "", corev1.PodPending, false),
		pod("w-gone", "worker", "ok", "10.0.0.3", corev1.PodRunning, true),
		pod("w-failed", "worker", "ok", "10.0.0.4", corev1.PodFailed, false),
	}
	st := State{
		Nodes: []HeadNode{
			{ID: "h", IP: "10.0.0.1", Head: true, Total: plan.Resources{"CPU": 1}},
			{ID: "a", IP: "10.0.0.2", Total: plan.Resources{"CPU": 2}, IdleSince: now.Add(-time.Minute)},
			// The node of a terminating pod is not matched: the pod is leaving.
			{ID: "b", IP: "10.0.0.3", Total: plan.Resources{"CPU": 2}},
			{ID: "stray", IP: "10.0.0.99"},
		},
		Demand: []plan.Resources{{"CPU": 1}},
	}
	o := observe(testCluster(), pods, st, now, 7)

	wantPods := []plan.Pod{
		{Name: "w-run", Group: "ok", State: plan.PodRunning},
		{Name: "w-new", Group: "ok", State: plan.PodCreating},
		{Name: "w-gone", Group: "ok", State: plan.PodDeleting},
		{Name: "w-failed", Group: "ok", State: plan.PodDeleting},
	}
	if diff := cmp.Diff(wantPods, o.input.Pods); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	var nodes []string
	for _, n := range o.input.Nodes {
		nodes = append(nodes, n.Pod)
	}
	if diff := cmp.Diff([]string{"head-pod", "w-run"}, nodes); diff != "" {
		t.Errorf("matched nodes (-want +got):\n%s", diff)
	}
	if o.unmatchedNodes != 2 {
		t.Errorf("unmatched nodes = %d, want 2 (the terminating pod's and the stray)", o.unmatchedNodes)
	}
	if _, ok := o.input.Shapes["ok"]; !ok || len(o.shapeErrors) != 1 || !strings.Contains(o.shapeErrors[0], "workerGroupSpecs[1].rayStartParams.num-cpus") {
		t.Errorf("shapes %v, errors %v; want ok's shape and one error naming workerGroupSpecs[1]", o.input.Shapes, o.shapeErrors)
	}
	if o.input.MaxWorkers != 7 || !o.input.Now.Equal(now) || len(o.input.Demand) != 1 {
		t.Errorf("input passthrough: %+v", o.input)
	}
}

func TestScalePatch(t *testing.T) {
	c := testCluster()
	c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = []string{"x"}
	d := plan.Decision{Groups: []plan.GroupDecision{
		{Group: "ok", Replicas: 1, WorkersToDelete: []string{"y"}, Changed: true},
		{Group: "bad", Replicas: 3},
	}}
	raw, err := scalePatch(c, d)
	if err != nil {
		t.Fatal(err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(raw, &ops); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"op": "replace", "path": "/metadata/resourceVersion", "value": "42"},
		{"op": "test", "path": "/spec/workerGroupSpecs/0/groupName", "value": "ok"},
		{"op": "add", "path": "/spec/workerGroupSpecs/0/replicas", "value": float64(1)},
		{"op": "add", "path": "/spec/workerGroupSpecs/0/scaleStrategy", "value": map[string]any{"workersToDelete": []any{"y"}}},
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}

	d.Groups[0].Changed = false
	if raw, err := scalePatch(c, d); err != nil || raw != nil {
		t.Errorf("unchanged decision: patch %s, err %v; want none", raw, err)
	}
}

func TestFromClusterState(t *testing.T) {
	idle := time.UnixMilli(5000)
	st := FromClusterState(&gcsv1.GetClusterStateResponse{
		Nodes: []*gcsv1.Node{
			{NodeId: "a", NodeIpAddress: "1", State: gcsv1.NodeState_NODE_STATE_ALIVE, ResourcesTotal: map[string]float64{"CPU": 1}},
			{NodeId: "b", NodeIpAddress: "2", State: gcsv1.NodeState_NODE_STATE_ALIVE},
			{NodeId: "c", NodeIpAddress: "3", State: gcsv1.NodeState_NODE_STATE_ALIVE},
			{NodeId: "dead", State: gcsv1.NodeState_NODE_STATE_DEAD},
		},
		Activity: []*gcsv1.NodeActivity{
			{NodeId: "a", IdleSinceMs: idle.UnixMilli()},
			{NodeId: "b", RunningProcesses: 1},
		},
		Pending:   []*gcsv1.PendingDemand{{Id: "p", Resources: map[string]float64{"GPU": 1}}},
		Requested: []*gcsv1.ResourceBundle{{Resources: map[string]float64{"CPU": 4}}},
	})
	want := State{
		Nodes: []HeadNode{
			{ID: "a", IP: "1", Total: plan.Resources{"CPU": 1}, IdleSince: idle},
			{ID: "b", IP: "2", Busy: true},
			// No activity record: unknown, so never treated as idle.
			{ID: "c", IP: "3", Busy: true},
		},
		Demand:   []plan.Resources{{"GPU": 1}},
		Requests: []plan.Resources{{"CPU": 4}},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
}

// The report for `ray status`: nodes named by group, pods still launching (in flight and asked
// for this round), failed pods, and unmet demand folded by shape.
func TestBuildReport(t *testing.T) {
	now := time.Unix(1000, 0)
	c := testCluster()
	c.Namespace = "ns"
	c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](2)
	pods := []corev1.Pod{
		pod("head-pod", "head", "headgroup", "10.0.0.1", corev1.PodRunning, false),
		pod("w-run", "worker", "ok", "10.0.0.2", corev1.PodRunning, false),
		pod("w-new", "worker", "ok", "", corev1.PodPending, false),
		pod("w-failed", "worker", "ok", "10.0.0.4", corev1.PodFailed, false),
	}
	pods[3].Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "ray-worker", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1},
	}}}
	st := State{Nodes: []HeadNode{
		{ID: "h", IP: "10.0.0.1", Head: true, Total: plan.Resources{"CPU": 1}},
		{ID: "a", IP: "10.0.0.2", Total: plan.Resources{"CPU": 2}, Busy: true},
	}}
	o := observe(c, pods, st, now, 0)
	d := plan.Decision{
		Groups: []plan.GroupDecision{{Group: "ok", Replicas: 3}, {Group: "bad", Replicas: 0}},
		Unmet: []plan.Unmet{
			{Bundle: plan.Resources{"CPU": 64}, Infeasible: true, Reason: "too big"},
			{Bundle: plan.Resources{"CPU": 64}, Infeasible: true, Reason: "too big"},
			{Bundle: plan.Resources{"CPU": 2}, Reason: "at maxReplicas"},
		},
	}
	r := buildReport(c, o, d)
	want := &report.Report{
		Time: now, Cluster: "ns/rc",
		NodeGroups: map[string]string{"h": report.HeadGroup, "a": "ok"},
		// w-new has no node yet, and the third replica has no pod yet.
		Launching:  map[string]int{"ok": 2},
		FailedPods: []report.FailedPod{{Pod: "w-failed", Group: "ok", IP: "10.0.0.4", Reason: "container ray-worker: Error (exit code 1)"}},
		Unmet: []report.Unmet{
			{Resources: map[string]float64{"CPU": 64}, Count: 2, Infeasible: true, Reason: "too big"},
			{Resources: map[string]float64{"CPU": 2}, Count: 1, Reason: "at maxReplicas"},
		},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := report.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("report after a JSON round trip (-want +got):\n%s", diff)
	}
}

func TestNewRefusesMissingNames(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Namespace: "ns"}, "--cluster-name"},
		{Options{ClusterName: "rc"}, "--cluster-namespace"},
		{Options{ClusterName: "rc", Namespace: "ns", Interval: -time.Second}, "interval"},
		{Options{ClusterName: "rc", Namespace: "ns", MaxWorkers: -1}, "max workers"},
	} {
		_, err := New(t.Context(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.opts, err, tc.want)
		}
	}
}
