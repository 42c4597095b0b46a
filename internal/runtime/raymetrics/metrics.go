// Package raymetrics exposes a Ray node's Prometheus metrics on the metrics
// export port: cluster-wide nodes, resources and jobs by status on the head,
// the node's own resources and processes everywhere. Values are read from
// the live state at scrape time, so nothing has to be kept in sync. Serve's
// metrics (ray_serve_*, internal/serve/metrics) are registered next to
// these by the node.
package raymetrics

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Options says where the values come from. Cluster sources are nil on
// worker nodes.
type Options struct {
	// Nodes lists the cluster's nodes (head only).
	Nodes func() []*gcsv1.Node
	// Jobs lists the cluster's jobs (head only).
	Jobs func(ctx context.Context) ([]dashboard.JobDetails, error)
	// NodeResources is what this node offers.
	NodeResources map[string]float64
	// RunningProcesses counts the processes this node's agent runs.
	RunningProcesses func() int
	SessionName      string
}

var (
	nodesDesc = prometheus.NewDesc("ray_cluster_nodes",
		"Nodes in the cluster by state (labels: state).", []string{"state"}, nil)
	clusterResDesc = prometheus.NewDesc("ray_cluster_resources",
		"Logical resources of the alive nodes (labels: Name, State=total|used|available).", []string{"Name", "State"}, nil)
	jobsDesc = prometheus.NewDesc("ray_cluster_jobs",
		"Submitted jobs by status (labels: status).", []string{"status"}, nil)
	nodeResDesc = prometheus.NewDesc("ray_node_resources_total",
		"Logical resources this node offers (labels: Name).", []string{"Name"}, nil)
	nodeProcsDesc = prometheus.NewDesc("ray_node_processes",
		"Processes the node agent is running.", nil, nil)
	buildDesc = prometheus.NewDesc("ray_build_info",
		"Ray version this runtime is compatible with (labels: ray_version, session).", []string{"ray_version", "session"}, nil)
)

var jobStatuses = []dashboard.JobStatus{
	dashboard.JobStatusPending, dashboard.JobStatusRunning, dashboard.JobStatusStopped,
	dashboard.JobStatusSucceeded, dashboard.JobStatusFailed,
}

type collector struct{ opts Options }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(buildDesc, prometheus.GaugeValue, 1, dashboard.RayVersion, c.opts.SessionName)
	for _, name := range sortedKeys(c.opts.NodeResources) {
		ch <- prometheus.MustNewConstMetric(nodeResDesc, prometheus.GaugeValue, c.opts.NodeResources[name], name)
	}
	if c.opts.RunningProcesses != nil {
		ch <- prometheus.MustNewConstMetric(nodeProcsDesc, prometheus.GaugeValue, float64(c.opts.RunningProcesses()))
	}
	if c.opts.Nodes != nil {
		nodes := c.opts.Nodes()
		alive, dead := 0, 0
		for _, n := range nodes {
			if n.State == gcsv1.NodeState_NODE_STATE_ALIVE {
				alive++
			} else {
				dead++
			}
		}
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(alive), "ALIVE")
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(dead), "DEAD")
		total, avail := gcs.ClusterResources(nodes)
		for _, name := range sortedKeys(total) {
			ch <- prometheus.MustNewConstMetric(clusterResDesc, prometheus.GaugeValue, total[name], name, "total")
			ch <- prometheus.MustNewConstMetric(clusterResDesc, prometheus.GaugeValue, total[name]-avail[name], name, "used")
			ch <- prometheus.MustNewConstMetric(clusterResDesc, prometheus.GaugeValue, avail[name], name, "available")
		}
	}
	if c.opts.Jobs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		jobs, err := c.opts.Jobs(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(jobsDesc, err)
			return
		}
		counts := map[dashboard.JobStatus]int{}
		for _, j := range jobs {
			counts[j.Status]++
		}
		for _, st := range jobStatuses {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// NewRegistry returns a registry with the node's collector plus the Go and
// process collectors.
func NewRegistry(opts Options) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{opts: opts},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg at /metrics (and at /, as Ray's exporter does).
func Handler(reg *prometheus.Registry) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.Handle("/{$}", h)
	return mux
}
