package node

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func TestDashboardHosts(t *testing.T) {
	tests := []struct{ host, bind, public string }{
		{"", "127.0.0.1", "127.0.0.1"},
		{"localhost", "127.0.0.1", "127.0.0.1"},
		{"0.0.0.0", "", "10.1.2.3"},
		{"::", "", "10.1.2.3"},
		{"10.9.9.9", "10.9.9.9", "10.9.9.9"},
	}
	for _, tt := range tests {
		if got := dashboardBindHost(tt.host); got != tt.bind {
			t.Errorf("dashboardBindHost(%q) = %q, want %q", tt.host, got, tt.bind)
		}
		if got := dashboardPublicHost(tt.host, "10.1.2.3"); got != tt.public {
			t.Errorf("dashboardPublicHost(%q) = %q, want %q", tt.host, got, tt.public)
		}
	}
}

func TestMakeSessionPointsLatestAtNewest(t *testing.T) {
	tmp := t.TempDir()
	for _, name := range []string{"session_a", "session_b"} {
		dir, err := makeSession(tmp, name)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "logs")); err != nil || !fi.IsDir() {
			t.Fatalf("%s/logs not created: %v", dir, err)
		}
	}
	target, err := os.Readlink(filepath.Join(tmp, "session_latest"))
	if err != nil || target != "session_b" {
		t.Fatalf("session_latest -> %q (err %v), want session_b", target, err)
	}
}

// TestHeadStartsAndStops starts a head in-process on free ports and checks that every component
// answers, that the dashboard address is published in the KV for RAY_ADDRESS resolution, and that
// Stop ends it cleanly.
func TestHeadStartsAndStops(t *testing.T) {
	ctx := context.Background()
	n, err := Start(ctx, Config{Head: true, IncludeDashboard: true, TempDir: t.TempDir(),
		Resources: map[string]float64{"CPU": 2}, HeartbeatPeriod: 100 * time.Millisecond, FailureThreshold: 5})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = n.Stop()
		}
	}()

	body := httpGet(t, n.DashboardURL()+"/api/gcs_healthz")
	if !strings.Contains(body, "success") {
		t.Errorf("/api/gcs_healthz = %q, want success", body)
	}
	agent := "http://127.0.0.1:" + strconv.Itoa(n.AgentPort())
	if body := httpGet(t, agent+"/api/local_raylet_healthz"); !strings.Contains(body, "success") {
		t.Errorf("agent health = %q", body)
	}

	conn, err := grpc.NewClient(n.GCSAddress(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := gcsv1.NewKVServiceClient(conn).Get(ctx, &gcsv1.KVGetRequest{Namespace: DashboardKVNamespace, Key: DashboardKVKey})
	if err != nil || !resp.Found || "http://"+string(resp.Value) != n.DashboardURL() {
		t.Errorf("dashboard KV entry = %q found=%v err=%v, want %s", resp.GetValue(), resp.GetFound(), err, n.DashboardURL())
	}
	// The head's own agent registers asynchronously.
	g := gomega.NewWithT(t)
	var nodes *gcsv1.ListNodesResponse
	g.Eventually(func() ([]*gcsv1.Node, error) {
		nodes, err = gcsv1.NewNodeServiceClient(conn).ListNodes(ctx, &gcsv1.ListNodesRequest{})
		return nodes.GetNodes(), err
	}).WithTimeout(5*time.Second).WithPolling(50*time.Millisecond).ShouldNot(gomega.BeEmpty(), "the head's node registered")
	if err != nil || len(nodes.Nodes) != 1 || !nodes.Nodes[0].IsHead || nodes.Nodes[0].ResourcesTotal["CPU"] != 2 {
		t.Errorf("node table = %v (err %v), want the head with CPU 2", nodes.GetNodes(), err)
	}

	stopped = true
	if err := n.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-n.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if _, err := http.Get(n.DashboardURL() + "/api/version"); err == nil {
		t.Error("dashboard still answers after Stop")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	// The components start listening asynchronously.
	gomega.NewWithT(t).Eventually(func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		body = string(b)
		return nil
	}).WithTimeout(5*time.Second).WithPolling(50*time.Millisecond).Should(gomega.Succeed(), "GET %s", url)
	return body
}
