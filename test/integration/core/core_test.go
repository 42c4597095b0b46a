package core_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// The RayCluster quickstart's command, as `kubectl exec <head> -- python -c`
// runs it on the head: no address anywhere, the node on this machine.
func TestQuickstartClusterResourcesFromAShell(t *testing.T) {
	h := startHead(t, 2)
	out := runPython(t, h.env, false, "-c", "import ray; ray.init(); print(ray.cluster_resources())")
	for _, want := range []string{"'CPU': 2.0", "'node:127.0.0.1': 1.0", "'node:__internal_head__': 1.0", "'memory': "} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster_resources() lacks %s: %s", want, out)
		}
	}

	// The same through the Jobs API, as the quickstart's `ray job submit` does.
	out, exit := rayproc.Run(t, rayBin, h.env, "job", "submit", "--address", h.dashURL, "--",
		python, "-c", "import pprint, ray; ray.init(); pprint.pprint(ray.cluster_resources(), sort_dicts=True)")
	if exit != 0 {
		t.Fatalf("ray job submit exited %d:\n%s", exit, out)
	}
	if !strings.Contains(out, "{'CPU': 2.0,\n") || !strings.Contains(out, "'node:__internal_head__': 1.0") {
		t.Errorf("the job did not print the cluster's resources:\n%s", out)
	}
}

func TestInitAddresses(t *testing.T) {
	h := startHead(t, 2)
	common := []string{"initialized True", "second init refused", "nodes 1 True True", "cpus 2.0", "after shutdown False"}
	t.Run("no address", func(t *testing.T) {
		out := runPython(t, h.env, false, "init.py", "none")
		wantLines(t, out, append(common, "namespace ns1")...)
	})
	t.Run("auto", func(t *testing.T) {
		wantLines(t, runPython(t, h.env, false, "init.py", "auto"), common...)
	})
	t.Run("GCS host:port", func(t *testing.T) {
		wantLines(t, runPython(t, h.env, false, "init.py", "gcs", h.gcsAddr), common...)
	})
	t.Run("RAY_ADDRESS", func(t *testing.T) {
		wantLines(t, runPython(t, append(h.env, "RAY_ADDRESS="+h.gcsAddr), false, "init.py", "none"), common...)
	})
	t.Run("wrong address is one clear error", func(t *testing.T) {
		out := runPython(t, h.env, true, "-c", "import ray; ray.init(address='127.0.0.1:1')")
		if !strings.Contains(out, "ConnectionError: Could not find a Ray node on this machine connected to the cluster at 127.0.0.1:1") {
			t.Errorf("unexpected output:\n%s", out)
		}
	})
}

// KubeRay sets RAY_ADDRESS=127.0.0.1:6379 in the head container while the
// head's node records its pod IP; `kubectl exec <head> -- python -c
// "import ray; ray.init()"` must still find the node.
func TestInitLoopbackAddressFindsNodeAtItsIP(t *testing.T) {
	h := startHeadAt(t, 2, hostIP(t))
	port := h.gcsAddr[strings.LastIndex(h.gcsAddr, ":")+1:]
	out := runPython(t, append(h.env, "RAY_ADDRESS=127.0.0.1:"+port), false, "init.py", "none")
	wantLines(t, out, "initialized True", "cpus 2.0")
	out = runPython(t, append(h.env, "RAY_ADDRESS=127.0.0.1:1"), true, "init.py", "none")
	if !strings.Contains(out, "Could not find a Ray node on this machine connected to the cluster at 127.0.0.1:1") {
		t.Errorf("a loopback address with another port must not match the node:\n%s", out)
	}
}

// hostIP is a non-loopback IPv4 address of this machine, as a pod IP is;
// 127.0.0.3 where the machine has none.
func hostIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Log("No non-loopback IPv4 address on this machine; the head takes 127.0.0.3")
	return "127.0.0.3"
}

func TestTasks(t *testing.T) {
	h := startHead(t, 2)
	out := runPython(t, h.env, false, "tasks.py")
	wantLines(t, out,
		"squares [0, 1, 4, 9]",
		"put arg 49",
		"num_returns [1, 2]",
		"options 9",
		"nested 14",
		"caught RayTaskError(InsufficientFunds) True True",
		"get timeout raised",
		"wait loop 3",
		"wait timeout 0 1",
		"direct call refused",
		"not implemented: the remote function option 'accelerator_type' is not implemented by this Ray runtime",
	)
	for _, re := range []string{`\(chatty pid=\d+\) hello from a task\n`, `\(Talker pid=\d+\) hello from an actor\n`, `\(Talker pid=\d+\) hello again from an actor\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("worker output %s not printed by the driver:\n%s", re, out)
		}
	}
}

func TestWorkerThreads(t *testing.T) {
	h := startHead(t, 2)
	out := runPython(t, h.env, false, "threads.py")
	wantLines(t, out,
		"task 1",
		"task with env_vars 3",
		"actor of 1.5 CPUs 2",
		"actor of half a CPU 1",
	)
}

func TestActors(t *testing.T) {
	h := startHead(t, 2)
	out := runPython(t, h.env, false, "actors.py")
	wantLines(t, out,
		"ordered True",
		"named 2",
		"duplicate name refused",
		"get_if_exists 3",
		"missing actor raises ValueError",
		"actor error RayTaskError(ValueError)",
		"async [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
		"killed actor raises RayActorError",
		"actor pool [2, 4, 6, 8]",
	)
	// The killed actor stays in the state API, DEAD with its cause, as in
	// Ray; so do the driver's other actors, which died with their job.
	_, r := getState(t, h.dashURL+"/api/v0/actors?filter_keys=name&filter_predicates=%3D&filter_values=global_counter&detail=true")
	if len(r.Data.Result.Result) != 1 || r.Data.Result.Result[0]["state"] != "DEAD" || r.Data.Result.Result[0]["death_cause"] == nil {
		t.Errorf("actors named global_counter = %+v, want one DEAD row with its death cause", r.Data.Result.Result)
	}
	// The agent sees the driver go a moment after its process exits.
	eventually(t, "every actor of the exited driver listed DEAD", 10*time.Second, func() bool {
		_, r = getState(t, h.dashURL+"/api/v0/actors?filter_keys=state&filter_predicates=!%3D&filter_values=DEAD")
		return len(r.Data.Result.Result) == 0 && r.Data.Result.Total > 1
	})
}

func TestActorLifetimes(t *testing.T) {
	h := startHead(t, 2)
	out := runPython(t, h.env, false, "actor_scope.py")
	wantLines(t, out,
		"dropped handle ends the actor True",
		"call on a temporary handle 1",
		"threaded calls finish [0.5, 0.5, 0.5] True",
		"async calls finish [0.5, 0.5, 0.5] True",
		"actor of a finished task ends True",
		"passed handle works 1",
		"passed handle keeps the actor True",
		"named actor kept True 1",
		"__ray_terminate__ with arguments: __ray_terminate__() takes no arguments",
		"__ray_terminate__ ends the actor True",
		"calls after __ray_terminate__ raise RayActorError",
	)
	// The state API gives each ended actor Ray's cause: six ended out of
	// scope (one before it was placed, one a task's), one by __ray_terminate__.
	_, r := getState(t, h.dashURL+"/api/v0/actors?filter_keys=state&filter_predicates=%3D&filter_values=DEAD&detail=true&limit=100")
	causes := map[string]int{}
	for _, row := range r.Data.Result.Result {
		if c, ok := row["death_cause"].(string); ok {
			causes[c]++
		}
	}
	if causes["The actor is dead because all references to the actor were removed."] != 6 || causes["The actor was terminated by __ray_terminate__."] != 1 {
		t.Errorf("death causes of the DEAD actors = %v, want 6 out of scope and 1 by __ray_terminate__", causes)
	}
}

func TestSchedulingByResources(t *testing.T) {
	h := startHead(t, 2)
	out := runPython(t, h.env, false, "scheduling.py")
	wantLines(t, out,
		"hog pong",
		"cpu left 0",
		"pending while full True",
		"after kill ran",
		"infeasible pending True",
	)
	infeasible := regexp.MustCompile(`\(raylet\) Warning: The actor or task with ID [0-9a-f]+ cannot be scheduled right now\. It requires \{CPU: 64\.000000\} for placement`)
	if !infeasible.MatchString(out) {
		t.Errorf("no infeasible warning in the driver's output:\n%s", out)
	}
}

// KubeRay's RayJob sample, through `ray job submit` as the RayJob's
// submitter runs it: the script unchanged but for the runtime env's pip
// list and the assertion on the version pip would have installed.
func TestKubeRaySampleJob(t *testing.T) {
	shared := testenv.SharedDir()
	if shared == "" {
		t.Skip("../shared not found: KubeRay's samples are only available in the development workspace")
	}
	raw, err := os.ReadFile(filepath.Join(shared, "kuberay", "samples", "ray-job.sample.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code := sampleCode(t, string(raw))
	code = strings.Replace(code, `assert requests.__version__ == "2.26.0"`, "", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sample_code.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHead(t, 2)
	out, exit := rayproc.Run(t, rayBin, h.env, "job", "submit", "--address", h.dashURL, "--working-dir", dir,
		"--runtime-env-json", `{"env_vars": {"counter_name": "test_counter"}}`, "--", python, "sample_code.py")
	if exit != 0 {
		t.Fatalf("ray job submit exited %d:\n%s", exit, out)
	}
	for i := 1; i <= 5; i++ {
		wantLines(t, out, "test_counter got "+strconv.Itoa(i))
	}
	if !strings.Contains(out, "succeeded") {
		t.Errorf("the job did not succeed:\n%s", out)
	}
}

// sampleCode is the sample_code.py entry of the sample's ConfigMap.
func sampleCode(t *testing.T, yaml string) string {
	i := strings.Index(yaml, "sample_code.py: |\n")
	if i < 0 {
		t.Fatal("the sample has no sample_code.py")
	}
	var b strings.Builder
	for _, line := range strings.Split(yaml[i+len("sample_code.py: |\n"):], "\n") {
		if line != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		b.WriteString(strings.TrimPrefix(line, "    ") + "\n")
	}
	return b.String()
}

// ray.init() where no cluster runs starts a head with our binary and stops
// it when the driver exits.
func TestInitStartsALocalHead(t *testing.T) {
	tmp := t.TempDir()
	env := append(baseEnv(t, tmp), "RAYK8S_RAY_BIN="+rayBin)
	out := runPython(t, env, false, "localhead.py")
	wantLines(t, out, "local cpus 3.0", "hello")
	m := regexp.MustCompile(`head pid (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no head pid printed:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	eventually(t, "the local head to exit with its driver", 10*time.Second, func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}

// A head and a worker agent: tasks and actors that need the worker's
// resources run there, objects and actor calls cross between the nodes.
func TestTwoNodes(t *testing.T) {
	h := startHead(t, 1)
	rayproc.Start(t, rayBin, h.env, "start", "--block",
		"--address="+h.gcsAddr,
		"--node-ip-address=127.0.0.2",
		"--num-cpus=2",
		`--resources={"big": 4}`,
		"--dashboard-agent-listen-port="+strconv.Itoa(rayproc.FreePort(t)),
		"--metrics-export-port="+strconv.Itoa(rayproc.FreePort(t)),
	)
	eventually(t, "the worker node recorded", 20*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(h.tmp, "ray", "rayk8s-core-nodes", "*.json"))
		return len(files) == 2
	})
	out := runPython(t, h.env, false, "twonodes.py")
	wantLines(t, out,
		"alive nodes 2",
		"task on the other node True 2",
		"object argument across nodes 499500",
		"50 MiB across nodes 52428800",
		"fetched from the worker made on the worker",
		"nested on the worker 11",
		"actor on the other node True",
		"ordered remote calls True",
		"named remote actor 21",
		"handle used on the other node [101, 102, 103]",
		"killed remote actor raises RayActorError",
		"node affinity True",
		"numpy 100 MB across nodes True True 104857600",
		"numpy array is a view of the transfer True",
		"numpy array back from the worker True False",
	)
	if !regexp.MustCompile(`\(shout pid=\d+, ip=127\.0\.0\.2\) hello from the worker node\n`).MatchString(out) {
		t.Errorf("the worker node's output did not reach the driver:\n%s", out)
	}
}

func TestFaultsAndBadInput(t *testing.T) {
	h := startHead(t, 1)
	out := runPython(t, h.env, false, "faults.py")
	wantLines(t, out,
		"nested on one CPU 21",
		"retried after a killed worker recovered",
		"no retries left: WorkerCrashedError",
		"unpicklable argument: Could not serialize the argument <unlocked _thread.lock object | for a task or actor leaf: TypeError: cannot pickle '_thread.lock' object",
		"cluster still works 42",
		"foreign object: Object "+strings.Repeat("ab", 28)+" is not known to this cluster: no ray.put or task of a running job here created it (an ObjectRef from another cluster or session?)",
		"foreign owner: Failed to retrieve object "+strings.Repeat("cd", 28)+" from node "+strings.Repeat("ef", 28),
		"cluster still works after 2",
	)
}

func TestDetachedActorOutlivesItsDriver(t *testing.T) {
	h := startHead(t, 2)
	wantLines(t, runPython(t, h.env, false, "detached.py", "create"), "created 1", "scratch 1")
	wantLines(t, runPython(t, h.env, false, "detached.py", "use"),
		"still there 2",
		"non-detached actor gone with its driver",
		"other namespace does not see it",
	)
}

// `ray status` lists what waits for resources, as the autoscaler reads it.
func TestStatusShowsPendingDemand(t *testing.T) {
	h := startHead(t, 2)
	out, _ := rayproc.Run(t, rayBin, h.env, "status", "--address="+h.gcsAddr)
	wantLines(t, out, "Demands:", " (no resource demands)")

	cmd := exec.Command(python, "demand.py")
	cmd.Env = h.env
	cmd.Dir = "testdata"
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewReader(stdout)
	for _, want := range []string{"holder held\n", "queued True\n"} {
		if line, err := lines.ReadString('\n'); err != nil || line != want {
			t.Fatalf("driver said %q, %v; want %q", line, err, want)
		}
	}
	out, _ = rayproc.Run(t, rayBin, h.env, "status", "--address="+h.gcsAddr)
	wantLines(t, out, "Demands:", " {'CPU': 2.0}: 1+ pending tasks/actors", " {'CPU': 64.0}: 1+ pending tasks/actors")

	// The cluster autoscaler's view: both waiting tasks with their shapes, the
	// one no node can hold marked infeasible, and the head busy with the actor.
	st := clusterState(t, h.gcsAddr)
	kinds := map[float64]string{}
	for _, p := range st.Pending {
		kinds[p.Resources["CPU"]] = p.Kind
	}
	if len(st.Pending) != 2 || kinds[2] != "ray_task" || kinds[64] != "ray_task_infeasible" {
		t.Errorf("pending demand = %v, want a ray_task of 2 CPU and a ray_task_infeasible of 64 CPU", st.Pending)
	}
	if len(st.Activity) != 1 || st.Activity[0].RunningProcesses == 0 || st.Activity[0].IdleSinceMs != 0 {
		t.Errorf("head activity = %v, want busy with the actor's lease", st.Activity)
	}

	// The demand goes with the driver.
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("driver: %v", err)
	}
	eventually(t, "the demand to go with its driver", 10*time.Second, func() bool {
		out, _ := rayproc.Run(t, rayBin, h.env, "status", "--address="+h.gcsAddr)
		return strings.Contains(out, " (no resource demands)\n")
	})
	if st := clusterState(t, h.gcsAddr); len(st.Pending) != 0 {
		t.Errorf("pending demand after the driver left = %v, want none", st.Pending)
	}
}

// clusterState reads the head's GetClusterState, as the autoscaler does.
func clusterState(t *testing.T, gcsAddr string) *gcsv1.GetClusterStateResponse {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+gcsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := gcsv1.NewAutoscalerStateServiceClient(conn).GetClusterState(ctx, &gcsv1.GetClusterStateRequest{})
	if err != nil {
		t.Fatalf("GetClusterState: %v", err)
	}
	return st
}

func TestActorRestarts(t *testing.T) {
	h := startHead(t, 2)
	wantLines(t, runPython(t, h.env, false, "restarts.py"),
		"before [1, 2]",
		"crash call failed",
		"after restart 1",
		"restarts used up: dead",
	)
}
