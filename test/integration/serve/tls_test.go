package serve_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rayk8s/rayk8s/internal/runtime/raytls/raytlstest"
	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
)

// TestServeOverMutualTLS runs the three-node cluster with RAY_USE_TLS and certificates of one CA:
// the workers join the head, and requests reach replicas on other nodes, all over mutual TLS;
// `ray health-check` gets through with the cluster's certificate only.
func TestServeOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := raytlstest.NewCA(t, "cluster")
	// One certificate for every node, as KubeRay's worker certificate lists every worker's IP.
	nodes := ca.Issue(t, filepath.Join(dir, "nodes"), []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, "localhost")
	env := raytlstest.Env(nodes)
	// startCluster runs `ray status` with this process's environment.
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c := startCluster(t, env...)

	// One replica: the proxies of the two other nodes reach it across nodes.
	c.mustPut(t, c.config(`{"name": "echo", "import_path": "builtin:echo", "route_prefix": "/echo",
	  "deployments": [{"name": "echo", "num_replicas": 1, "user_config": {"message": "tls"}, "ray_actor_options": {"num_cpus": 0.1}}]}`))
	apps := c.waitRunning(t, "echo")
	replicas := apps["echo"].Deployments["echo"].Replicas
	if len(replicas) != 1 {
		t.Fatalf("replicas = %+v, want one", replicas)
	}
	remote := 0
	for _, p := range c.proxies {
		if strings.Contains(p, "//"+replicas[0].NodeIP+":") {
			continue
		}
		remote++
		code, body := c.do(t, "POST", p+"/echo", "hello")
		if code != 200 || jsonField(body, "message") != "tls" || jsonField(body, "replica_id") != replicas[0].ReplicaID {
			t.Errorf("%s/echo, a replica on %s: %d %s", p, replicas[0].NodeIP, code, body)
		}
	}
	if remote != 2 {
		t.Errorf("%d proxies on other nodes than the replica's (%s), want 2", remote, replicas[0].NodeIP)
	}

	gcsAddr := ""
	for _, a := range c.headArgs {
		if p, ok := strings.CutPrefix(a, "--port="); ok {
			gcsAddr = "127.0.0.1:" + p
		}
	}
	healthCheck := func(env ...string) error {
		cmd := exec.Command(rayBin, "health-check", "--address="+gcsAddr)
		cmd.Env = rayproc.Env([]string{"RAY_"}, env...)
		return cmd.Run()
	}
	if err := healthCheck(env...); err != nil {
		t.Errorf("ray health-check with the cluster's certificate: %v", err)
	}
	if err := healthCheck(); err == nil {
		t.Error("ray health-check in plain text reached the GCS")
	}
	stranger := raytlstest.NewCA(t, "other").Issue(t, filepath.Join(dir, "stranger"), []string{"127.0.0.1"}, "localhost")
	if err := healthCheck(raytlstest.Env(stranger)...); err == nil {
		t.Error("ray health-check with another CA's certificate reached the GCS")
	}
}
