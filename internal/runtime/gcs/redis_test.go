package gcs

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/redis/go-redis/v9"

	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
	"github.com/rayk8s/rayk8s/internal/testsupport/redisproc"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// rawKeys lists the Redis keys matching pattern, read past RedisStorage.
func rawKeys(t *testing.T, addr, pattern string) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	var keys []string
	it := c.Scan(ctx(), 0, pattern, 100).Iterator()
	for it.Next(ctx()) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func TestRedisClusterNamespacesAreIsolated(t *testing.T) {
	srv := redisproc.Start(t, redisproc.Options{})
	one, two := openRedis(t, srv.Addr(), "cluster-one"), openRedis(t, srv.Addr(), "cluster-two")
	mustPut(t, one, "jobs", "job:1", "one's job", false, true)
	mustPut(t, one, "@rayk8s_nodes", "n1", "one's node", false, true)
	mustPut(t, two, "jobs", "job:2", "two's job", false, true)

	if _, ok, _ := two.Get(ctx(), "jobs", "job:1"); ok {
		t.Error("cluster-two sees cluster-one's job")
	}
	if keys, _ := two.Keys(ctx(), "jobs", ""); !slices.Equal(keys, []string{"job:2"}) {
		t.Errorf("cluster-two's jobs = %q, want only job:2", keys)
	}
	if keys, _ := one.Keys(ctx(), "jobs", ""); !slices.Equal(keys, []string{"job:1"}) {
		t.Errorf("cluster-one's jobs = %q, want only job:1", keys)
	}
	// One hash per storage namespace, all under the cluster's prefix.
	if got, want := rawKeys(t, srv.Addr(), "RAYcluster-one@*"), []string{"RAYcluster-one@%40rayk8s_nodes", "RAYcluster-one@jobs"}; !slices.Equal(got, want) {
		t.Errorf("cluster-one's Redis keys = %q, want %q", got, want)
	}
	if got := rawKeys(t, srv.Addr(), "*"); len(got) != 3 {
		t.Errorf("all Redis keys = %q, want 3 hashes", got)
	}
}

// TestRedisStorageWaitsForRedisAtStart starts the storage before Redis runs: it logs that it
// waits and connects once Redis is up.
func TestRedisStorageWaitsForRedisAtStart(t *testing.T) {
	redisproc.Binary(t)
	port := rayproc.FreePort(t)
	waiting := make(chan string, 100)
	log := funcr.New(func(prefix, args string) {
		select {
		case waiting <- args:
		default:
		}
	}, funcr.Options{})
	type result struct {
		st  *RedisStorage
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := NewRedisStorage(ctx(), StorageConfig{RedisAddress: "redis://127.0.0.1:" + strconv.Itoa(port), Namespace: "late",
			ConnectRetries: 1000, ConnectWait: 10 * time.Millisecond}, log)
		done <- result{st, err}
	}()
	first := <-waiting
	for _, want := range []string{"Waiting for Redis", "127.0.0.1:" + strconv.Itoa(port), `"attempt"=1`, `"of"=1000`} {
		if !strings.Contains(first, want) {
			t.Errorf("first log line %s lacks %s", first, want)
		}
	}
	srv := startRedisOnPort(t, port)
	r := <-done
	if r.err != nil {
		t.Fatalf("storage did not connect once Redis was up: %v", r.err)
	}
	defer func() { _ = r.st.Close() }()
	mustPut(t, r.st, "ns", "k", "v", false, true)
	if keys := rawKeys(t, srv.Addr(), "RAYlate@*"); !slices.Equal(keys, []string{"RAYlate@ns"}) {
		t.Errorf("keys = %q", keys)
	}
}

func startRedisOnPort(t *testing.T, port int) *redisproc.Server {
	t.Helper()
	return redisproc.StartOnPort(t, port, redisproc.Options{})
}

func TestRedisStorageGivesUpAfterRetries(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(rayproc.FreePort(t))
	_, err := NewRedisStorage(ctx(), StorageConfig{RedisAddress: addr, ConnectRetries: 3, ConnectWait: time.Millisecond}, logr.Discard())
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	for _, want := range []string{addr, "3 attempts", EnvRedisConnectRetries} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRedisStorageAuthenticates(t *testing.T) {
	srv := redisproc.Start(t, redisproc.Options{Password: "s3cret"})
	for i, cfg := range []StorageConfig{
		{RedisAddress: srv.Addr(), Password: "s3cret"},
		{RedisAddress: "redis://:s3cret@" + srv.Addr()},
		{RedisAddress: "redis://default:s3cret@" + srv.Addr() + "/0"},
	} {
		cfg.ConnectRetries = 1
		cfg.Namespace = "auth" + strconv.Itoa(i)
		st, err := NewRedisStorage(ctx(), cfg, logr.Discard())
		if err != nil {
			t.Errorf("with the right password in %+v: %v", cfg, err)
			continue
		}
		mustPut(t, st, "ns", "k", "v", true, true)
		_ = st.Close()
	}
	_, err := NewRedisStorage(ctx(), StorageConfig{RedisAddress: srv.Addr(), Password: "wrong", ConnectRetries: 1}, logr.Discard())
	if err == nil {
		t.Fatal("connected with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error %q repeats the password", err)
	}
}

func TestStorageConfigFromEnv(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		flagPass   string
		want       StorageConfig
		wantErr    string
		wantHost   string
		wantTLS    bool
		wantDB     int
		wantSecret string
	}{
		{name: "no address is memory", env: map[string]string{},
			want: StorageConfig{Namespace: "default", ConnectRetries: 120, ConnectWait: 100 * time.Millisecond}},
		{name: "host:port with Ray's knobs", env: map[string]string{EnvRedisAddress: "redis.ns.svc:6380", EnvStorageNamespace: "uid-1",
			EnvRedisPassword: "envpw", EnvRedisConnectRetries: "7", EnvRedisConnectWaitMs: "250"},
			want:     StorageConfig{RedisAddress: "redis.ns.svc:6380", Password: "envpw", Namespace: "uid-1", ConnectRetries: 7, ConnectWait: 250 * time.Millisecond},
			wantHost: "redis.ns.svc:6380", wantSecret: "envpw"},
		{name: "the first of a comma list; the flag wins over the env", env: map[string]string{EnvRedisAddress: " a:1, b:2", EnvRedisPassword: "envpw"}, flagPass: "flagpw",
			want:     StorageConfig{RedisAddress: "a:1", Password: "flagpw", Namespace: "default", ConnectRetries: 120, ConnectWait: 100 * time.Millisecond},
			wantHost: "a:1", wantSecret: "flagpw"},
		{name: "rediss URL with credentials and db", env: map[string]string{EnvRedisAddress: "rediss://u:urlpw@r.example:7000/2"},
			want:     StorageConfig{RedisAddress: "rediss://u:urlpw@r.example:7000/2", Namespace: "default", ConnectRetries: 120, ConnectWait: 100 * time.Millisecond},
			wantHost: "r.example:7000", wantTLS: true, wantDB: 2, wantSecret: "urlpw"},
		{name: "redis URL without port", env: map[string]string{EnvRedisAddress: "redis://r.example"},
			want:     StorageConfig{RedisAddress: "redis://r.example", Namespace: "default", ConnectRetries: 120, ConnectWait: 100 * time.Millisecond},
			wantHost: "r.example:6379"},
		{name: "no port", env: map[string]string{EnvRedisAddress: "r.example"}, wantErr: EnvRedisAddress},
		{name: "other scheme", env: map[string]string{EnvRedisAddress: "http://r.example:1"}, wantErr: `scheme "http"`},
		{name: "bad retries", env: map[string]string{EnvRedisConnectRetries: "0"}, wantErr: EnvRedisConnectRetries},
		{name: "bad wait", env: map[string]string{EnvRedisConnectWaitMs: "soon"}, wantErr: EnvRedisConnectWaitMs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := StorageConfigFromEnv(func(k string) string { return tt.env[k] }, tt.flagPass, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg != tt.want {
				t.Fatalf("config = %+v, want %+v", cfg, tt.want)
			}
			if tt.wantHost == "" {
				return
			}
			ep, err := cfg.redisEndpoint()
			if err != nil {
				t.Fatal(err)
			}
			if ep.hostPort != tt.wantHost || ep.tls != tt.wantTLS || ep.db != tt.wantDB || ep.password != tt.wantSecret {
				t.Errorf("endpoint = %+v, want host %s tls %v db %d password %q", ep, tt.wantHost, tt.wantTLS, tt.wantDB, tt.wantSecret)
			}
		})
	}
}

// TestHeadHealthFollowsRedis: while Redis is away the control service reports itself
// unhealthy and refuses registrations it cannot store; once Redis is back it writes the
// records it could not and is healthy again, and a head restarted on the same Redis reloads
// every node.
func TestHeadHealthFollowsRedis(t *testing.T) {
	srv := redisproc.Start(t, redisproc.Options{Persist: true})
	cfg := StorageConfig{RedisAddress: srv.Addr(), Namespace: "ft", ConnectRetries: 1}
	s, err := NewServer(ctx(), Options{StorageConfig: cfg, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.closeStorage() }()
	if err := s.RegisterNode(ctx(), node("1", true, map[string]float64{"CPU": 1}, nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckHealth(ctx()); err != nil {
		t.Fatalf("healthy head with Redis up: %v", err)
	}

	srv.Stop()
	if err := s.CheckHealth(ctx()); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("CheckHealth with Redis down = %v, want unreachable", err)
	}
	if err := s.RegisterNode(ctx(), node("2", false, nil, nil), nil); err == nil {
		t.Fatal("RegisterNode answered success while Redis is down")
	}

	srv.Restart()
	if err := s.CheckHealth(ctx()); err != nil {
		t.Fatalf("CheckHealth after Redis came back: %v", err)
	}
	restarted, err := NewServer(ctx(), Options{StorageConfig: cfg, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = restarted.closeStorage() }()
	var ids []string
	for _, n := range restarted.Nodes() {
		ids = append(ids, n.NodeId)
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
			t.Errorf("reloaded node %s is %s, want ALIVE", n.NodeId, n.State)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"1", "2"}) {
		t.Errorf("restarted head reloaded nodes %q, want 1 and 2 (2 registered while Redis was down, stored once it was back)", ids)
	}
}

// TestNewServerReportsUnusedRedisCredentials: credentials without an address are reported in
// the log, not silently dropped.
func TestNewServerReportsUnusedRedisCredentials(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(_, args string) { mu.Lock(); lines = append(lines, args); mu.Unlock() }, funcr.Options{})
	st, err := NewStorageFromConfig(context.Background(), StorageConfig{Password: "p"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*MemoryStorage); !ok {
		t.Fatalf("storage = %T, want memory", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || !strings.Contains(lines[0], "Ignoring the Redis credentials") {
		t.Errorf("log = %q, want one line about the ignored credentials", lines)
	}
}
