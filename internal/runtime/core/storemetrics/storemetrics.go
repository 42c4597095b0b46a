// Package storemetrics exposes a node's object store on the metrics port
// under Ray's metric names (ray_object_store_*, ray_spill_manager_*), read
// from the store at scrape time.
package storemetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rayk8s/rayk8s/internal/runtime/core/agent"
)

var (
	memoryDesc = prometheus.NewDesc("ray_object_store_memory",
		"Bytes of objects in the node's object store by where they are (labels: Location=MMAP_SHM for memory, SPILLED for disk).",
		[]string{"Location"}, nil)
	usedDesc = prometheus.NewDesc("ray_object_store_used_memory",
		"Bytes of objects the node's object store holds in memory.", nil, nil)
	availableDesc = prometheus.NewDesc("ray_object_store_available_memory",
		"Bytes the node's object store can still hold in memory before it spills.", nil, nil)
	localObjectsDesc = prometheus.NewDesc("ray_object_store_num_local_objects",
		"Objects the node's object store holds in memory.", nil, nil)
	spilledObjectsDesc = prometheus.NewDesc("ray_spill_manager_objects",
		"Objects currently spilled to disk on this node (labels: Type=Spilled).", []string{"Type"}, nil)
	requestsDesc = prometheus.NewDesc("ray_spill_manager_request_total",
		"Objects spilled, restored (read back from disk) and failed spills since the node started (labels: Type).",
		[]string{"Type"}, nil)
	bytesDesc = prometheus.NewDesc("ray_spill_manager_objects_bytes",
		"Bytes spilled and restored since the node started (labels: Type=Spilled|Restored).", []string{"Type"}, nil)
)

// Collector reads a store's statistics at scrape time.
type Collector struct {
	stats func() agent.StoreStats
}

// New returns a Collector over stats, typically (*agent.Store).Stats.
func New(stats func() agent.StoreStats) *Collector { return &Collector{stats: stats} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{memoryDesc, usedDesc, availableDesc, localObjectsDesc, spilledObjectsDesc, requestsDesc, bytesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(memoryDesc, float64(st.MemoryBytes), "MMAP_SHM")
	gauge(memoryDesc, float64(st.SpilledBytes), "SPILLED")
	gauge(usedDesc, float64(st.MemoryBytes))
	if st.Limit > 0 {
		gauge(availableDesc, float64(max(0, st.Limit-st.MemoryBytes)))
	}
	gauge(localObjectsDesc, float64(st.MemoryObjects))
	gauge(spilledObjectsDesc, float64(st.SpilledObjects), "Spilled")
	counter(requestsDesc, float64(st.Spills), "Spilled")
	counter(requestsDesc, float64(st.Restores), "Restored")
	counter(requestsDesc, float64(st.SpillFailures), "Failed")
	counter(bytesDesc, float64(st.SpilledBytesTotal), "Spilled")
	counter(bytesDesc, float64(st.RestoredBytesTotal), "Restored")
}
