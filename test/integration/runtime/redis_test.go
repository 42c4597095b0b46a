package runtime_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
	"github.com/rayk8s/rayk8s/internal/testsupport/redisproc"
)

// redisKeys lists the keys of a test redis-server matching pattern.
func redisKeys(t *testing.T, srv *redisproc.Server, password, pattern string) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: password, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	keys, err := c.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// gcsHealthy asks the dashboard's health endpoint, without a token; a head that does not
// listen yet is unhealthy.
func gcsHealthy(t *testing.T, c *cluster) bool {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(c.dashURL + "/api/gcs_healthz")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), "success")
}

// TestHeadKeepsItsTablesInRedis runs a head with GCS fault tolerance the way KubeRay
// configures it (RAY_REDIS_ADDRESS as a list, REDIS_PASSWORD, --redis-password,
// RAY_external_storage_namespace): a job survives a SIGKILL of the head, the keys live under
// the cluster's prefix, and the head's health checks fail while Redis is away.
func TestHeadKeepsItsTablesInRedis(t *testing.T) {
	srv := redisproc.Start(t, redisproc.Options{Password: "s3cret", Persist: true})
	tmp := t.TempDir()
	c := &cluster{tmp: tmp, gcsPort: rayproc.FreePort(t), dashPort: rayproc.FreePort(t), agentPort: rayproc.FreePort(t), metricsPort: rayproc.FreePort(t)}
	c.gcsAddr = "127.0.0.1:" + strconv.Itoa(c.gcsPort)
	c.dashURL = "http://127.0.0.1:" + strconv.Itoa(c.dashPort)
	c.env = append(baseEnv(tmp),
		"RAY_REDIS_ADDRESS=redis://"+srv.Addr()+",redis://127.0.0.1:1",
		"REDIS_PASSWORD=s3cret",
		"RAY_external_storage_namespace=ft-cluster",
	)
	args := append(headArgs(c), "--redis-password=s3cret")
	c.head = startRay(t, c.env, args...)
	c.waitAlive(t, 1)

	dash := "--address=" + c.dashURL
	if out, code := runRay(t, c.env, "job", "submit", dash, "--submission-id=before-kill", "--", "echo", "kept"); code != 0 {
		t.Fatalf("submit exit %d:\n%s", code, out)
	}
	keys := redisKeys(t, srv, "s3cret", "*")
	if len(keys) == 0 {
		t.Fatal("the head wrote nothing to Redis")
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "RAYft-cluster@") {
			t.Errorf("key %q is outside the cluster's namespace prefix RAYft-cluster@", k)
		}
	}

	if err := c.head.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.head.Done()
	c.head = startRay(t, c.env, args...)
	eventually(t, "the restarted head to be healthy", 20*time.Second, func() bool { return gcsHealthy(t, c) })
	j := getJob(t, c, "before-kill")
	if j.Status != "SUCCEEDED" {
		t.Errorf("job after the head restart = %+v, want SUCCEEDED", j)
	}

	srv.Stop()
	eventually(t, "the head to report itself unhealthy without Redis", 20*time.Second, func() bool { return !gcsHealthy(t, c) })
	if out, code := runRay(t, c.env, "health-check", "--address", c.gcsAddr); code == 0 {
		t.Errorf("ray health-check with Redis down exit 0: %s", out)
	}
	srv.Restart()
	eventually(t, "the head to be healthy once Redis is back", 20*time.Second, func() bool { return gcsHealthy(t, c) })
}

// TestHeadWaitsForRedisThenGivesUp: a head whose Redis never answers says so and exits 1
// after RAY_redis_db_connect_retries attempts.
func TestHeadWaitsForRedisThenGivesUp(t *testing.T) {
	tmp := t.TempDir()
	c := &cluster{tmp: tmp, gcsPort: rayproc.FreePort(t), dashPort: rayproc.FreePort(t), agentPort: rayproc.FreePort(t), metricsPort: rayproc.FreePort(t)}
	closed := "127.0.0.1:" + strconv.Itoa(rayproc.FreePort(t))
	env := append(baseEnv(tmp), "RAY_REDIS_ADDRESS="+closed, "RAY_redis_db_connect_retries=3", "RAY_redis_db_connect_wait_milliseconds=10")
	out, code := runRay(t, env, headArgs(c)...)
	if code != 1 {
		t.Fatalf("head without Redis exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{"Waiting for Redis", closed, "no answer after 3 attempts"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestJobOnAWorkerSurvivesAHeadRestart: a job whose driver runs on a worker keeps running
// while the head is SIGKILLed and restarted on the same Redis, and finishes SUCCEEDED with its
// full log.
func TestJobOnAWorkerSurvivesAHeadRestart(t *testing.T) {
	srv := redisproc.Start(t, redisproc.Options{Persist: true})
	c := startClusterWithEnv(t, []string{"RAY_REDIS_ADDRESS=" + srv.Addr(), "RAY_external_storage_namespace=restart"}, []string{"--num-cpus=2"})
	dash := "--address=" + c.dashURL
	marker := c.tmp + "/go-on"
	script := c.tmp + "/driver.sh"
	if err := os.WriteFile(script, []byte("echo started\nwhile [ ! -e "+marker+" ]; do sleep 0.05; done\necho finished\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runRay(t, c.env, "job", "submit", dash, "--no-wait", "--submission-id=long", "--entrypoint-num-cpus=2", "--", "sh", script); code != 0 {
		t.Fatalf("submit exit %d:\n%s", code, out)
	}
	waitJob(t, c, "long", "RUNNING")

	if err := c.head.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.head.Done()
	c.head = startRay(t, c.env, headArgs(c)...)
	eventually(t, "the restarted head to be healthy", 20*time.Second, func() bool { return gcsHealthy(t, c) })
	// The restored node table says ALIVE before the worker is back: wait for its registration.
	reregistered := regexp.MustCompile(`msg="Registered node" .* ip=127\.0\.0\.2 `)
	eventually(t, "the worker to re-register with the restarted head", 20*time.Second, func() bool {
		return reregistered.MatchString(c.head.Out.String()) && c.nodeStates(t)["127.0.0.2"] == "ALIVE"
	})
	if j := getJob(t, c, "long"); j.Status != "RUNNING" {
		t.Fatalf("job after the head restart = %+v, want still RUNNING", j)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitJob(t, c, "long", "SUCCEEDED")
	out, code := runRay(t, c.env, "job", "logs", dash, "long")
	if code != 0 || !strings.Contains(out, "started") || !strings.Contains(out, "finished") {
		t.Errorf("logs after the head restart exit %d: %q, want started and finished", code, out)
	}
}
