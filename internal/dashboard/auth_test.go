package dashboard_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

const rightToken = "right-token-0123456789"

func startAuthHead(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{
		Head:             true,
		NodeIP:           "127.0.0.1",
		IncludeDashboard: true,
		DashboardHost:    "127.0.0.1",
		Resources:        map[string]float64{"CPU": 2},
		TempDir:          t.TempDir(),
		HeartbeatPeriod:  100 * time.Millisecond,
		// Generous, so that a loaded machine does not declare the test's workers dead.
		FailureThreshold:   100,
		JobStopGracePeriod: 500 * time.Millisecond,
		AuthToken:          rightToken,
		Logger:             logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

type credential struct {
	name   string
	header string
	value  string
	cookie string
}

var (
	noToken     = credential{name: "no token"}
	wrongBearer = credential{name: "wrong bearer token", header: "Authorization", value: "Bearer wrong-token"}
	wrongRay    = credential{name: "wrong X-Ray-Authorization", header: dashboard.AuthHeader, value: "Bearer " + rightToken + "x"}
	wrongScheme = credential{name: "right token without Bearer", header: "Authorization", value: rightToken}
	wrongCookie = credential{name: "wrong cookie", cookie: "nope"}
	rightBearer = credential{name: "Authorization: Bearer", header: "Authorization", value: "Bearer " + rightToken}
	rightRay    = credential{name: "X-Ray-Authorization", header: dashboard.AuthHeader, value: "Bearer " + rightToken}
	rightCookie = credential{name: "cookie", cookie: rightToken}
)

func call(t *testing.T, method, url, body string, c credential) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.header != "" {
		req.Header.Set(c.header, c.value)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: dashboard.AuthCookie, Value: c.cookie})
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestTokenAuthOnEveryDashboardRoute tries every dashboard route without a token and with
// wrong ones: each is refused with a one-line reason and nothing changes; the right token, in
// any of the three places Ray reads it from, is let through; health checks stay open.
func TestTokenAuthOnEveryDashboardRoute(t *testing.T) {
	n := startAuthHead(t)
	base := n.DashboardURL()
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "refused-job-ran")
	authed, err := dashboard.NewClient(base, dashboard.WithAuthToken(rightToken))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authed.SubmitJob(ctx, &dashboard.JobSubmitRequest{Entrypoint: "sleep 60", SubmissionID: "keep"}); err != nil {
		t.Fatalf("submit with the right token: %v", err)
	}

	app := `{"applications":[{"name":"app","route_prefix":"/","import_path":"builtin:echo"}]}`
	routes := []struct{ method, path, body string }{
		{"GET", "/api/version", ""},
		{"GET", "/api/ray/version", ""},
		{"GET", "/api/jobs/", ""},
		{"GET", "/api/jobs", ""},
		{"POST", "/api/jobs/", `{"entrypoint":"touch ` + marker + `","submission_id":"sneaky"}`},
		{"POST", "/api/jobs", `{"entrypoint":"touch ` + marker + `","submission_id":"sneaky2"}`},
		{"GET", "/api/jobs/keep", ""},
		{"POST", "/api/jobs/keep/stop", ""},
		{"DELETE", "/api/jobs/keep", ""},
		{"GET", "/api/jobs/keep/logs", ""},
		{"GET", "/api/jobs/keep/logs/tail", ""},
		{"GET", "/api/packages/gcs/_ray_pkg_sneaky.zip", ""},
		{"PUT", "/api/packages/gcs/_ray_pkg_sneaky.zip", "PK-not-really-a-zip"},
		{"GET", "/api/serve/applications/", ""},
		{"PUT", "/api/serve/applications/", app},
		{"DELETE", "/api/serve/applications/", ""},
		{"GET", "/api/v0/nodes", ""},
		{"GET", "/api/v0/jobs", ""},
		{"GET", "/api/v0/actors", ""},
		{"GET", "/api/v0/tasks", ""},
		{"GET", "/api/v0/objects", ""},
		{"GET", "/no/such/route", ""},
	}
	for _, c := range []credential{noToken, wrongBearer, wrongRay, wrongScheme, wrongCookie} {
		want, reason := http.StatusForbidden, "Forbidden: invalid authentication token"
		if c == noToken {
			want, reason = http.StatusUnauthorized, "Unauthorized: missing authentication token"
		}
		for _, r := range routes {
			code, body := call(t, r.method, base+r.path, r.body, c)
			if code != want || !strings.HasPrefix(body, reason) || strings.Contains(body, "\n") {
				t.Errorf("%s %s with %s = %d %q, want %d with the one-line reason %q", r.method, r.path, c.name, code, body, want, reason)
			}
		}
	}

	// Nothing the refused requests asked for happened.
	jobs, err := authed.ListJobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].SubmissionID != "keep" {
		t.Errorf("jobs after refused requests = %+v, %v; want only keep", jobs, err)
	}
	if j, err := authed.GetJob(ctx, "keep"); err != nil || j.Status.IsTerminal() {
		t.Errorf("job keep after refused stop and delete = %+v, %v; want it still running", j, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a refused submission ran its entrypoint")
	}
	if code, _ := call(t, "GET", base+"/api/packages/gcs/_ray_pkg_sneaky.zip", "", rightBearer); code != http.StatusNotFound {
		t.Errorf("package after a refused upload: GET = %d, want 404", code)
	}
	apps, err := authed.GetServeApplications(ctx)
	if err != nil || len(apps.Applications) != 0 {
		t.Errorf("serve applications after a refused deploy = %+v, %v; want none", apps, err)
	}

	// The right token passes wherever Ray looks for it.
	for _, c := range []credential{rightBearer, rightRay, rightCookie} {
		for _, path := range []string{"/api/version", "/api/jobs/", "/api/jobs/keep", "/api/serve/applications/", "/api/v0/nodes"} {
			if code, body := call(t, "GET", base+path, "", c); code != http.StatusOK {
				t.Errorf("GET %s with %s = %d %q, want 200", path, c.name, code, body)
			}
		}
	}
	if stopped, err := authed.StopJob(ctx, "keep"); err != nil || !stopped {
		t.Errorf("StopJob with the right token = %v, %v", stopped, err)
	}

	// Every route the refused requests tried is let through with the right token, and what
	// they ask for then happens.
	for _, r := range routes {
		if code, body := call(t, r.method, base+r.path, r.body, rightBearer); code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Errorf("%s %s with the right token = %d %q, want it let through", r.method, r.path, code, body)
		}
	}
	gomega.NewWithT(t).Eventually(func() error { _, err := os.Stat(marker); return err }).
		WithTimeout(20*time.Second).WithPolling(50*time.Millisecond).Should(gomega.Succeed(), "the submission with the right token to run its entrypoint")
	if code, body := call(t, "GET", base+"/api/packages/gcs/_ray_pkg_sneaky.zip", "", rightBearer); code != http.StatusOK {
		t.Errorf("package after an upload with the right token: GET = %d %q, want 200", code, body)
	}

	// Probes carry no token.
	for _, url := range []string{base + "/api/gcs_healthz", "http://127.0.0.1:" + strconv.Itoa(n.AgentPort()) + "/api/local_raylet_healthz",
		"http://127.0.0.1:" + strconv.Itoa(n.AgentPort()) + "/api/healthz"} {
		if code, body := call(t, "GET", url, "", noToken); code != http.StatusOK || !strings.Contains(body, "success") {
			t.Errorf("GET %s without a token = %d %q, want 200 success", url, code, body)
		}
	}

	// Ray's CLI style header works through the client too.
	var he *dashboard.HTTPError
	bearer, _ := dashboard.NewClient(base, dashboard.WithBearerToken(rightToken))
	if _, err := bearer.ListJobs(ctx); err != nil {
		t.Errorf("ListJobs with WithBearerToken: %v", err)
	}
	wrong, _ := dashboard.NewClient(base, dashboard.WithBearerToken("wrong"))
	if _, err := wrong.ListJobs(ctx); !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Errorf("ListJobs with a wrong bearer token = %v, want HTTP 403", err)
	}

	// A client without the token gets the 401 as an HTTPError.
	anon, _ := dashboard.NewClient(base)
	if _, err := anon.ListJobs(ctx); !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Errorf("ListJobs without a token = %v, want HTTP 401", err)
	}
}

// TestTokenAuthOnTheGCSPort calls the control service without, with a wrong and with the
// right token: only the health check answers without it, every other method of every service
// on the port is refused, and refused writes and deletes leave no trace.
func TestTokenAuthOnTheGCSPort(t *testing.T) {
	n := startAuthHead(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(opts ...gcs.DialOption) (gcsv1.KVServiceClient, gcsv1.NodeServiceClient) {
		conn, err := gcs.Dial(n.GCSAddress(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return gcsv1.NewKVServiceClient(conn), gcsv1.NewNodeServiceClient(conn)
	}
	authedKV, _ := dial(gcs.WithAuthToken(rightToken))
	if _, err := authedKV.Put(ctx, &gcsv1.KVPutRequest{Namespace: "test", Key: "kept", Value: []byte("v")}); err != nil {
		t.Fatalf("KV Put with the right token: %v", err)
	}
	for _, c := range []struct {
		name string
		opts []gcs.DialOption
	}{{"no token", nil}, {"wrong token", []gcs.DialOption{gcs.WithAuthToken("wrong")}}} {
		kv, nodes := dial(c.opts...)
		if _, err := kv.Delete(ctx, &gcsv1.KVDeleteRequest{Namespace: "test", Key: "kept"}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("KV Delete with %s = %v, want UNAUTHENTICATED", c.name, err)
		}
		if _, err := nodes.UnregisterNode(ctx, &gcsv1.UnregisterNodeRequest{NodeId: n.NodeID(), Reason: "intruder"}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("UnregisterNode of the head with %s = %v, want UNAUTHENTICATED", c.name, err)
		}
		_, err := kv.Put(ctx, &gcsv1.KVPutRequest{Namespace: "test", Key: "sneaky", Value: []byte("x"), Overwrite: true})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("KV Put with %s = %v, want UNAUTHENTICATED", c.name, err)
		}
		if _, err := nodes.ListNodes(ctx, &gcsv1.ListNodesRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("ListNodes with %s = %v, want UNAUTHENTICATED", c.name, err)
		}
		stream, err := nodes.WatchNodes(ctx, &gcsv1.WatchNodesRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("WatchNodes with %s = %v, want UNAUTHENTICATED", c.name, err)
		}
		if _, err := nodes.RegisterNode(ctx, &gcsv1.RegisterNodeRequest{Node: &gcsv1.Node{NodeId: "intruder"}}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("RegisterNode with %s = %v, want UNAUTHENTICATED", c.name, err)
		}
		if _, err := nodes.CheckAlive(ctx, &gcsv1.CheckAliveRequest{}); err != nil {
			t.Errorf("CheckAlive (the health check) with %s = %v, want it open", c.name, err)
		}
	}

	// Every method of every service the head serves on the GCS port, the health check aside:
	// refused without the token and with a wrong one, let through (whatever it then answers to
	// an empty request) with the right one. The refusal comes before the request is read, so an
	// empty message fits every method.
	services := []grpc.ServiceDesc{gcsv1.NodeService_ServiceDesc, gcsv1.KVService_ServiceDesc, gcsv1.ProcessService_ServiceDesc,
		gcsv1.AutoscalerStateService_ServiceDesc, corev1.Scheduler_ServiceDesc, servev1.ServeControllerService_ServiceDesc}
	for _, c := range []struct {
		name    string
		opts    []gcs.DialOption
		refused bool
	}{{"no token", nil, true}, {"wrong token", []gcs.DialOption{gcs.WithAuthToken("wrong")}, true}, {"the right token", []gcs.DialOption{gcs.WithAuthToken(rightToken)}, false}} {
		conn, err := gcs.Dial(n.GCSAddress(), c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		check := func(method string, call func(context.Context) error) {
			// Streams that are let through stay open: the deadline ends them.
			callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			err := call(callCtx)
			if refused := status.Code(err) == codes.Unauthenticated; refused != c.refused {
				t.Errorf("%s with %s = %v, want refused %v", method, c.name, err, c.refused)
			}
		}
		for _, sd := range services {
			for _, m := range sd.Methods {
				method := "/" + sd.ServiceName + "/" + m.MethodName
				if method == gcsv1.NodeService_CheckAlive_FullMethodName {
					continue
				}
				check(method, func(ctx context.Context) error { return conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{}) })
			}
			for _, st := range sd.Streams {
				method := "/" + sd.ServiceName + "/" + st.StreamName
				check("stream "+method, func(ctx context.Context) error { return callStream(ctx, conn, st, method) })
			}
		}
	}

	kv, nodes := dial(gcs.WithAuthToken(rightToken))
	got, err := kv.Get(ctx, &gcsv1.KVGetRequest{Namespace: "test", Key: "sneaky"})
	if err != nil || got.Found {
		t.Errorf("KV Get of the refused write = %+v, %v; want not found", got, err)
	}
	if _, err := kv.Put(ctx, &gcsv1.KVPutRequest{Namespace: "test", Key: "k", Value: []byte("v")}); err != nil {
		t.Errorf("KV Put with the right token: %v", err)
	}
	list, err := nodes.ListNodes(ctx, &gcsv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range list.Nodes {
		if nd.NodeId == "intruder" {
			t.Error("a refused RegisterNode added a node")
		}
	}
	if len(list.Nodes) != 1 || !list.Nodes[0].IsHead || list.Nodes[0].State != gcsv1.NodeState_NODE_STATE_ALIVE {
		t.Errorf("nodes = %v, want the head only, alive after a refused UnregisterNode", list.Nodes)
	}
	if kept, err := kv.Get(ctx, &gcsv1.KVGetRequest{Namespace: "test", Key: "kept"}); err != nil || !kept.Found {
		t.Errorf("KV Get after a refused Delete = %+v, %v; want the key still there", kept, err)
	}
}

// callStream opens a stream, sends one empty message and returns the first error the stream
// reports.
func callStream(ctx context.Context, conn *grpc.ClientConn, st grpc.StreamDesc, method string) error {
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: st.StreamName, ServerStreams: st.ServerStreams, ClientStreams: st.ClientStreams}, method)
	if err != nil {
		return err
	}
	if err := s.SendMsg(&emptypb.Empty{}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(&emptypb.Empty{})
}

// TestWorkersSendTheToken: a worker with the cluster's token joins; one with a wrong token is
// refused until it gives up, naming the reason.
func TestWorkersSendTheToken(t *testing.T) {
	head := startAuthHead(t)
	worker := func(token string, reconnect time.Duration) *node.Node {
		w, err := node.Start(context.Background(), node.Config{
			GCSAddress:       head.GCSAddress(),
			NodeIP:           "127.0.0.1",
			Resources:        map[string]float64{"CPU": 1},
			TempDir:          t.TempDir(),
			ReconnectTimeout: reconnect,
			AuthToken:        token,
			Logger:           logr.Discard(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop() })
		return w
	}
	good := worker(rightToken, time.Minute)
	// The refused worker gives up after its reconnect timeout, as Ray's raylet does.
	bad := worker("wrong", 300*time.Millisecond)

	select {
	case <-bad.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a worker with a wrong token kept running")
	}
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), "invalid authentication token") {
		t.Errorf("worker with a wrong token ended with %v, want the authentication failure", err)
	}

	conn, err := gcs.Dial(head.GCSAddress(), gcs.WithAuthToken(rightToken))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	nodes := gcsv1.NewNodeServiceClient(conn)
	g := gomega.NewWithT(t)
	g.Eventually(func(g gomega.Gomega) {
		list, err := nodes.ListNodes(context.Background(), &gcsv1.ListNodesRequest{})
		g.Expect(err).NotTo(gomega.HaveOccurred())
		states := map[string]gcsv1.NodeState{}
		for _, nd := range list.Nodes {
			states[nd.NodeId] = nd.State
		}
		g.Expect(states).NotTo(gomega.HaveKey(bad.NodeID()), "the worker with a wrong token registered")
		g.Expect(states).To(gomega.HaveKeyWithValue(good.NodeID(), gcsv1.NodeState_NODE_STATE_ALIVE))
	}).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(gomega.Succeed())
}

func TestAuthTokenFromEnv(t *testing.T) {
	home := t.TempDir()
	tokenFile := filepath.Join(home, "tok")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ray"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ray", "auth_token"), []byte("from-default"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want, wantErr string
		env                 map[string]string
	}{
		{name: "unset mode is off", env: map[string]string{dashboard.EnvAuthToken: "ignored"}},
		{name: "disabled", env: map[string]string{dashboard.EnvAuthMode: "disabled", dashboard.EnvAuthToken: "ignored"}},
		{name: "env token", env: map[string]string{dashboard.EnvAuthMode: "token", dashboard.EnvAuthToken: " t1 ", dashboard.EnvAuthTokenPath: tokenFile}, want: "t1"},
		{name: "token file", env: map[string]string{dashboard.EnvAuthMode: "token", dashboard.EnvAuthTokenPath: tokenFile}, want: "from-file"},
		{name: "default file", env: map[string]string{dashboard.EnvAuthMode: "token", "HOME": home}, want: "from-default"},
		{name: "missing file", env: map[string]string{dashboard.EnvAuthMode: "token", dashboard.EnvAuthTokenPath: filepath.Join(home, "none")}, wantErr: dashboard.EnvAuthTokenPath},
		{name: "no token anywhere", env: map[string]string{dashboard.EnvAuthMode: "token", "HOME": t.TempDir()}, wantErr: "auth_token"},
		{name: "unknown mode", env: map[string]string{dashboard.EnvAuthMode: "k8s"}, wantErr: dashboard.EnvAuthMode},
		{name: "kubernetes token review", env: map[string]string{dashboard.EnvAuthMode: "token", dashboard.EnvK8sTokenAuth: "true", dashboard.EnvAuthToken: "x"}, wantErr: "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dashboard.AuthTokenFromEnv(func(k string) string { return tt.env[k] }, os.ReadFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("token = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestTokenMatches(t *testing.T) {
	for _, c := range []struct {
		presented, want string
		ok              bool
	}{{"abc", "abc", true}, {"abd", "abc", false}, {"ab", "abc", false}, {"", "abc", false}, {"abcd", "abc", false}} {
		if got := dashboard.TokenMatches(c.presented, c.want); got != c.ok {
			t.Errorf("TokenMatches(%q, %q) = %v, want %v", c.presented, c.want, got, c.ok)
		}
	}
}
