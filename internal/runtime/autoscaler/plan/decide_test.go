package plan

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type groupOpt func(*rayv1.WorkerGroupSpec)

func grp(name string, minR, maxR int32, opts ...groupOpt) rayv1.WorkerGroupSpec {
	g := rayv1.WorkerGroupSpec{GroupName: name, MinReplicas: ptr.To(minR), MaxReplicas: ptr.To(maxR), NumOfHosts: 1}
	for _, o := range opts {
		o(&g)
	}
	return g
}

func replicas(n int32) groupOpt { return func(g *rayv1.WorkerGroupSpec) { g.Replicas = ptr.To(n) } }
func hosts(n int32) groupOpt    { return func(g *rayv1.WorkerGroupSpec) { g.NumOfHosts = n } }
func suspended() groupOpt       { return func(g *rayv1.WorkerGroupSpec) { g.Suspend = ptr.To(true) } }
func groupIdle(s int32) groupOpt {
	return func(g *rayv1.WorkerGroupSpec) { g.IdleTimeoutSeconds = ptr.To(s) }
}
func toDelete(names ...string) groupOpt {
	return func(g *rayv1.WorkerGroupSpec) { g.ScaleStrategy.WorkersToDelete = names }
}

type clusterOpt func(*rayv1.RayCluster)

func mode(m rayv1.UpscalingMode) clusterOpt {
	return func(c *rayv1.RayCluster) { opts(c).UpscalingMode = &m }
}
func globalIdle(s int32) clusterOpt {
	return func(c *rayv1.RayCluster) { opts(c).IdleTimeoutSeconds = ptr.To(s) }
}
func opts(c *rayv1.RayCluster) *rayv1.AutoscalerOptions {
	if c.Spec.AutoscalerOptions == nil {
		c.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{}
	}
	return c.Spec.AutoscalerOptions
}

func cluster(groups []rayv1.WorkerGroupSpec, o ...clusterOpt) *rayv1.RayCluster {
	c := &rayv1.RayCluster{Spec: rayv1.RayClusterSpec{EnableInTreeAutoscaling: ptr.To(true), WorkerGroupSpecs: groups}}
	for _, f := range o {
		f(c)
	}
	return c
}

func cpu(n float64) Resources { return Resources{"CPU": n} }

func times(n int, r Resources) []Resources {
	out := make([]Resources, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func running(group string, names ...string) []Pod {
	var out []Pod
	for _, n := range names {
		out = append(out, Pod{Name: n, Group: group, State: PodRunning})
	}
	return out
}

func creating(group string, names ...string) []Pod {
	var out []Pod
	for _, n := range names {
		out = append(out, Pod{Name: n, Group: group, State: PodCreating})
	}
	return out
}

// head is a head node with nothing free, so demand must go to workers.
func head() Node {
	return Node{Pod: "head", Head: true, Total: cpu(1), Available: cpu(0)}
}

func idleNode(pod string, shape Resources, idleFor time.Duration) Node {
	return Node{Pod: pod, Total: shape, Available: shape, IdleSince: now.Add(-idleFor)}
}

func busyNode(pod string, shape, avail Resources) Node {
	return Node{Pod: pod, Total: shape, Available: avail, Busy: true}
}

func cat[T any](parts ...[]T) []T { return slices.Concat(parts...) }

type want struct {
	replicas int32
	delete   []string // the complete new workersToDelete
	changed  bool
	reason   string // a substring of the group's reason
}

type wantUnmet struct {
	n          int
	infeasible bool
	reason     string
}

type tcase struct {
	name       string
	cluster    *rayv1.RayCluster
	shapes     map[string]Resources
	pods       []Pod
	nodes      []Node
	demand     []Resources
	requests   []Resources
	maxWorkers int
	want       map[string]want
	unmet      *wantUnmet
}

func run(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(Input{
				Cluster: tc.cluster, Shapes: tc.shapes, Pods: tc.pods, Nodes: tc.nodes,
				Demand: tc.demand, Requests: tc.requests, MaxWorkers: tc.maxWorkers, Now: now,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Groups) != len(tc.cluster.Spec.WorkerGroupSpecs) {
				t.Fatalf("decision has %d groups, the cluster %d", len(d.Groups), len(tc.cluster.Spec.WorkerGroupSpecs))
			}
			for name, w := range tc.want {
				g, ok := d.Group(name)
				if !ok {
					t.Fatalf("no decision for group %s", name)
				}
				if g.Replicas != w.replicas {
					t.Errorf("group %s: replicas = %d, want %d (reason: %s)", name, g.Replicas, w.replicas, g.Reason)
				}
				if diff := cmp.Diff(w.delete, g.WorkersToDelete); diff != "" {
					t.Errorf("group %s: workersToDelete (-want +got):\n%s", name, diff)
				}
				if g.Changed != w.changed {
					t.Errorf("group %s: changed = %v, want %v (reason: %s)", name, g.Changed, w.changed, g.Reason)
				}
				if !strings.Contains(g.Reason, w.reason) {
					t.Errorf("group %s: reason %q does not contain %q", name, g.Reason, w.reason)
				}
				for _, del := range g.Deletions {
					if del.Reason == "" {
						t.Errorf("group %s: deletion of %s has no reason", name, del.Pod)
					}
				}
			}
			if tc.unmet == nil {
				if len(d.Unmet) != 0 {
					t.Errorf("unmet = %+v, want none", d.Unmet)
				}
				return
			}
			if len(d.Unmet) != tc.unmet.n {
				t.Fatalf("unmet = %+v, want %d", d.Unmet, tc.unmet.n)
			}
			for _, u := range d.Unmet {
				if u.Infeasible != tc.unmet.infeasible || !strings.Contains(u.Reason, tc.unmet.reason) {
					t.Errorf("unmet %+v, want infeasible=%v and a reason containing %q", u, tc.unmet.infeasible, tc.unmet.reason)
				}
			}
		})
	}
}

func TestScaleUpBinPacking(t *testing.T) {
	small := map[string]Resources{"small": cpu(2)}
	run(t, []tcase{
		{
			name:    "no demand, nothing changes and nothing is written",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 0, 10, replicas(1))}),
			shapes:  small, pods: running("small", "w1"), nodes: []Node{head(), busyNode("w1", cpu(2), cpu(1))},
			want: map[string]want{"small": {replicas: 1, changed: false, reason: "no change"}},
		},
		{
			name:    "demand that fits on free capacity adds nothing",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 0, 10, replicas(1))}),
			shapes:  small, pods: running("small", "w1"), nodes: []Node{head(), busyNode("w1", cpu(2), cpu(1))},
			demand: []Resources{cpu(1)},
			want:   map[string]want{"small": {replicas: 1}},
		},
		{
			name:    "three 1-CPU bundles pack two per 2-CPU node",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 0, 10, replicas(0))}),
			shapes:  small, nodes: []Node{head()}, demand: times(3, cpu(1)),
			want: map[string]want{"small": {replicas: 2, changed: true, reason: "scale up from 0 to 2 replicas for 3 pending"}},
		},
		{
			name:    "nil replicas count as minReplicas",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 1, 10)}),
			shapes:  small, pods: running("small", "w1"), nodes: []Node{head(), busyNode("w1", cpu(2), cpu(0))},
			demand: []Resources{cpu(2)},
			want:   map[string]want{"small": {replicas: 2, changed: true}},
		},
		{
			name:    "nil replicas at minReplicas without demand is not rewritten",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 2, 10)}),
			shapes:  small, pods: running("small", "w1", "w2"),
			nodes: []Node{head(), busyNode("w1", cpu(2), cpu(0)), busyNode("w2", cpu(2), cpu(0))},
			want:  map[string]want{"small": {replicas: 2, changed: false}},
		},
		{
			name: "cheapest fit: CPU demand avoids the GPU group and the big group",
			cluster: cluster([]rayv1.WorkerGroupSpec{
				grp("gpu", 0, 10, replicas(0)), grp("big", 0, 10, replicas(0)), grp("cpu", 0, 10, replicas(0)),
			}),
			shapes: map[string]Resources{"gpu": {"CPU": 4, "GPU": 1}, "big": cpu(16), "cpu": cpu(4)},
			nodes:  []Node{head()}, demand: []Resources{cpu(2)},
			want: map[string]want{
				"gpu": {replicas: 0}, "big": {replicas: 0},
				"cpu": {replicas: 1, changed: true},
			},
		},
		{
			name: "cheapest fit: GPU demand goes to the GPU group, a large CPU bundle to the big group",
			cluster: cluster([]rayv1.WorkerGroupSpec{
				grp("gpu", 0, 10, replicas(0)), grp("big", 0, 10, replicas(0)), grp("cpu", 0, 10, replicas(0)),
			}),
			shapes: map[string]Resources{"gpu": {"CPU": 4, "GPU": 1}, "big": cpu(16), "cpu": cpu(4)},
			nodes:  []Node{head()}, demand: []Resources{{"GPU": 1}, cpu(8)},
			want: map[string]want{
				"gpu": {replicas: 1, changed: true}, "big": {replicas: 1, changed: true},
				"cpu": {replicas: 0},
			},
		},
		{
			name:    "custom resources: a bundle asking for a custom resource uses the group offering it",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("plain", 0, 10, replicas(0)), grp("special", 0, 10, replicas(0))}),
			shapes:  map[string]Resources{"plain": cpu(2), "special": {"CPU": 2, "disk": 1}},
			nodes:   []Node{head()}, demand: []Resources{{"CPU": 1, "disk": 1}, cpu(1)},
			want: map[string]want{
				// The plain bundle packs onto the special node's leftover CPU.
				"plain": {replicas: 0}, "special": {replicas: 1, changed: true},
			},
		},
	})
}

func TestLimits(t *testing.T) {
	small := map[string]Resources{"small": cpu(2)}
	run(t, []tcase{
		{
			name:    "maxReplicas caps the scale-up and the rest is reported, not infeasible",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 0, 3, replicas(1))}),
			shapes:  small, pods: running("small", "w1"), nodes: []Node{head(), busyNode("w1", cpu(2), cpu(0))},
			demand: times(5, cpu(2)),
			want:   map[string]want{"small": {replicas: 3, changed: true}},
			unmet:  &wantUnmet{n: 3, infeasible: false, reason: "group small is at maxReplicas 3"},
		},
		{
			name:    "replicas above maxReplicas are left as written when nothing else changes",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 0, 2, replicas(5))}),
			shapes:  small, pods: running("small", "w1", "w2"),
			nodes: []Node{head(), busyNode("w1", cpu(2), cpu(0)), busyNode("w2", cpu(2), cpu(0))},
			want:  map[string]want{"small": {replicas: 5, changed: false}},
		},
		{
			name:    "the cluster's max workers caps all groups together",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("a", 0, 10, replicas(0)), grp("b", 0, 10, replicas(0))}),
			shapes:  map[string]Resources{"a": cpu(2), "b": {"CPU": 2, "GPU": 1}},
			nodes:   []Node{head()}, demand: cat(times(2, cpu(2)), times(2, Resources{"CPU": 2, "GPU": 1})),
			maxWorkers: 3,
			want:       map[string]want{"a": {replicas: 1, changed: true}, "b": {replicas: 2, changed: true}},
			unmet:      &wantUnmet{n: 1, reason: "would exceed the cluster's 3 max workers"},
		},
		{
			name:    "a bundle no group can ever hold is infeasible and names the shapes",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 0, 10, replicas(0))}),
			shapes:  small, nodes: []Node{head()}, demand: []Resources{cpu(64), {"GPU": 1}},
			want:  map[string]want{"small": {replicas: 0, changed: false}},
			unmet: &wantUnmet{n: 2, infeasible: true, reason: "no worker group's node shape can hold"},
		},
		{
			name:    "a group without a known shape is named in the infeasible reason",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("mystery", 0, 10, replicas(0))}),
			shapes:  nil, nodes: []Node{head()}, demand: []Resources{cpu(2)},
			want:  map[string]want{"mystery": {replicas: 0}},
			unmet: &wantUnmet{n: 1, infeasible: true, reason: "groups mystery have no known node resources"},
		},
		{
			name:    "a bundle only the head can hold waits and is not infeasible",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("small", 0, 10, replicas(0))}),
			shapes:  small,
			nodes:   []Node{{Pod: "head", Head: true, Total: cpu(8), Available: cpu(0)}},
			demand:  []Resources{cpu(6)},
			want:    map[string]want{"small": {replicas: 0}},
			unmet:   &wantUnmet{n: 1, infeasible: false, reason: "only the head node can hold"},
		},
	})
}

func TestUpscalingModes(t *testing.T) {
	one := map[string]Resources{"w": cpu(1)}
	sevenBusy := []Node{head()}
	var sevenPods []Pod
	for i := range 7 {
		name := fmt.Sprintf("w%d", i)
		sevenPods = append(sevenPods, running("w", name)...)
		sevenBusy = append(sevenBusy, busyNode(name, cpu(1), cpu(0)))
	}
	run(t, []tcase{
		{
			name:    "Conservative lets at least five pods be pending in a small cluster",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 100, replicas(0))}, mode(rayv1.UpscalingConservative)),
			shapes:  one, nodes: []Node{head()}, demand: times(10, cpu(1)),
			want:  map[string]want{"w": {replicas: 5, changed: true}},
			unmet: &wantUnmet{n: 5, reason: "upscalingMode Conservative allows 5 pending pods"},
		},
		{
			name:    "Conservative lets as many pods be pending as the cluster has nodes",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 100, replicas(7))}, mode(rayv1.UpscalingConservative)),
			shapes:  one, pods: sevenPods, nodes: sevenBusy, demand: times(10, cpu(1)),
			want:  map[string]want{"w": {replicas: 15, changed: true}},
			unmet: &wantUnmet{n: 2, reason: "allows 8 pending pods"},
		},
		{
			name:    "Conservative counts pods still being created as pending",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 100, replicas(3))}, mode(rayv1.UpscalingConservative)),
			shapes:  one, pods: creating("w", "c1", "c2", "c3"), nodes: []Node{head()}, demand: times(10, cpu(1)),
			want:  map[string]want{"w": {replicas: 5, changed: true}},
			unmet: &wantUnmet{n: 5, reason: "and 5 are pending"},
		},
		{
			name:    "Default does not limit the rate",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 100, replicas(0))}, mode(rayv1.UpscalingDefault)),
			shapes:  one, nodes: []Node{head()}, demand: times(10, cpu(1)),
			want: map[string]want{"w": {replicas: 10, changed: true}},
		},
		{
			name:    "Aggressive is Default's alias",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 100, replicas(0))}, mode(rayv1.UpscalingAggressive)),
			shapes:  one, nodes: []Node{head()}, demand: times(10, cpu(1)),
			want: map[string]want{"w": {replicas: 10, changed: true}},
		},
		{
			name:    "no upscalingMode means Default",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 100, replicas(0))}),
			shapes:  one, nodes: []Node{head()}, demand: times(10, cpu(1)),
			want: map[string]want{"w": {replicas: 10, changed: true}},
		},
		{
			name:    "request_resources bypasses Conservative's rate limit",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 100, replicas(0))}, mode(rayv1.UpscalingConservative)),
			shapes:  one, nodes: []Node{head()}, requests: times(10, cpu(1)),
			// Requests count total capacity: the head's own CPU holds one of them.
			want: map[string]want{"w": {replicas: 9, changed: true, reason: "0 pending and 9 requested bundles"}},
		},
	})
}

func TestPodsInFlight(t *testing.T) {
	two := map[string]Resources{"w": cpu(2)}
	run(t, []tcase{
		{
			name:    "pods being created serve the demand they were added for",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}),
			shapes:  two, pods: creating("w", "c1", "c2"), nodes: []Node{head()}, demand: times(4, cpu(1)),
			want: map[string]want{"w": {replicas: 2, changed: false}},
		},
		{
			name:    "running pods whose Ray node has not registered count too",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}),
			shapes:  two, pods: running("w", "r1", "r2"), nodes: []Node{head()}, demand: times(4, cpu(1)),
			want: map[string]want{"w": {replicas: 2, changed: false}},
		},
		{
			name:    "replicas the operator has not created pods for yet count too",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}),
			shapes:  two, nodes: []Node{head()}, demand: times(4, cpu(1)),
			want: map[string]want{"w": {replicas: 2, changed: false}},
		},
		{
			name:    "demand beyond what is in flight adds only the difference",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1))}),
			shapes:  two, pods: creating("w", "c1"), nodes: []Node{head()}, demand: times(5, cpu(1)),
			want: map[string]want{"w": {replicas: 3, changed: true}},
		},
		{
			name:    "pods being deleted are not capacity",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1))}),
			shapes:  two,
			pods:    []Pod{{Name: "gone", Group: "w", State: PodDeleting}, {Name: "r1", Group: "w", State: PodRunning}},
			nodes:   []Node{head(), busyNode("r1", cpu(2), cpu(0)), idleNode("gone", cpu(2), time.Hour)},
			demand:  []Resources{cpu(2)},
			want:    map[string]want{"w": {replicas: 2, changed: true}},
		},
	})
}

func TestScaleDown(t *testing.T) {
	two := map[string]Resources{"w": cpu(2)}
	run(t, []tcase{
		{
			name:    "a node idle longer than the default 60s is removed and named",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}),
			shapes:  two, pods: running("w", "a", "b"),
			nodes: []Node{head(), idleNode("a", cpu(2), 90*time.Second), idleNode("b", cpu(2), 30*time.Second)},
			want:  map[string]want{"w": {replicas: 1, delete: []string{"a"}, changed: true, reason: "scale down from 2 to 1"}},
		},
		{
			name:    "autoscalerOptions.idleTimeoutSeconds replaces the default",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}, globalIdle(120)),
			shapes:  two, pods: running("w", "a", "b"),
			nodes: []Node{head(), idleNode("a", cpu(2), 90*time.Second), idleNode("b", cpu(2), 150*time.Second)},
			want:  map[string]want{"w": {replicas: 1, delete: []string{"b"}, changed: true}},
		},
		{
			name: "a group's idleTimeoutSeconds wins over the global one",
			cluster: cluster([]rayv1.WorkerGroupSpec{
				grp("fast", 0, 10, replicas(1), groupIdle(30)), grp("slow", 0, 10, replicas(1)),
			}, globalIdle(120)),
			shapes: map[string]Resources{"fast": cpu(2), "slow": cpu(2)},
			pods:   cat(running("fast", "f"), running("slow", "s")),
			nodes:  []Node{head(), idleNode("f", cpu(2), 45*time.Second), idleNode("s", cpu(2), 45*time.Second)},
			want: map[string]want{
				"fast": {replicas: 0, delete: []string{"f"}, changed: true},
				"slow": {replicas: 1, changed: false},
			},
		},
		{
			name:    "never below minReplicas: the longest idle goes first",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 2, 10, replicas(3))}),
			shapes:  two, pods: running("w", "a", "b", "c"),
			nodes: []Node{
				head(), idleNode("a", cpu(2), 5*time.Minute), idleNode("b", cpu(2), 10*time.Minute), idleNode("c", cpu(2), 2*time.Minute),
			},
			want: map[string]want{"w": {replicas: 2, delete: []string{"b"}, changed: true, reason: "2 idle replicas kept at minReplicas 2"}},
		},
		{
			name:    "the last worker is removed when minReplicas is 0",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1))}),
			shapes:  two, pods: running("w", "last"), nodes: []Node{head(), idleNode("last", cpu(2), 2*time.Minute)},
			want: map[string]want{"w": {replicas: 0, delete: []string{"last"}, changed: true}},
		},
		{
			name:    "nodes with work are never removed, whatever holds them",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(3))}),
			shapes:  two, pods: running("w", "resources-held", "zero-resource-process", "idle"),
			nodes: []Node{
				head(),
				// A Serve replica reserving a CPU.
				{Pod: "resources-held", Total: cpu(2), Available: cpu(1), IdleSince: now.Add(-time.Hour)},
				// A job driver that reserves nothing: only the busy flag shows it.
				{Pod: "zero-resource-process", Total: cpu(2), Available: cpu(2), Busy: true},
				idleNode("idle", cpu(2), time.Hour),
			},
			want: map[string]want{"w": {replicas: 2, delete: []string{"idle"}, changed: true}},
		},
		{
			name:    "an idle node pending demand fits on is kept",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1))}),
			shapes:  two, pods: running("w", "a"), nodes: []Node{head(), idleNode("a", cpu(2), time.Hour)},
			demand: []Resources{cpu(1)},
			want:   map[string]want{"w": {replicas: 1, changed: false}},
		},
		{
			name:    "request_resources holds idle capacity until withdrawn",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}),
			shapes:  two, pods: running("w", "a", "b"),
			nodes:    []Node{head(), idleNode("a", cpu(2), time.Hour), idleNode("b", cpu(2), 2*time.Hour)},
			requests: []Resources{cpu(2)},
			// The request packs onto the first node listed; the other one goes.
			want: map[string]want{"w": {replicas: 1, delete: []string{"b"}, changed: true}},
		},
		{
			name:    "requests count total capacity, so a busy cluster that already holds them adds nothing",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}),
			shapes:  two, pods: running("w", "a", "b"),
			nodes:    []Node{head(), busyNode("a", cpu(2), cpu(0)), busyNode("b", cpu(2), cpu(0))},
			requests: times(4, cpu(1)),
			want:     map[string]want{"w": {replicas: 2, changed: false}},
		},
		{
			name:    "a group scaling up does not scale down in the same round",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(2))}),
			shapes:  map[string]Resources{"w": {"CPU": 2, "GPU": 1}},
			pods:    running("w", "a", "b"),
			nodes: []Node{
				head(), idleNode("a", Resources{"CPU": 2}, time.Hour), busyNode("b", Resources{"CPU": 2, "GPU": 1}, cpu(2)),
			},
			demand: []Resources{{"GPU": 1}},
			want:   map[string]want{"w": {replicas: 3, changed: true}},
		},
	})
}

func TestMultiHost(t *testing.T) {
	tpu := map[string]Resources{"tpu": {"CPU": 8, "TPU": 4}}
	hostPods := func(replica string, names ...string) []Pod {
		var out []Pod
		for _, n := range names {
			out = append(out, Pod{Name: n, Group: "tpu", Replica: replica, State: PodRunning})
		}
		return out
	}
	run(t, []tcase{
		{
			name:    "scale up by whole replicas: three one-host bundles need two 2-host replicas",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("tpu", 0, 10, replicas(0), hosts(2))}),
			shapes:  tpu, nodes: []Node{head()}, demand: times(3, Resources{"TPU": 4}),
			want: map[string]want{"tpu": {replicas: 2, changed: true}},
		},
		{
			name:    "a replica goes only when all its hosts are idle, with all its pods named",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("tpu", 0, 10, replicas(2), hosts(2))}),
			shapes:  tpu,
			pods:    cat(hostPods("r1", "r1-0", "r1-1"), hostPods("r2", "r2-0", "r2-1")),
			nodes: []Node{
				head(),
				idleNode("r1-0", tpu["tpu"], time.Hour), idleNode("r1-1", tpu["tpu"], time.Hour),
				idleNode("r2-0", tpu["tpu"], time.Hour), busyNode("r2-1", tpu["tpu"], Resources{"CPU": 8}),
			},
			want: map[string]want{"tpu": {replicas: 1, delete: []string{"r1-0", "r1-1"}, changed: true}},
		},
		{
			name:    "multi-host pods without a replica name are never removed one by one",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("tpu", 0, 10, replicas(1), hosts(2))}),
			shapes:  tpu,
			pods:    hostPods("", "h0", "h1"),
			nodes:   []Node{head(), idleNode("h0", tpu["tpu"], time.Hour), idleNode("h1", tpu["tpu"], time.Hour)},
			want:    map[string]want{"tpu": {replicas: 1, changed: false}},
		},
		{
			name:    "Conservative still adds one whole replica when nothing is pending",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("tpu", 0, 10, replicas(0), hosts(8))}, mode(rayv1.UpscalingConservative)),
			shapes:  tpu, nodes: []Node{head()}, demand: times(9, Resources{"TPU": 4}),
			want:  map[string]want{"tpu": {replicas: 1, changed: true}},
			unmet: &wantUnmet{n: 1, reason: "Conservative"},
		},
	})
}

func TestSuspendedAndWorkersToDelete(t *testing.T) {
	two := map[string]Resources{"w": cpu(2), "s": cpu(2)}
	run(t, []tcase{
		{
			name: "a suspended group is left alone: no scale-up, no scale-down, no cleanup",
			cluster: cluster([]rayv1.WorkerGroupSpec{
				grp("s", 0, 10, replicas(1), suspended(), toDelete("gone")),
			}),
			shapes: two, pods: running("s", "idle"), nodes: []Node{head(), idleNode("idle", cpu(2), time.Hour)},
			demand: []Resources{cpu(2)},
			want:   map[string]want{"s": {replicas: 1, delete: []string{"gone"}, changed: false, reason: "suspended"}},
			unmet:  &wantUnmet{n: 1, infeasible: true, reason: "no worker group's node shape can hold"},
		},
		{
			name:    "names of pods that are gone are cleared; names still present stay",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1), toDelete("gone", "terminating"))}),
			shapes:  two,
			pods:    cat([]Pod{{Name: "terminating", Group: "w", State: PodDeleting}}, running("w", "a")),
			nodes:   []Node{head(), busyNode("a", cpu(2), cpu(0))},
			want:    map[string]want{"w": {replicas: 1, delete: []string{"terminating"}, changed: true, reason: "1 deleted pods cleared"}},
		},
		{
			name:    "a pod named earlier is neither capacity nor chosen again",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1), toDelete("old"))}),
			shapes:  two, pods: running("w", "old", "a"),
			nodes:  []Node{head(), idleNode("old", cpu(2), time.Hour), busyNode("a", cpu(2), cpu(0))},
			demand: []Resources{cpu(2)},
			want:   map[string]want{"w": {replicas: 2, delete: []string{"old"}, changed: true}},
		},
		{
			name:    "a decision that repeats the spec is not a change",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1), toDelete("old"))}),
			shapes:  two, pods: running("w", "old", "a"),
			nodes: []Node{head(), idleNode("old", cpu(2), time.Hour), busyNode("a", cpu(2), cpu(0))},
			want:  map[string]want{"w": {replicas: 1, delete: []string{"old"}, changed: false}},
		},
	})
}

func TestUserEditsReplicas(t *testing.T) {
	two := map[string]Resources{"w": cpu(2)}
	run(t, []tcase{
		{
			name:    "a user's raise is kept: new pods count as in flight, not as surplus demand",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(4))}),
			shapes:  two, pods: running("w", "a"), nodes: []Node{head(), idleNode("a", cpu(2), 10*time.Second)},
			demand: times(3, cpu(2)),
			want:   map[string]want{"w": {replicas: 4, changed: false}},
		},
		{
			name:    "a user's cut names pods without a node first, then idle ones, never busy ones",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1))}),
			shapes:  two, pods: cat(running("w", "busy", "idle"), creating("w", "new")),
			nodes: []Node{head(), busyNode("busy", cpu(2), cpu(1)), idleNode("idle", cpu(2), 10*time.Second)},
			want:  map[string]want{"w": {replicas: 1, delete: []string{"new", "idle"}, changed: true}},
		},
		{
			name:    "a user's cut below the busy pods keeps them and says so",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1))}),
			shapes:  two, pods: running("w", "b1", "b2", "idle"),
			nodes: []Node{head(), busyNode("b1", cpu(2), cpu(1)), busyNode("b2", cpu(2), cpu(0)), idleNode("idle", cpu(2), time.Second)},
			want:  map[string]want{"w": {replicas: 1, delete: []string{"idle"}, changed: true, reason: "1 surplus replicas over 1 have work and are kept"}},
		},
	})
}

func TestDecideRejectsBadInput(t *testing.T) {
	if _, err := Decide(Input{}); err == nil {
		t.Error("Decide without a cluster succeeded")
	}
	c := cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 1), grp("w", 0, 1)})
	_, err := Decide(Input{Cluster: c, Now: now})
	if err == nil || !strings.Contains(err.Error(), `workerGroupSpecs[1].groupName "w"`) {
		t.Errorf("duplicate groups: error = %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	g := grp("w", 0, 1)
	if got := IdleTimeout(cluster(nil), &g); got != DefaultIdleTimeout {
		t.Errorf("default = %s", got)
	}
	if got := IdleTimeout(cluster(nil, globalIdle(5)), &g); got != 5*time.Second {
		t.Errorf("global = %s", got)
	}
	g.IdleTimeoutSeconds = ptr.To[int32](7)
	if got := IdleTimeout(cluster(nil, globalIdle(5)), &g); got != 7*time.Second {
		t.Errorf("group = %s", got)
	}
}

// Cases the acceptance list names that the tables above leave implicit.
func TestAcceptanceGaps(t *testing.T) {
	two := map[string]Resources{"w": cpu(2)}
	tpu := map[string]Resources{"tpu": {"CPU": 8, "TPU": 4}}
	run(t, []tcase{
		{
			name:    "replicas below minReplicas count as minReplicas: a scale-up starts there",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 2, 10, replicas(0))}),
			shapes:  two, nodes: []Node{head()}, demand: times(6, cpu(2)),
			// Two hosts are owed by minReplicas and hold two bundles; four more are added.
			want: map[string]want{"w": {replicas: 6, changed: true, reason: "scale up from 2 to 6"}},
		},
		{
			name: "a suspended group is skipped even when it is the cheapest fit",
			cluster: cluster([]rayv1.WorkerGroupSpec{
				grp("cheap", 0, 10, replicas(0), suspended()), grp("dear", 0, 10, replicas(0)),
			}),
			shapes: map[string]Resources{"cheap": cpu(2), "dear": cpu(8)},
			nodes:  []Node{head()}, demand: []Resources{cpu(2)},
			want: map[string]want{
				"cheap": {replicas: 0, changed: false, reason: "suspended"},
				"dear":  {replicas: 1, changed: true},
			},
		},
		{
			name:    "the cluster's max workers counts every host of a multi-host replica",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("tpu", 0, 10, replicas(0), hosts(4))}),
			shapes:  tpu, nodes: []Node{head()}, demand: []Resources{{"TPU": 4}}, maxWorkers: 3,
			want:  map[string]want{"tpu": {replicas: 0, changed: false}},
			unmet: &wantUnmet{n: 1, reason: "would exceed the cluster's 3 max workers"},
		},
		{
			name:    "multi-host pods in flight serve the demand they were added for",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("tpu", 0, 10, replicas(1), hosts(2))}),
			shapes:  tpu,
			pods: []Pod{
				{Name: "r1-0", Group: "tpu", Replica: "r1", State: PodCreating},
				{Name: "r1-1", Group: "tpu", Replica: "r1", State: PodCreating},
			},
			nodes: []Node{head()}, demand: times(2, Resources{"TPU": 4}),
			want: map[string]want{"tpu": {replicas: 1, changed: false}},
		},
		{
			name:    "a multi-host group never goes below minReplicas",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("tpu", 1, 10, replicas(1), hosts(2))}),
			shapes:  tpu,
			pods: []Pod{
				{Name: "r1-0", Group: "tpu", Replica: "r1", State: PodRunning},
				{Name: "r1-1", Group: "tpu", Replica: "r1", State: PodRunning},
			},
			nodes: []Node{head(), idleNode("r1-0", tpu["tpu"], time.Hour), idleNode("r1-1", tpu["tpu"], time.Hour)},
			want:  map[string]want{"tpu": {replicas: 1, changed: false, reason: "kept at minReplicas 1"}},
		},
		{
			name:    "a group's idleTimeoutSeconds of 0 removes an idle node at once",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(1), groupIdle(0))}, globalIdle(600)),
			shapes:  two, pods: running("w", "a"), nodes: []Node{head(), idleNode("a", cpu(2), 0)},
			want: map[string]want{"w": {replicas: 0, delete: []string{"a"}, changed: true}},
		},
		{
			name:    "a request no group can hold is unmet and says it comes from request_resources",
			cluster: cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 10, replicas(0))}),
			shapes:  two, nodes: []Node{head()}, requests: []Resources{cpu(16)},
			want:  map[string]want{"w": {replicas: 0}},
			unmet: &wantUnmet{n: 1, infeasible: true, reason: "request_resources: no worker group's node shape can hold"},
		},
	})
}

// A user edits the RayCluster between two rounds: each round decides from the spec as read, so
// the edit is built upon, never undone.
func TestUserEditsBetweenRounds(t *testing.T) {
	two := map[string]Resources{"w": cpu(2)}
	decide := func(c *rayv1.RayCluster, pods []Pod, nodes []Node, demand []Resources) GroupDecision {
		t.Helper()
		d, err := Decide(Input{Cluster: c, Shapes: two, Pods: pods, Nodes: nodes, Demand: demand, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		g, _ := d.Group("w")
		return g
	}
	demand := times(4, cpu(2))

	// Round 1: maxReplicas 2 blocks half the demand.
	c := cluster([]rayv1.WorkerGroupSpec{grp("w", 0, 2, replicas(0))})
	g := decide(c, nil, []Node{head()}, demand)
	if g.Replicas != 2 || !g.Changed {
		t.Fatalf("round 1: replicas %d changed %v, want 2 and a change (%s)", g.Replicas, g.Changed, g.Reason)
	}

	// The autoscaler's patch applied; the user then raises maxReplicas to 10.
	c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](2)
	c.Spec.WorkerGroupSpecs[0].MaxReplicas = ptr.To[int32](10)
	inFlight := creating("w", "c1", "c2")
	if g := decide(c, inFlight, []Node{head()}, demand); g.Replicas != 4 || !g.Changed {
		t.Errorf("round 2 after raising maxReplicas: replicas %d changed %v, want 4 (%s)", g.Replicas, g.Changed, g.Reason)
	}

	// The user instead sets replicas to 1 while both pods are still being created: the decision
	// takes 1 as its base, asks again for the demand the pod it drops would have served, and
	// names the surplus pod without a node rather than leaving two pods for one replica.
	c.Spec.WorkerGroupSpecs[0].MaxReplicas = ptr.To[int32](2)
	c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1)
	g = decide(c, inFlight, []Node{head()}, demand)
	if g.Replicas != 2 || len(g.WorkersToDelete) != 0 {
		t.Errorf("round 2 after a cut with demand: replicas %d workersToDelete %v, want 2 and none (%s)", g.Replicas, g.WorkersToDelete, g.Reason)
	}
	g = decide(c, inFlight, []Node{head()}, nil)
	if g.Replicas != 1 || !slices.Equal(g.WorkersToDelete, []string{"c1"}) {
		t.Errorf("round 2 after a cut without demand: replicas %d workersToDelete %v, want 1 and [c1] (%s)", g.Replicas, g.WorkersToDelete, g.Reason)
	}
}
