package serve_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	echoApp = `{"name": "echo", "import_path": "builtin:echo", "route_prefix": "/echo",
	  "deployments": [{"name": "echo", "num_replicas": 3, "max_ongoing_requests": 8, "user_config": {"message": "%s"}, "ray_actor_options": {"num_cpus": %s}}]}`
	noopApp = `{"name": "noop", "import_path": "builtin:noop", "route_prefix": "/", "deployments": [{"name": "noop", "ray_actor_options": {"num_cpus": 0.1}}]}`
)

func echo(msg, cpus string) string { return fmt.Sprintf(echoApp, msg, cpus) }

func TestServe(t *testing.T) {
	c := startCluster(t)

	t.Run("deploy via REST and call every node's proxy", func(t *testing.T) {
		c.mustPut(t, c.config(echo("v1", "0.1"), noopApp))
		apps := c.waitRunning(t, "echo", "noop")
		ips := map[string]bool{}
		for _, r := range apps["echo"].Deployments["echo"].Replicas {
			ips[r.NodeIP] = true
		}
		if len(ips) != 3 {
			t.Errorf("echo replicas on %v, want spread over the 3 nodes", ips)
		}
		for _, p := range c.proxies {
			eventually(t, "proxy "+p+" to be healthy", 10*time.Second, func() bool {
				code, body := c.do(t, "GET", p+"/-/healthz", "")
				return code == 200 && body == "success"
			})
			code, body := c.do(t, "POST", p+"/echo/sub/path?q=1", "hello")
			if code != 200 || jsonField(body, "body") != "hello" || jsonField(body, "path") != "/echo/sub/path" ||
				jsonField(body, "route_prefix") != "/echo" || jsonField(body, "message") != "v1" {
				t.Errorf("%s/echo = %d %s", p, code, body)
			}
			// The replica reserved 0.1 CPU: its Go code runs on one thread.
			if got := jsonField(body, "gomaxprocs"); got != "1" {
				t.Errorf("%s/echo: the replica's GOMAXPROCS = %s, want 1 for num_cpus 0.1", p, got)
			}
			if code, body := c.do(t, "GET", p+"/echoes", ""); code != 200 || body != "" {
				t.Errorf("/echoes must go to the / app (noop), got %d %q", code, body)
			}
			code, body = c.do(t, "GET", p+"/-/routes", "")
			if code != 200 || body != `{"/":"noop","/echo":"echo"}` {
				t.Errorf("/-/routes = %d %s", code, body)
			}
		}
		req, _ := http.NewRequest("GET", c.proxies[1]+"/echo", nil)
		req.Header.Set("X-Request-ID", "my-request")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); got != "my-request" {
			t.Errorf("x-request-id = %q, want the caller's", got)
		}
	})

	t.Run("every node's metrics port shows Serve's request counters", func(t *testing.T) {
		for i := range 5 {
			for _, p := range c.proxies {
				if code, _ := c.do(t, "POST", p+"/echo", "m"); code != 200 {
					t.Fatalf("%s/echo = %d (call %d)", p, code, i)
				}
			}
		}
		for node := range c.proxies {
			// Each proxy answered at least the 5 calls above.
			if n := c.metricSum(t, node, "ray_serve_num_http_requests_total", `application="echo"`, `route="/echo"`, `status_code="200"`); n < 5 {
				t.Errorf("node %d: ray_serve_num_http_requests_total{application=echo} = %v, want >= 5", node, n)
			}
			if n := c.metricSum(t, node, "ray_serve_http_request_latency_ms_count", `application="echo"`); n < 5 {
				t.Errorf("node %d: ray_serve_http_request_latency_ms_count{application=echo} = %v, want >= 5", node, n)
			}
			if n := c.metricSum(t, node, "ray_serve_num_router_requests_total", `deployment="echo"`); n < 5 {
				t.Errorf("node %d: ray_serve_num_router_requests_total{deployment=echo} = %v, want >= 5", node, n)
			}
		}
		// The routers prefer local replicas, and every node has one.
		for node := range c.proxies {
			if n := c.metricSum(t, node, "ray_serve_deployment_request_counter_total", `application="echo"`, `deployment="echo"`); n < 1 {
				t.Errorf("node %d: ray_serve_deployment_request_counter_total{deployment=echo} = %v, want > 0", node, n)
			}
		}
		if n := c.metricSum(t, 0, "ray_serve_deployment_replica_healthy", `application="echo"`); n != 3 {
			t.Errorf("head: healthy echo replicas = %v, want 3", n)
		}
		if n := c.metricSum(t, 1, "ray_serve_deployment_replica_healthy"); n != 0 {
			t.Errorf("a worker exports replica health (%v); only the head's controller knows it", n)
		}
	})

	t.Run("invalid config fields are 400s naming the field and change nothing", func(t *testing.T) {
		before := c.apps(t)
		bad := map[string]string{
			"applications[0].deployments[0].max_ongoing_requests":       c.config(strings.Replace(echo("v1", "0.1"), `"max_ongoing_requests": 8`, `"max_ongoing_requests": 0`, 1), noopApp),
			"applications[1].route_prefix":                              c.config(echo("v1", "0.1"), strings.Replace(noopApp, `"/"`, `"/echo"`, 1)),
			"applications[0].import_path":                               c.config(`{"name": "x", "import_path": "no_dots"}`),
			"applications[0].deployments[0].num_replicas":               c.config(strings.Replace(echo("v1", "0.1"), `"num_replicas": 3`, `"num_replicas": -2`, 1)),
			"applications[0].deployments[0].ray_actor_options.num_cpus": c.config(echo("v1", `"one"`)),
			"applications[0].deployments[0].surprise":                   c.config(strings.Replace(echo("v1", "0.1"), `"name": "echo", "num_replicas"`, `"name": "echo", "surprise": 1, "num_replicas"`, 1)),
			"http_options.port":                                         `{"http_options": {"port": "x"}, "applications": []}`,
			"target_capacity":                                           `{"target_capacity": 200, "applications": []}`,
		}
		for field, cfg := range bad {
			code, body := c.put(t, cfg)
			if code != 400 || !strings.Contains(body, field) {
				t.Errorf("PUT with a bad %s = %d %q, want 400 naming it", field, code, body)
			}
		}
		after := c.apps(t)
		for name, a := range before {
			if after[name].Status != "RUNNING" || fmt.Sprint(after[name].Deployments) != fmt.Sprint(a.Deployments) {
				t.Errorf("app %s changed after rejected PUTs:\n%v\n%v", name, a, after[name])
			}
		}
		if code, _ := c.do(t, "GET", c.proxies[0]+"/echo", ""); code != 200 {
			t.Errorf("echo answers %d after rejected PUTs", code)
		}
	})

	t.Run("user_config change under load fails nothing", func(t *testing.T) {
		before := c.apps(t)["echo"].Deployments["echo"].Replicas
		l := startLoad(c, 6, "/echo", "x", func(b string) string { return jsonField(b, "message") })
		eventually(t, "load to flow", 10*time.Second, func() bool { return l.count("v1") > 20 })
		c.mustPut(t, c.config(echo("v2", "0.1"), noopApp))
		eventually(t, "responses with the new user_config", 30*time.Second, func() bool { return l.count("v2") > 50 })
		ok, failures := l.finish()
		if len(failures) > 0 {
			t.Fatalf("%d of %d requests failed during the user_config change: %v", len(failures), ok+len(failures), failures[:min(5, len(failures))])
		}
		after := c.waitRunning(t, "echo")["echo"].Deployments["echo"].Replicas
		if ids(before) != ids(after) {
			t.Errorf("user_config change restarted replicas: %s → %s", ids(before), ids(after))
		}
		t.Logf("%d requests, 0 failed, across the user_config change", ok)
	})

	t.Run("rolling code update under load fails nothing", func(t *testing.T) {
		before := c.apps(t)["echo"].Deployments["echo"].Replicas
		l := startLoad(c, 6, "/echo", "x", func(b string) string { return jsonField(b, "replica_id") })
		eventually(t, "load to flow", 10*time.Second, func() bool { return l.count(before[0].ReplicaID) > 5 })
		// num_cpus is a heavyweight option: every replica is replaced.
		c.mustPut(t, c.config(echo("v2", "0.2"), noopApp))
		var after []replicaDetails
		eventually(t, "the roll to finish", 60*time.Second, func() bool {
			a := c.apps(t)["echo"]
			after = a.Deployments["echo"].Replicas
			if a.Status != "RUNNING" || len(after) != 3 {
				return false
			}
			for _, r := range after {
				if r.State != "RUNNING" || strings.Contains(ids(before), r.ReplicaID) {
					return false
				}
			}
			return true
		})
		eventually(t, "traffic on the new replicas", 10*time.Second, func() bool { return l.count(after[0].ReplicaID) > 5 })
		ok, failures := l.finish()
		if len(failures) > 0 {
			t.Fatalf("%d of %d requests failed during the rolling update: %v", len(failures), ok+len(failures), failures[:min(5, len(failures))])
		}
		t.Logf("%d requests, 0 failed, across the rolling update", ok)
	})

	t.Run("a killed replica is replaced and only its in-flight calls fail", func(t *testing.T) {
		sleepApp := `{"name": "sleep", "import_path": "builtin:sleep", "route_prefix": "/sleep",
		  "deployments": [{"name": "sleep", "num_replicas": 2, "max_ongoing_requests": 4, "user_config": {"sleep_s": 0.05}, "ray_actor_options": {"num_cpus": 0.1}}]}`
		c.mustPut(t, c.config(echo("v2", "0.2"), noopApp, sleepApp))
		reps := c.waitRunning(t, "sleep")["sleep"].Deployments["sleep"].Replicas
		l := startLoad(c, 9, "/sleep", "", nil)
		eventually(t, "load to flow", 10*time.Second, func() bool { return l.ok > 30 })
		victim := reps[0]
		if victim.PID == 0 {
			t.Fatal("no pid reported for the replica")
		}
		if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a replacement replica", 60*time.Second, func() bool {
			rs := c.apps(t)["sleep"].Deployments["sleep"].Replicas
			running := 0
			for _, r := range rs {
				if r.ReplicaID == victim.ReplicaID {
					return false
				}
				if r.State == "RUNNING" {
					running++
				}
			}
			return running == 2
		})
		okBefore := l.ok
		eventually(t, "load on the replacement", 10*time.Second, func() bool { return l.ok > okBefore+30 })
		ok, failures := l.finish()
		// The replica holds at most max_ongoing_requests (4) calls; only
		// those may be lost, queued ones are routed elsewhere.
		if len(failures) > 4 {
			t.Fatalf("%d requests failed, more than the 4 the killed replica can have in flight: %v", len(failures), failures)
		}
		t.Logf("%d requests; %d in flight on the killed replica failed: %v", ok+len(failures), len(failures), failures)
	})

	t.Run("max_ongoing_requests is never exceeded under a 10x burst", func(t *testing.T) {
		capApp := `{"name": "cap", "import_path": "builtin:sleep", "route_prefix": "/cap",
		  "deployments": [{"name": "sleep", "num_replicas": 2, "max_ongoing_requests": 3, "user_config": {"sleep_s": 0.2}, "ray_actor_options": {"num_cpus": 0.1}}]}`
		c.mustPut(t, c.config(noopApp, capApp))
		c.waitRunning(t, "cap")
		const burst = 60 // 10 × (2 replicas × 3)
		var wg sync.WaitGroup
		results := make(chan string, burst)
		for i := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body := c.do(t, "GET", c.proxies[i%len(c.proxies)]+"/cap", "")
				results <- fmt.Sprintf("%d %s", code, body)
			}()
		}
		wg.Wait()
		close(results)
		maxSeen := 0
		for r := range results {
			code, body, _ := strings.Cut(r, " ")
			if code != "200" {
				t.Errorf("burst request failed: %s", r)
				continue
			}
			var m struct {
				MaxConcurrent int `json:"max_concurrent"`
			}
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatal(err)
			}
			maxSeen = max(maxSeen, m.MaxConcurrent)
		}
		if maxSeen > 3 || maxSeen == 0 {
			t.Fatalf("a replica saw %d concurrent calls, max_ongoing_requests is 3", maxSeen)
		}
		t.Logf("highest concurrency observed inside a replica: %d (cap 3)", maxSeen)
	})

	t.Run("max_queued_requests overflow is a 503 and nothing else fails", func(t *testing.T) {
		qApp := `{"name": "q", "import_path": "builtin:sleep", "route_prefix": "/q",
		  "deployments": [{"name": "sleep", "num_replicas": 1, "max_ongoing_requests": 1, "max_queued_requests": 2, "user_config": {"sleep_s": 0.5}, "ray_actor_options": {"num_cpus": 0.1}}]}`
		c.mustPut(t, c.config(noopApp, qApp))
		c.waitRunning(t, "q")
		var wg sync.WaitGroup
		codes := make(chan string, 12)
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body := c.do(t, "GET", c.proxies[0]+"/q", "")
				codes <- fmt.Sprintf("%d %s", code, body)
			}()
		}
		wg.Wait()
		close(codes)
		ok, rejected := 0, 0
		for r := range codes {
			switch {
			case strings.HasPrefix(r, "200 "):
				ok++
			case strings.HasPrefix(r, "503 ") && strings.Contains(r, "max_queued_requests=2"):
				rejected++
			default:
				t.Errorf("unexpected answer %q", r)
			}
		}
		if rejected == 0 || ok < 3 {
			t.Fatalf("%d ok and %d rejected, want some 503s and at least the 1 running + 2 queued served", ok, rejected)
		}
		t.Logf("%d served, %d rejected with 503", ok, rejected)
	})

	t.Run("constructor failures end in DEPLOY_FAILED with the error", func(t *testing.T) {
		badApp := `{"name": "bad", "import_path": "builtin:echo", "route_prefix": "/bad", "args": {"fail_constructor": "cannot load the model"},
		  "deployments": [{"name": "echo", "ray_actor_options": {"num_cpus": 0.1}}]}`
		c.mustPut(t, c.config(noopApp, badApp))
		var a appDetails
		eventually(t, "DEPLOY_FAILED", 60*time.Second, func() bool {
			a = c.apps(t)["bad"]
			return a.Status == "DEPLOY_FAILED"
		})
		if msg := a.Deployments["echo"].Message; !strings.Contains(msg, "cannot load the model") {
			t.Errorf("deployment message %q lacks the constructor error", msg)
		}
		if code, body := c.do(t, "GET", c.proxies[0]+"/bad", ""); code != 503 {
			t.Errorf("a DEPLOY_FAILED app answers %d %s, want 503", code, body)
		}
	})

	t.Run("python composition through handles", func(t *testing.T) {
		if _, err := exec.LookPath("python3"); err != nil {
			t.Skip("python3 is not installed")
		}
		fruit := fmt.Sprintf(`{"name": "fruit", "import_path": "fruit:app", "route_prefix": "/fruit", "runtime_env": {"working_dir": %q},
		  "deployments": [{"name": "MangoStand", "user_config": {"price": 4}, "ray_actor_options": {"num_cpus": 0.1}},
		    {"name": "OrangeStand", "ray_actor_options": {"num_cpus": 0.1}}, {"name": "FruitMarket", "ray_actor_options": {"num_cpus": 0.1}}]}`, c.pythonDir+"/examples")
		c.mustPut(t, c.config(noopApp, fruit))
		c.waitRunning(t, "fruit")
		for _, p := range c.proxies {
			if code, body := c.do(t, "POST", p+"/fruit", `["MANGO", 2]`); code != 200 || body != "8" {
				t.Errorf("mango through %s = %d %s, want 8", p, code, body)
			}
			if code, body := c.do(t, "POST", p+"/fruit", `["ORANGE", 3]`); code != 200 || body != "6" {
				t.Errorf("orange through %s = %d %s, want 6", p, code, body)
			}
		}
		code, body := c.do(t, "POST", c.proxies[0]+"/fruit", `not json`)
		if code != 500 || !strings.Contains(body, "Traceback") || !strings.Contains(body, "JSONDecodeError") {
			t.Errorf("user exception = %d %q, want 500 with the traceback", code, body)
		}
		// user_config reaches the Python replica's reconfigure in place.
		c.mustPut(t, strings.Replace(c.config(noopApp, fruit), `"price": 4`, `"price": 7`, 1))
		eventually(t, "the new mango price", 30*time.Second, func() bool {
			_, body := c.do(t, "POST", c.proxies[0]+"/fruit", `["MANGO", 1]`)
			return body == "7"
		})
	})

	t.Run("DELETE shuts Serve down", func(t *testing.T) {
		if code, body := c.do(t, "DELETE", c.dashURL+"/api/serve/applications/", ""); code != 200 {
			t.Fatalf("DELETE = %d %s", code, body)
		}
		if apps := c.apps(t); len(apps) != 0 {
			t.Fatalf("applications after DELETE: %v", apps)
		}
	})
}

func ids(rs []replicaDetails) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ReplicaID)
	}
	return strings.Join(out, ",")
}
