package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// TestStoppingWorkerDrainsItself stops a worker whose job ignores SIGTERM,
// so that the worker's processes take their grace period (2 s) to end, and
// checks that the head has the worker draining meanwhile: nothing new is
// placed on a node that is going away.
func TestStoppingWorkerDrainsItself(t *testing.T) {
	ctx := context.Background()
	head, err := Start(ctx, Config{Head: true, IncludeDashboard: true, AllowDriverOnWorkers: true, TempDir: t.TempDir(),
		Resources: map[string]float64{"CPU": 1}, HeartbeatPeriod: 100 * time.Millisecond, FailureThreshold: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = head.Stop() })
	worker, err := Start(ctx, Config{GCSAddress: head.GCSAddress(), TempDir: t.TempDir(),
		Resources: map[string]float64{"CPU": 1, "slow_to_stop": 1}, HeartbeatPeriod: 100 * time.Millisecond, FailureThreshold: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Stop() })

	g := gomega.NewWithT(t)
	body, _ := json.Marshal(map[string]any{"entrypoint": "trap '' TERM; sleep 60", "entrypoint_resources": map[string]float64{"slow_to_stop": 1}})
	var submitted struct {
		SubmissionID string `json:"submission_id"`
	}
	// The worker registers asynchronously; until then the job does not fit.
	g.Eventually(func() error {
		resp, err := http.Post(head.DashboardURL()+"/api/jobs/", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&submitted)
	}).WithTimeout(10 * time.Second).Should(gomega.Succeed())
	g.Eventually(func() (string, error) {
		resp, err := http.Get(head.DashboardURL() + "/api/jobs/" + submitted.SubmissionID)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var info struct {
			Status string `json:"status"`
		}
		err = json.NewDecoder(resp.Body).Decode(&info)
		return info.Status, err
	}).WithTimeout(15*time.Second).WithPolling(50*time.Millisecond).Should(gomega.Equal("RUNNING"), "the job started on the worker")

	conn, err := grpc.NewClient(head.GCSAddress(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	draining := func() (bool, error) {
		resp, err := gcsv1.NewAutoscalerStateServiceClient(conn).GetClusterState(ctx, &gcsv1.GetClusterStateRequest{})
		for _, a := range resp.GetActivity() {
			if a.NodeId == worker.NodeID() {
				return a.Draining, err
			}
		}
		return false, err
	}
	if d, err := draining(); err != nil || d {
		t.Fatalf("the running worker is draining = %v (err %v); want not", d, err)
	}
	_, err = gcsv1.NewAutoscalerStateServiceClient(conn).DrainNode(ctx, &gcsv1.DrainNodeRequest{NodeId: worker.NodeID(),
		DeadlineMs: time.Now().Add(time.Minute).UnixMilli(), Kind: gcsv1.DrainNodeReason(7)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "kind 7") {
		t.Errorf("a drain of an unknown kind: err = %v, want InvalidArgument naming the kind", err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- worker.Stop() }()
	g.Eventually(draining).WithTimeout(2*time.Second).WithPolling(20*time.Millisecond).Should(gomega.BeTrue(),
		"the stopping worker drained on the head while its processes end")
	if err := <-stopped; err != nil {
		t.Errorf("stopping the worker: %v", err)
	}
}
