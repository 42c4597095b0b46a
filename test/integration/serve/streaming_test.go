package serve_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const streamApp = `{"name": "stream", "import_path": "builtin:stream", "route_prefix": "/stream",
  "deployments": [{"name": "stream", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}}]}`

// sampleApps returns the applications of RayService samples, set up for
// this cluster.
func (c *cluster) sampleApps(t *testing.T, samples ...string) []string {
	t.Helper()
	var out []string
	for _, s := range samples {
		var cfg struct {
			Applications []json.RawMessage `json:"applications"`
		}
		if err := json.Unmarshal([]byte(c.sampleServeConfig(t, s)), &cfg); err != nil {
			t.Fatal(err)
		}
		for _, a := range cfg.Applications {
			out = append(out, string(a))
		}
	}
	return out
}

// Streaming, batching and multiplexing on a head and two workers: the
// builtin:stream deployment and the textgen, classifier and customer-models
// samples.
func TestServeStreamingBatchingMultiplexing(t *testing.T) {
	c := startCluster(t)
	apps := append([]string{streamApp}, c.sampleApps(t, "ray-service.textgen.yaml", "ray-service.classifier.yaml", "ray-service.customer-models.yaml")...)
	// A long batch wait (set through user_config and reconfigure) makes the
	// classifier's batches fill by size, not by time.
	for i, a := range apps {
		apps[i] = strings.Replace(a, `"batch_wait_timeout_s":0.05`, `"batch_wait_timeout_s":5`, 1)
	}
	if !strings.Contains(strings.Join(apps, ","), `"batch_wait_timeout_s":5`) {
		t.Fatal("the classifier sample's batch_wait_timeout_s was not found")
	}
	c.mustPut(t, c.config(apps...))
	c.waitRunning(t, "stream", "textgen", "classifier", "customer-models")
	for _, p := range c.proxies {
		eventually(t, "proxy "+p+" to be healthy", 100, func() bool {
			code, _ := c.do(t, "GET", p+"/-/healthz", "")
			return code == 200
		})
	}

	t.Run("streamed chunks arrive before the stream ends, through every proxy", func(t *testing.T) {
		for _, p := range c.proxies {
			resp, err := client.Get(p + "/stream?chunks=4&interval_s=0.3&chunk_size=32")
			if err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(resp.Body)
			var lines []string
			var firstArrived time.Time
			for {
				line, err := r.ReadString('\n')
				if line != "" {
					if firstArrived.IsZero() {
						firstArrived = time.Now()
					}
					lines = append(lines, line)
				}
				if err != nil {
					break
				}
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || len(lines) != 4 {
				t.Fatalf("%s/stream = %d, %d chunks %q", p, resp.StatusCode, len(lines), lines)
			}
			for i, l := range lines {
				if len(l) != 32 || !strings.HasPrefix(l, strconv.Itoa(i)+" ") {
					t.Errorf("chunk %d = %q", i, l)
				}
			}
			// The replica stamps each chunk when it produces it: the first
			// chunk reached this client before the last one was produced.
			lastProduced, err := strconv.ParseInt(strings.TrimRight(strings.Fields(lines[3])[1], "."), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if !firstArrived.Before(time.Unix(0, lastProduced)) {
				t.Errorf("%s: first chunk arrived at %v, after the last was produced at %v: the answer was buffered", p, firstArrived, time.Unix(0, lastProduced))
			}
		}
	})

	t.Run("an answer many times the flow-control window arrives whole", func(t *testing.T) {
		// 64 chunks of 64 KiB: the replica can only finish if every hop
		// returns credit as the client reads.
		for _, p := range c.proxies {
			code, body := c.do(t, "GET", p+"/stream?chunks=64&interval_s=0&chunk_size=65536", "")
			if code != 200 || len(body) != 64*65536 {
				t.Errorf("%s: %d, %d bytes, want 200 and %d bytes", p, code, len(body), 64*65536)
			}
		}
	})

	t.Run("a client that disconnects stops the stream in the replica", func(t *testing.T) {
		stats := func() (cancelled, active int) {
			code, body := c.do(t, "GET", c.proxies[1]+"/stream?stats=1", "")
			if code != 200 {
				t.Fatalf("stats = %d %s", code, body)
			}
			var s struct{ Cancelled, Active int }
			_ = json.Unmarshal([]byte(body), &s)
			return s.Cancelled, s.Active
		}
		before, _ := stats()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", c.proxies[2]+"/stream?chunks=100000&interval_s=0.05", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		eventually(t, "the replica to see the cancellation", 10*time.Second, func() bool {
			n, active := stats()
			return n == before+1 && active == 0
		})
	})

	t.Run("a Python generator streams through a streaming handle and stops on disconnect", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", c.proxies[0]+"/generate?prompt=hello+world&tokens=10000", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := resp.Body.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "hello-0 ") {
			t.Fatalf("first token = %q, %v (status %d)", buf[:n], err, resp.StatusCode)
		}
		// 10000 tokens 50ms apart take minutes: the first one came early.
		cancel()
		resp.Body.Close()
		eventually(t, "the generator to be stopped", 10*time.Second, func() bool {
			code, body := c.do(t, "GET", c.proxies[0]+"/generate/stats", "")
			return code == 200 && jsonField(body, "stopped") == "1"
		})
		code, body := c.do(t, "GET", c.proxies[1]+"/generate?prompt=a+b&tokens=3", "")
		if code != 200 || body != "a-0 b-1 a-2 " {
			t.Errorf("/generate = %d %q", code, body)
		}
	})

	t.Run("concurrent requests reach the replica as one batch", func(t *testing.T) {
		start := time.Now()
		var wg sync.WaitGroup
		results := make([]string, 8)
		codes := make([]int, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], results[i] = c.do(t, "POST", c.proxies[0]+"/classify", `"a great day number `+strconv.Itoa(i)+`"`)
			}()
		}
		wg.Wait()
		t.Logf("8 batched requests took %v", time.Since(start))
		for i := range 8 {
			if codes[i] != 200 || jsonField(results[i], "batch_size") != "8" || jsonField(results[i], "label") != "positive" {
				t.Errorf("request %d = %d %s, want a positive label from a batch of 8", i, codes[i], results[i])
			}
		}
		if code, body := c.do(t, "POST", c.proxies[0]+"/classify", `17`); code != 400 || !strings.Contains(body, "expected a JSON string") {
			t.Errorf("a bad item = %d %q, want 400 for that request only", code, body)
		}
	})

	t.Run("requests for a model land on the replica that holds it", func(t *testing.T) {
		for _, p := range c.proxies {
			for _, model := range []string{"customer-1", "customer-2", "customer-3"} {
				replicas := map[string]int{}
				for range 6 {
					req, _ := http.NewRequest("POST", p+"/predict", strings.NewReader("2"))
					req.Header.Set("serve_multiplexed_model_id", model)
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					var out struct {
						ModelID string `json:"model_id"`
						Replica string `json:"replica"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if resp.StatusCode != 200 || out.ModelID != model {
						t.Fatalf("%s/predict for %s = %d %+v", p, model, resp.StatusCode, out)
					}
					replicas[out.Replica]++
				}
				if len(replicas) != 1 {
					t.Errorf("%s: requests for %s went to %d replicas %v, want the one holding it", p, model, len(replicas), replicas)
				}
			}
		}
		if code, body := c.do(t, "POST", c.proxies[0]+"/predict", "2"); code != 400 || !strings.Contains(body, "serve_multiplexed_model_id") {
			t.Errorf("no model ID = %d %q", code, body)
		}
	})
}
