package raymetrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

func TestHeadMetrics(t *testing.T) {
	nodes := []*gcsv1.Node{
		{State: gcsv1.NodeState_NODE_STATE_ALIVE, ResourcesTotal: map[string]float64{"CPU": 4}, ResourcesAvailable: map[string]float64{"CPU": 1}},
		{State: gcsv1.NodeState_NODE_STATE_ALIVE, ResourcesTotal: map[string]float64{"CPU": 2}, ResourcesAvailable: map[string]float64{"CPU": 2}},
		{State: gcsv1.NodeState_NODE_STATE_DEAD, ResourcesTotal: map[string]float64{"CPU": 8}},
	}
	reg := NewRegistry(Options{
		Nodes: func() []*gcsv1.Node { return nodes },
		Jobs: func(context.Context) ([]dashboard.JobDetails, error) {
			return []dashboard.JobDetails{
				{Status: dashboard.JobStatusRunning},
				{Status: dashboard.JobStatusSucceeded},
				{Status: dashboard.JobStatusSucceeded},
			}, nil
		},
		NodeResources:    map[string]float64{"CPU": 4, "memory": 1e9},
		RunningProcesses: func() int { return 2 },
		SessionName:      "session_test",
	})
	want := `
# HELP ray_cluster_jobs Submitted jobs by status (labels: status).
# TYPE ray_cluster_jobs gauge
ray_cluster_jobs{status="FAILED"} 0
ray_cluster_jobs{status="PENDING"} 0
ray_cluster_jobs{status="RUNNING"} 1
ray_cluster_jobs{status="STOPPED"} 0
ray_cluster_jobs{status="SUCCEEDED"} 2
# HELP ray_cluster_nodes Nodes in the cluster by state (labels: state).
# TYPE ray_cluster_nodes gauge
ray_cluster_nodes{state="ALIVE"} 2
ray_cluster_nodes{state="DEAD"} 1
# HELP ray_node_processes Processes the node agent is running.
# TYPE ray_node_processes gauge
ray_node_processes 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ray_cluster_jobs", "ray_cluster_nodes", "ray_node_processes"); err != nil {
		t.Error(err)
	}
	// Dead nodes' resources must not count towards the cluster's.
	if n, err := testutil.GatherAndCount(reg, "ray_cluster_resources"); err != nil || n != 3 {
		t.Errorf("ray_cluster_resources series = %d (err %v), want total/used/available for CPU", n, err)
	}
}

func TestWorkerHasNoClusterMetrics(t *testing.T) {
	reg := NewRegistry(Options{NodeResources: map[string]float64{"CPU": 1}})
	for _, name := range []string{"ray_cluster_nodes", "ray_cluster_jobs", "ray_cluster_resources"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 0 {
			t.Errorf("%s on a worker: %d series (err %v), want none", name, n, err)
		}
	}
	if n, _ := testutil.GatherAndCount(reg, "ray_node_resources_total"); n != 1 {
		t.Errorf("ray_node_resources_total series = %d, want 1", n)
	}
}

func TestJobsErrorFailsScrape(t *testing.T) {
	reg := NewRegistry(Options{Jobs: func(context.Context) ([]dashboard.JobDetails, error) {
		return nil, errors.New("kv unavailable")
	}})
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "kv unavailable") {
		t.Errorf("scrape with a failing job source: %d %q; want 500 naming the error", resp.StatusCode, body)
	}
}
