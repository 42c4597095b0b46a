package rayservice

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func specWith(image string, groups ...string) *rayv1.RayClusterSpec {
	s := &rayv1.RayClusterSpec{HeadGroupSpec: rayv1.HeadGroupSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "ray-head", Image: image}}}}}}
	for _, g := range groups {
		s.WorkerGroupSpecs = append(s.WorkerGroupSpecs, rayv1.WorkerGroupSpec{GroupName: g, Replicas: ptr.To[int32](1),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "w", Image: image}}}}})
	}
	return s
}

func clusterFrom(name string, spec *rayv1.RayClusterSpec) *rayv1.RayCluster {
	rs := &rayv1.RayService{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns", UID: "uid"}, Spec: rayv1.RayServiceSpec{RayClusterSpec: *spec}}
	return BuildRayCluster(rs, name, "test")
}

func TestGoalHashIgnoresScalingAndKueue(t *testing.T) {
	base := specWith("ray:1", "a")
	h := goalHash(base)
	same := base.DeepCopy()
	same.WorkerGroupSpecs[0].Replicas = ptr.To[int32](7)
	same.WorkerGroupSpecs[0].MinReplicas = ptr.To[int32](2)
	same.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = []string{"p"}
	same.WorkerGroupSpecs[0].Template.Spec.Tolerations = []corev1.Toleration{{Key: "kueue"}}
	same.HeadGroupSpec.Template.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue"}}
	same.Suspend = ptr.To(true)
	if goalHash(same) != h {
		t.Error("replicas, workersToDelete, tolerations, scheduling gates or suspend changed the hash")
	}
	if goalHash(specWith("ray:2", "a")) == h {
		t.Error("an image change did not change the hash")
	}
}

func TestCompareSpec(t *testing.T) {
	rc := clusterFrom("c", specWith("ray:1", "a"))
	cases := map[string]struct {
		goal *rayv1.RayClusterSpec
		want specMatch
	}{
		"same":            {specWith("ray:1", "a"), specSame},
		"appended group":  {specWith("ray:1", "a", "b"), specAppendedGroups},
		"changed image":   {specWith("ray:2", "a"), specDifferent},
		"removed group":   {specWith("ray:1"), specDifferent},
		"changed + added": {specWith("ray:2", "a", "b"), specDifferent},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := compareSpec(tc.goal, rc); got != tc.want {
				t.Errorf("compareSpec = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecideRollout(t *testing.T) {
	v1, v2, v3 := specWith("ray:1", "a"), specWith("ray:2", "a"), specWith("ray:3", "a")
	active := clusterFrom("svc-aaaaa", v1)
	pending := clusterFrom("svc-bbbbb", v2)
	cases := map[string]struct {
		in   rolloutInput
		want rolloutDecision
	}{
		"first cluster is named, not created": {
			in:   rolloutInput{goal: v1, upgrade: true, newName: fixedName("svc-new")},
			want: rolloutDecision{pendingName: "svc-new"},
		},
		"named pending cluster is created": {
			in:   rolloutInput{goal: v1, upgrade: true, pendingName: "svc-bbbbb", newName: fixedName("svc-new")},
			want: rolloutDecision{pendingName: "svc-bbbbb", createPending: true},
		},
		"steady": {
			in:   rolloutInput{goal: v1, upgrade: true, activeName: active.Name, active: active, newName: fixedName("svc-new")},
			want: rolloutDecision{activeName: active.Name},
		},
		"cluster change starts an upgrade": {
			in:   rolloutInput{goal: v2, upgrade: true, activeName: active.Name, active: active, newName: fixedName("svc-new")},
			want: rolloutDecision{activeName: active.Name, pendingName: "svc-new"},
		},
		"cluster change ignored with None": {
			in:   rolloutInput{goal: v2, upgrade: false, activeName: active.Name, active: active, newName: fixedName("svc-new")},
			want: rolloutDecision{activeName: active.Name},
		},
		"appended worker group updates the active cluster in place": {
			in:   rolloutInput{goal: specWith("ray:1", "a", "b"), upgrade: true, activeName: active.Name, active: active, newName: fixedName("svc-new")},
			want: rolloutDecision{activeName: active.Name, updateActive: true},
		},
		"upgrade in progress continues": {
			in:   rolloutInput{goal: v2, upgrade: true, activeName: active.Name, active: active, pendingName: pending.Name, pending: pending, newName: fixedName("svc-new")},
			want: rolloutDecision{activeName: active.Name, pendingName: pending.Name},
		},
		"goal reverted to the active spec drops the pending cluster": {
			in:   rolloutInput{goal: v1, upgrade: true, activeName: active.Name, active: active, pendingName: pending.Name, pending: pending, newName: fixedName("svc-new")},
			want: rolloutDecision{activeName: active.Name},
		},
		"third spec replaces the pending cluster": {
			in:   rolloutInput{goal: v3, upgrade: true, activeName: active.Name, active: active, pendingName: pending.Name, pending: pending, newName: fixedName("svc-new")},
			want: rolloutDecision{activeName: active.Name, pendingName: "svc-new"},
		},
		"vanished active cluster is replaced": {
			in:   rolloutInput{goal: v1, upgrade: true, activeName: active.Name, newName: fixedName("svc-new")},
			want: rolloutDecision{pendingName: "svc-new"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := decideRollout(tc.in)
			got.note = ""
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(rolloutDecision{})); diff != "" {
				t.Errorf("decideRollout (-want,+got):\n%s", diff)
			}
		})
	}
}

func TestNeedsSubmit(t *testing.T) {
	e := cacheEntry{clusterUID: "c1", configHash: "h1", headUID: "p1"}
	rejected := e
	rejected.rejected = "bad"
	cases := map[string]struct {
		e        cacheEntry
		cached   bool
		hash     string
		head     types.UID
		reported int
		want     bool
	}{
		"nothing cached (operator restart)": {cached: false, hash: "h1", head: "p1", want: true},
		"unchanged":                         {e: e, cached: true, hash: "h1", head: "p1", reported: 1, want: false},
		"config changed":                    {e: e, cached: true, hash: "h2", head: "p1", reported: 1, want: true},
		"head pod restarted":                {e: e, cached: true, hash: "h1", head: "p2", reported: 1, want: true},
		"head lost its applications":        {e: e, cached: true, hash: "h1", head: "p1", reported: 0, want: true},
		"rejected config is not retried":    {e: rejected, cached: true, hash: "h1", head: "p1", reported: 0, want: false},
		"rejected config, new config":       {e: rejected, cached: true, hash: "h2", head: "p1", want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := needsSubmit(tc.e, tc.cached, "c1", tc.hash, tc.head, tc.reported, 1); got != tc.want {
				t.Errorf("needsSubmit = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTrafficPolicy(t *testing.T) {
	running := map[string]rayv1.AppStatus{"a": {Status: rayv1.ApplicationStatusRunning}, "b": {Status: rayv1.ApplicationStatusRunning}}
	deploying := map[string]rayv1.AppStatus{"a": {Status: rayv1.ApplicationStatusRunning}, "b": {Status: rayv1.ApplicationStatusDeploying}}
	if readyForTraffic(nil, 1) || readyForTraffic(deploying, 1) || readyForTraffic(running, 0) || !readyForTraffic(running, 1) {
		t.Error("readyForTraffic: wants every app RUNNING, at least one app and one healthy proxy")
	}
	if got := trafficTarget("a", "p", false); got != "a" {
		t.Errorf("not ready pending: target %q, want the active cluster", got)
	}
	if got := trafficTarget("a", "p", true); got != "p" {
		t.Errorf("ready pending: target %q", got)
	}
	if got := trafficTarget("", "p", false); got != "" {
		t.Errorf("first cluster not ready: target %q, want none", got)
	}
}

func TestServeBackoff(t *testing.T) {
	for _, tc := range []struct{ waited, want time.Duration }{
		{0, 500 * time.Millisecond}, {4 * time.Second, 2 * time.Second}, {time.Minute, 5 * time.Second},
	} {
		if got := serveBackoff(tc.waited, 500*time.Millisecond, 5*time.Second); got != tc.want {
			t.Errorf("serveBackoff(%s) = %s, want %s", tc.waited, got, tc.want)
		}
	}
}

func TestCountReadyEndpoints(t *testing.T) {
	ep := func(uid string, ready bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", UID: types.UID(uid)}}
	}
	slices := []discoveryv1.EndpointSlice{
		{Endpoints: []discoveryv1.Endpoint{ep("a", true), ep("b", false)}},
		{Endpoints: []discoveryv1.Endpoint{ep("a", true), ep("c", true)}}, // a pod in two slices (IPv4 and IPv6) counts once
	}
	if got := countReadyEndpoints(slices); got != 2 {
		t.Errorf("countReadyEndpoints = %d, want 2", got)
	}
}

func TestServeConfigJSON(t *testing.T) {
	a, err := serveConfigJSON("applications:\n- name: x\n  import_path: m:a\nhttp_options: {port: 8000}\n")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := serveConfigJSON("http_options:\n  port: 8000\napplications: [{import_path: 'm:a', name: x}]")
	if configHash(a) != configHash(b) {
		t.Errorf("formatting changed the hash: %s vs %s", a, b)
	}
	if _, err := serveConfigJSON("- not\n- a mapping"); err == nil {
		t.Error("a YAML list was accepted")
	}
	if numApplications(a) != 1 {
		t.Errorf("numApplications = %d", numApplications(a))
	}
}

// fixedName is a rolloutInput.newName that always mints name.
func fixedName(name string) func() string { return func() string { return name } }
