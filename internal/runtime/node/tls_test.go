package node

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls/raytlstest"
	serveagent "github.com/rayk8s/rayk8s/internal/serve/agent"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	cfg.TempDir = t.TempDir()
	cfg.Resources = map[string]float64{"CPU": 1}
	cfg.HeartbeatPeriod, cfg.FailureThreshold = 100*time.Millisecond, 20
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func checkAlive(cfg *tls.Config, addr string) error {
	// Without cfg, gcs.Dial speaks plain text.
	conn, err := gcs.Dial(addr, gcs.WithTLS(cfg))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = gcsv1.NewNodeServiceClient(conn).CheckAlive(ctx, &gcsv1.CheckAliveRequest{})
	return err
}

// TestMutualTLS starts a head and a worker with certificates of one CA (RAY_USE_TLS): the worker
// registers with the head over TLS, while a plain-text peer and a peer of another CA are refused
// on the GCS port and on the agent port's node-to-node endpoints.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := raytlstest.NewCA(t, "cluster")
	headFiles := ca.Issue(t, filepath.Join(dir, "head"), []string{"127.0.0.1"}, "localhost")
	workerFiles := ca.Issue(t, filepath.Join(dir, "worker"), []string{"127.0.0.1"}, "localhost")
	stranger := raytlstest.NewCA(t, "other").Issue(t, filepath.Join(dir, "stranger"), []string{"127.0.0.1"}, "localhost")

	head := startNode(t, Config{Head: true, TLS: headFiles})
	worker := startNode(t, Config{GCSAddress: head.GCSAddress(), TLS: workerFiles})

	clientCfg, err := workerFiles.Client()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := gcs.Dial(head.GCSAddress(), gcs.WithTLS(clientCfg))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	g := gomega.NewWithT(t)
	g.Eventually(func() (map[string]bool, error) {
		resp, err := gcsv1.NewNodeServiceClient(conn).ListNodes(context.Background(), &gcsv1.ListNodesRequest{})
		ids := map[string]bool{}
		for _, n := range resp.GetNodes() {
			ids[n.GetNodeId()] = n.GetState() == gcsv1.NodeState_NODE_STATE_ALIVE
		}
		return ids, err
	}).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).Should(gomega.And(
		gomega.HaveKeyWithValue(head.NodeID(), true), gomega.HaveKeyWithValue(worker.NodeID(), true)),
		"head and worker registered over TLS")

	if err := checkAlive(nil, head.GCSAddress()); err == nil {
		t.Error("a plain-text peer reached the GCS")
	}
	strangerCfg, err := stranger.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAlive(strangerCfg, head.GCSAddress()); err == nil {
		t.Error("a peer of another CA reached the GCS")
	}

	// The worker's agent port: Serve replica calls need mutual TLS, health stays plain HTTP.
	agent := "http://127.0.0.1:" + strconv.Itoa(worker.AgentPort())
	replicaCall := serveagent.ReplicaCallURL("127.0.0.1:"+strconv.Itoa(worker.AgentPort()), "app#dep#nosuchreplica")
	resp, err := http.Post(replicaCall, "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a plain-text replica call got %d, want 403", resp.StatusCode)
	}
	if body := httpGet(t, agent+"/api/local_raylet_healthz"); body == "" {
		t.Error("the plain-text health endpoint did not answer")
	}
	resp, err = raytls.HTTPClient(clientCfg).Post(replicaCall, "application/octet-stream", nil)
	if err != nil {
		t.Fatalf("a replica call over TLS: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden || resp.ProtoMajor != 2 {
		t.Errorf("a replica call over TLS got %d %s %q, want the Serve agent's answer over HTTP/2", resp.StatusCode, resp.Proto, b)
	}
	if _, err := raytls.HTTPClient(strangerCfg).Post(replicaCall, "application/octet-stream", nil); err == nil {
		t.Error("a peer of another CA reached the worker's replica endpoint")
	}
}
