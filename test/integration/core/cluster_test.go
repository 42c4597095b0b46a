package core_test

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// cluster is a head (1 CPU) and two worker agents: 127.0.0.2 with 2 CPUs and
// resource "a", 127.0.0.3 with 2 CPUs and resource "b".
type cluster struct {
	*head
	workers []*rayproc.Proc
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{head: startHead(t, 1)}
	for _, w := range []struct{ ip, res string }{{"127.0.0.2", `{"a": 1}`}, {"127.0.0.3", `{"b": 1}`}} {
		c.workers = append(c.workers, rayproc.Start(t, rayBin, c.env, "start", "--block",
			"--address="+c.gcsAddr,
			"--node-ip-address="+w.ip,
			"--num-cpus=2",
			"--resources="+w.res,
			"--dashboard-agent-listen-port="+strconv.Itoa(rayproc.FreePort(t)),
			"--metrics-export-port="+strconv.Itoa(rayproc.FreePort(t)),
		))
	}
	eventually(t, "both worker nodes recorded", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(c.tmp, "ray", "rayk8s-core-nodes", "*.json"))
		return len(files) == 3
	})
	return c
}

func TestCancel(t *testing.T) {
	c := startCluster(t)
	wantLines(t, runPython(t, c.env, false, "cancel.py"),
		"queued task cancelled: TaskCancelledError",
		"queued task never ran True",
		"running task cancelled: TaskCancelledError",
		"worker saw KeyboardInterrupt True",
		"forced: TaskCancelledError",
		"forced worker gone True",
		"parent cancelled: TaskCancelledError",
		"child cancelled with its parent True",
		"task owned by another node cancelled: TaskCancelledError",
		"finished task keeps its value 7",
		"cancel of a non-ref: TypeError: ray.cancel() only supported for object refs. For actors, try ray.kill(). Got: <class 'str'>.",
		"running async actor call cancelled: TaskCancelledError",
		"async actor still serves pong",
		"running sync actor call finishes unblocked",
		"queued actor call cancelled: TaskCancelledError",
		"cancel of an actor task: ValueError: force=True is not supported for actor tasks.",
		"cluster still works 3",
	)
}

func TestRetries(t *testing.T) {
	c := startCluster(t)
	wantLines(t, runPython(t, c.env, false, "retries.py"),
		"retried on the worker node after its worker died recovered",
		"retry_exceptions list retried until 3",
		"other exceptions not retried: ValueError after 1",
		"retry_exceptions True retried until 2",
		"actor call retried after restart survived 1",
		"no max_task_retries: RayActorError",
	)
}

func TestPlacementGroups(t *testing.T) {
	c := startCluster(t)
	wantLines(t, runPython(t, c.env, false, "pgroups.py"),
		"SPREAD tasks on 3 nodes",
		"strict spread CREATED 2",
		"tasks in their bundles True",
		"nested in one bundle True",
		"actor in bundle 1 True",
		"too big for its bundle: RaySystemError True",
		"strict pack CREATED 1",
		"removed REMOVED",
		"task in a removed group: TaskCancelledError",
		"actor in a removed group: RayActorError",
		"spread 2",
		"pack CREATED 1",
		"named group found True",
		"infeasible waits True INFEASIBLE",
		"bad strategy: ValueError: Invalid placement group strategy BOGUS. Supported strategies are: ['PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'].",
		"bad bundle index: ValueError: placement_group_bundle_index 5 is invalid: the placement group has 2 bundles",
	)
	// The detached group no three nodes can spread over is the autoscaler's
	// demand, marked infeasible, and `ray status` lists its bundles.
	st := clusterState(t, c.gcsAddr)
	infeasible := 0
	for _, p := range st.Pending {
		if p.Kind == "ray_placement_group_infeasible" && p.Resources["CPU"] == 1 {
			infeasible++
		}
	}
	if infeasible != 4 {
		t.Errorf("pending demand = %v, want the group's 4 bundles as ray_placement_group_infeasible", st.Pending)
	}
	out, _ := rayproc.Run(t, rayBin, c.env, "status", "--address="+c.gcsAddr)
	wantLines(t, out, " {'CPU': 1.0}: 4+ pending placement group bundles")
	runPython(t, c.env, false, "-c", "import ray; ray.init(namespace='pgtest'); "+
		"from ray.util import get_placement_group, remove_placement_group; remove_placement_group(get_placement_group('wide'))")
	if st := clusterState(t, c.gcsAddr); len(st.Pending) != 0 {
		t.Errorf("pending demand after the group was removed = %v, want none", st.Pending)
	}
}

func TestRuntimeEnvPerTaskAndActor(t *testing.T) {
	c := startCluster(t)
	wantLines(t, runPython(t, c.env, false, "runtimeenv.py"),
		"task env_vars hola",
		"other tasks unaffected None",
		"options env_vars hi",
		"child inherits parent",
		"actor env_vars actor",
		"pip refused: NotImplementedError: runtime_env['pip']['pip_version'] of task plain ('==23.0') is not supported by this Ray runtime: venvs use the pip the system ships",
		"conda refused: NotImplementedError: runtime_env field 'conda' of task plain is not supported by this Ray runtime for tasks and actors; only 'env_vars' and 'pip' are",
		"container refused: NotImplementedError: runtime_env field 'container' of actor Env is not supported by this Ray runtime for tasks and actors; only 'env_vars' and 'pip' are",
		"unknown field refused: ValueError: runtime_env of task plain has the unknown field 'pipp'",
	)
}

func TestRuntimeContextAndCluster(t *testing.T) {
	c := startCluster(t)
	wantLines(t, runPython(t, c.env, false, "context.py"),
		"driver ids True True None None",
		"task ids True True True None",
		"actor ids True True",
		"namespace ctx",
		"assigned to the task {'CPU': 2.0}",
		"assigned to the actor {'CPU': 1.0, 'a': 1.0}",
		"driver assigned {}",
		"gpu ids [] []",
		"nodes 3 True",
		"cluster cpus 5.0",
		"available after an actor holds one 4.0",
		"get_actor in its namespace True",
		"get_actor elsewhere ValueError",
	)
}

// An actor running on another node than its owner ends out of scope, or
// crashes there, and the owner's state API lists it DEAD with the cause.
func TestRemoteActorDeathReachesItsOwner(t *testing.T) {
	c := startCluster(t)
	wantLines(t, runPython(t, c.env, false, "remote_scope.py", c.dashURL),
		"runs on another node True",
		"remote actor out of scope: The actor is dead because all references to the actor were removed.",
		"remote actor crashed: True",
	)
}

// A node dies: the objects only it held raise OwnerDiedError (an
// ObjectLostError) instead of waiting forever.
func TestObjectLostWithItsNode(t *testing.T) {
	c := startCluster(t)
	cmd := exec.Command(python, "nodelost.py")
	cmd.Env = c.env
	cmd.Dir = "testdata"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out rayproc.SyncBuffer
	cmd.Stderr = &out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewReader(stdout)
	var got strings.Builder
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("driver ended early: %v; output:\n%s%s", err, got.String(), out.String())
		}
		got.WriteString(line)
		if line == "ready to lose the node\n" {
			break
		}
	}
	// Lost, not stopped: no goodbye to the head.
	_ = c.workers[1].Cmd.Process.Kill()
	<-c.workers[1].Done()
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := lines.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("driver: %v; output:\n%s%s", err, got.String(), out.String())
	}
	wantLines(t, got.String(),
		"object on the worker node 1000",
		"node seen dead True",
		"lost object: OwnerDiedError True",
		"cluster still works 2",
	)
	if !strings.Contains(got.String(), "The object's owner has exited") {
		t.Errorf("the error does not say the owner exited:\n%s", got.String())
	}
}
