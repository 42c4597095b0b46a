package raycluster

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/builders"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func pod(name string, t rayv1.RayNodeType, group string, phase corev1.PodPhase, ready bool) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		rayv1.RayNodeTypeLabelKey: string(t), rayv1.RayNodeGroupLabelKey: group}}}
	p.Status.Phase = phase
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	return p
}

func testScope(c *rayv1.RayCluster, pods ...corev1.Pod) *scope {
	s := &scope{cluster: c, now: testNow, conditions: true, pods: pods, allPods: pods}
	setWorkerCounts(c, pods)
	return s
}

func cond(status metav1.ConditionStatus, reason string) *metav1.Condition {
	return &metav1.Condition{Status: status, Reason: reason}
}

var ignoreCondDetails = cmpopts.IgnoreFields(metav1.Condition{}, "Type", "Message", "LastTransitionTime", "ObservedGeneration")

func withCondition(c *rayv1.RayCluster, t rayv1.RayClusterConditionType, status metav1.ConditionStatus, reason string) *rayv1.RayCluster {
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: string(t), Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(testNow.Add(-time.Hour))})
	return c
}

func TestSetHeadPodReadyCondition(t *testing.T) {
	running := pod("h", rayv1.HeadNode, "headgroup", corev1.PodRunning, true)
	crash := pod("h", rayv1.HeadNode, "headgroup", corev1.PodRunning, false)
	crash.Status.Conditions[0].Reason = "ContainersNotReady"
	crash.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "ray", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off"}}}}
	cases := map[string]struct {
		pods     []corev1.Pod
		replaced *headReplace
		old      *metav1.Condition
		want     *metav1.Condition
	}{
		"no head":               {want: cond(metav1.ConditionFalse, rayv1.HeadPodNotFound)},
		"running and ready":     {pods: []corev1.Pod{running}, want: cond(metav1.ConditionTrue, rayv1.HeadPodRunningAndReady)},
		"pending":               {pods: []corev1.Pod{pod("h", rayv1.HeadNode, "headgroup", corev1.PodPending, false)}, want: cond(metav1.ConditionFalse, rayv1.HeadPodNotReady)},
		"container reason wins": {pods: []corev1.Pod{crash}, want: cond(metav1.ConditionFalse, "CrashLoopBackOff")},
		"replaced this pass":    {pods: []corev1.Pod{running}, replaced: &headReplace{pod: "old", reason: "x", current: true}, want: cond(metav1.ConditionFalse, rayv1.HeadPodReplaced)},
		"replacement pending":   {replaced: &headReplace{pod: "old", reason: "x"}, want: cond(metav1.ConditionFalse, rayv1.HeadPodReplaced)},
		"replacement ready":     {pods: []corev1.Pod{running}, replaced: &headReplace{pod: "old", reason: "x"}, want: cond(metav1.ConditionTrue, rayv1.HeadPodRunningAndReady)},
		"sticky from status":    {old: cond(metav1.ConditionFalse, rayv1.HeadPodReplaced), want: cond(metav1.ConditionFalse, rayv1.HeadPodReplaced)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &rayv1.RayCluster{}
			s := testScope(c, tc.pods...)
			s.headReplaced = tc.replaced
			var old rayv1.RayClusterStatus
			if tc.old != nil {
				tc.old.Type = string(rayv1.HeadPodReady)
				old.Conditions = []metav1.Condition{*tc.old}
			}
			setHeadPodReadyCondition(c, s, old)
			got := meta.FindStatusCondition(c.Status.Conditions, string(rayv1.HeadPodReady))
			if diff := cmp.Diff(tc.want, got, ignoreCondDetails); diff != "" {
				t.Errorf("HeadPodReady (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestSetProvisionedCondition(t *testing.T) {
	head := pod("h", rayv1.HeadNode, "headgroup", corev1.PodRunning, true)
	w := pod("w", rayv1.WorkerNode, "g", corev1.PodRunning, true)
	pending := pod("w2", rayv1.WorkerNode, "g", corev1.PodPending, false)
	mk := func() *rayv1.RayCluster {
		c := &rayv1.RayCluster{}
		c.Spec.WorkerGroupSpecs = []rayv1.WorkerGroupSpec{{GroupName: "g", Replicas: ptr.To[int32](1), MinReplicas: ptr.To[int32](0), MaxReplicas: ptr.To[int32](5)}}
		return c
	}
	cases := map[string]struct {
		cluster *rayv1.RayCluster
		pods    []corev1.Pod
		want    *metav1.Condition
	}{
		"all ready":             {cluster: mk(), pods: []corev1.Pod{head, w}, want: cond(metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime)},
		"a worker missing":      {cluster: mk(), pods: []corev1.Pod{head}, want: cond(metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning)},
		"a surplus pod pending": {cluster: mk(), pods: []corev1.Pod{head, w, pending}, want: cond(metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning)},
		"sticky once true":      {cluster: withCondition(mk(), rayv1.RayClusterProvisioned, metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime), pods: []corev1.Pod{head}, want: cond(metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime)},
		"suspended resets":      {cluster: withCondition(withCondition(mk(), rayv1.RayClusterProvisioned, metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime), rayv1.RayClusterSuspended, metav1.ConditionTrue, rayv1.RayClusterSuspendedReason), want: cond(metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := testScope(tc.cluster, tc.pods...)
			old := *tc.cluster.Status.DeepCopy()
			setProvisionedCondition(tc.cluster, s, old)
			got := meta.FindStatusCondition(tc.cluster.Status.Conditions, string(rayv1.RayClusterProvisioned))
			if diff := cmp.Diff(tc.want, got, ignoreCondDetails); diff != "" {
				t.Errorf("RayClusterProvisioned (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestSetSuspendConditions(t *testing.T) {
	p := pod("h", rayv1.HeadNode, "headgroup", corev1.PodRunning, true)
	type want struct{ suspending, suspended metav1.ConditionStatus }
	cases := map[string]struct {
		suspend    bool
		suspending bool
		suspended  bool
		pods       []corev1.Pod
		pending    bool // a pod create is not cached yet
		want       want
	}{
		"running":                        {want: want{metav1.ConditionFalse, metav1.ConditionFalse}},
		"suspending, a create pending":   {suspend: true, suspending: true, pending: true, want: want{metav1.ConditionTrue, metav1.ConditionFalse}},
		"suspend requested":              {suspend: true, pods: []corev1.Pod{p}, want: want{metav1.ConditionTrue, metav1.ConditionFalse}},
		"suspending with pods left":      {suspend: true, suspending: true, pods: []corev1.Pod{p}, want: want{metav1.ConditionTrue, metav1.ConditionFalse}},
		"suspending, pods gone":          {suspend: true, suspending: true, want: want{metav1.ConditionFalse, metav1.ConditionTrue}},
		"suspending completes on resume": {suspend: false, suspending: true, want: want{metav1.ConditionFalse, metav1.ConditionTrue}},
		"suspended stays":                {suspend: true, suspended: true, want: want{metav1.ConditionFalse, metav1.ConditionTrue}},
		"resumed":                        {suspend: false, suspended: true, want: want{metav1.ConditionFalse, metav1.ConditionFalse}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &rayv1.RayCluster{}
			c.Spec.Suspend = ptr.To(tc.suspend)
			withCondition(c, rayv1.RayClusterSuspending, boolStatus(tc.suspending), rayv1.RayClusterSuspendingReason)
			withCondition(c, rayv1.RayClusterSuspended, boolStatus(tc.suspended), rayv1.RayClusterSuspendedReason)
			old := *c.Status.DeepCopy()
			s := testScope(c, tc.pods...)
			s.createsPending = tc.pending
			setSuspendConditions(c, s, old)
			got := want{
				meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterSuspending)).Status,
				meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterSuspended)).Status,
			}
			if got != tc.want {
				t.Errorf("(suspending, suspended) = %v, want %v", got, tc.want)
			}
		})
	}
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

func TestSetReplicaFailureCondition(t *testing.T) {
	c := &rayv1.RayCluster{}
	s := testScope(c)
	s.replicaFailure = &failure{reason: rayv1.FailedCreateWorkerPod, message: "quota"}
	setReplicaFailureCondition(c, s)
	if diff := cmp.Diff(cond(metav1.ConditionTrue, rayv1.FailedCreateWorkerPod), meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterReplicaFailure)), ignoreCondDetails); diff != "" {
		t.Errorf("after a failure (-want,+got):\n%s", diff)
	}
	s.replicaFailure = nil
	setReplicaFailureCondition(c, s)
	if got := meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterReplicaFailure)); got != nil {
		t.Errorf("ReplicaFailure kept after a clean reconcile: %+v", got)
	}
}

func TestSetSpecValidCondition(t *testing.T) {
	c := &rayv1.RayCluster{}
	s := testScope(c)
	s.validationErr = errors.New("spec.headGroupSpec.labels: bad")
	setSpecValidCondition(c, s)
	got := meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterSpecValid))
	if got.Status != metav1.ConditionFalse || got.Reason != rayv1.InvalidRayClusterSpec || got.Message != "spec.headGroupSpec.labels: bad" {
		t.Errorf("invalid spec: %+v", got)
	}
	s.validationErr = nil
	setSpecValidCondition(c, s)
	if got := meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterSpecValid)); got.Status != metav1.ConditionTrue {
		t.Errorf("valid spec: %+v", got)
	}
}

func TestSetState(t *testing.T) {
	head := pod("h", rayv1.HeadNode, "headgroup", corev1.PodRunning, true)
	pendingHead := pod("h", rayv1.HeadNode, "headgroup", corev1.PodPending, false)
	cases := map[string]struct {
		suspend    bool
		pods       []corev1.Pod
		err        error
		invalid    error
		pending    bool   // a pod create is not cached yet
		blocked    string // why pods cannot be created
		prev       rayv1.ClusterState
		want       rayv1.ClusterState
		wantReason string
	}{
		"ready":                   {pods: []corev1.Pod{head}, want: rayv1.ClusterStateReady},
		"pending is not ready":    {pods: []corev1.Pod{pendingHead}, want: ""},
		"ready is withdrawn":      {pods: []corev1.Pod{pendingHead}, prev: rayv1.ClusterStateReady, want: ""},
		"reconcile error":         {pods: []corev1.Pod{head}, err: errors.New("boom"), want: "", wantReason: "boom"},
		"invalid spec":            {invalid: errors.New("bad"), want: "", wantReason: "bad"},
		"suspended":               {suspend: true, want: rayv1.ClusterStateSuspended},
		"suspending is not ready": {suspend: true, pods: []corev1.Pod{head}, want: ""},
		"a create pending":        {suspend: true, pending: true, want: ""},
		"pods blocked":            {blocked: "secret missing", want: "", wantReason: "secret missing"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &rayv1.RayCluster{}
			c.Spec.Suspend = ptr.To(tc.suspend)
			c.Status.State = tc.prev
			s := testScope(c, tc.pods...)
			s.validationErr = tc.invalid
			s.createsPending, s.podsBlocked = tc.pending, tc.blocked
			setState(c, s, tc.err)
			if c.Status.State != tc.want || c.Status.Reason != tc.wantReason {
				t.Errorf("state %q reason %q, want %q %q", c.Status.State, c.Status.Reason, tc.want, tc.wantReason)
			}
			if tc.want != "" && tc.want != tc.prev && !c.Status.StateTransitionTimes[tc.want].Time.Equal(testNow) {
				t.Errorf("transition time of %q not recorded: %v", tc.want, c.Status.StateTransitionTimes)
			}
		})
	}
}

func TestStatusChangedIgnoresLastUpdateTime(t *testing.T) {
	a := rayv1.RayClusterStatus{State: rayv1.ClusterStateReady, LastUpdateTime: ptrTime(testNow)}
	b := *a.DeepCopy()
	b.LastUpdateTime = ptrTime(testNow.Add(time.Minute))
	if statusChanged(&a, &b) {
		t.Error("a lastUpdateTime-only difference counts as a change")
	}
	b.ReadyWorkerReplicas = 1
	if !statusChanged(&a, &b) {
		t.Error("a replica count change is not a change")
	}
}

func TestSetWorkerCountsAndResources(t *testing.T) {
	c := builders.RayCluster("ns", "c").WorkerGroup("a", 2, 1, 3).WorkerGroup("b", 5, 0, 2).Obj()
	c.Spec.WorkerGroupSpecs[0].NumOfHosts = 2
	c.Spec.WorkerGroupSpecs[1].Template.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": *resourceQty("1")}
	setWorkerCounts(c, []corev1.Pod{pod("w", rayv1.WorkerNode, "a", corev1.PodRunning, false)})
	setDesiredResources(c)
	st := c.Status
	// a: 2 replicas x 2 hosts; b: clamped to max 2.
	if st.DesiredWorkerReplicas != 6 || st.MinWorkerReplicas != 2 || st.MaxWorkerReplicas != 8 || st.AvailableWorkerReplicas != 1 || st.ReadyWorkerReplicas != 0 {
		t.Errorf("counts: %+v", st)
	}
	if st.DesiredCPU.String() != "7" || st.DesiredGPU.String() != "2" || st.DesiredMemory.String() != "2Gi" {
		t.Errorf("resources: cpu %s gpu %s memory %s", st.DesiredCPU.String(), st.DesiredGPU.String(), st.DesiredMemory.String())
	}
}
