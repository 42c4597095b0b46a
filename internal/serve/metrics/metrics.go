// Package metrics records Serve's Prometheus metrics under Ray Serve's names
// (ray_serve_*), for the node's metrics port: the HTTP and gRPC proxies' requests,
// errors and latency, the caller-side routers' queues, and the calls this
// node's replicas process. Values recorded at call time live in the vectors
// here; queue lengths and replica states are read from their owners at
// scrape time.
//
// Labels are bounded: application, deployment and route come from the Serve
// config (unmatched requests get empty ones, never the path), methods
// outside the standard HTTP set become "OTHER", and status codes are the
// three-digit HTTP codes (as Ray's error_code/status_code). Per-replica
// series carry the replica id as Ray's do; a replica's series are deleted
// when its process goes away (Forget), so a node exports at most one set per
// replica it currently hosts, however many rolling updates have happened.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// LatencyBucketsMS are Ray Serve's DEFAULT_LATENCY_BUCKET_MS.
var LatencyBucketsMS = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 60000, 120000, 300000, 600000}

// RouterStat is one deployment's caller-side router on this node.
type RouterStat struct {
	App, Deployment string
	// Queued calls wait for a replica; Ongoing are in flight at replicas.
	Queued, Ongoing int
}

// ReplicaStat is one replica as the controller sees it (head only).
type ReplicaStat struct {
	App, Deployment, Replica string
	// State is the replica state (RUNNING, STARTING, …).
	State string
	// Healthy: the replica is serving (RUNNING or UPDATING).
	Healthy bool
}

// AutoscalingStat is one autoscaled deployment as the controller sees it
// (head only).
type AutoscalingStat struct {
	App, Deployment string
	// Target is the replica count the controller works toward; Desired
	// what the load asks for before the policy's delays.
	Target, Desired       int
	TotalRequests         float64
	TargetOngoingRequests float64
	// Upscales and Downscales count the decisions since the controller started.
	Upscales, Downscales int
}

// Sources are read at scrape time; nil ones are skipped.
type Sources struct {
	Routers     func() []RouterStat
	Replicas    func() []ReplicaStat
	Autoscaling func() []AutoscalingStat
}

// Metrics is the Serve metrics of one node. A nil *Metrics records nothing.
type Metrics struct {
	clock clock.PassiveClock
	src   Sources

	httpRequests      *prometheus.CounterVec
	httpErrors        *prometheus.CounterVec
	httpDeployErrors  *prometheus.CounterVec
	httpLatency       *prometheus.HistogramVec
	httpOngoing       prometheus.Gauge
	routerRequests    *prometheus.CounterVec
	replicaRequests   *prometheus.CounterVec
	replicaErrors     *prometheus.CounterVec
	replicaLatency    *prometheus.HistogramVec
	replicaProcessing *prometheus.GaugeVec
	grpc              grpcVecs

	// mu guards the calls in flight per replica, so a replica forgotten
	// while calls still end on it loses its series after the last one.
	mu        sync.Mutex
	inflight  map[string]int
	forgotten map[string]bool

	children children
}

var (
	queuedDesc = prometheus.NewDesc("ray_serve_deployment_queued_queries",
		"Calls waiting in this node's router for a replica (labels: application, deployment).",
		[]string{"application", "deployment"}, nil)
	ongoingDesc = prometheus.NewDesc("ray_serve_num_ongoing_requests_at_replicas",
		"Calls this node's router has in flight at replicas (labels: application, deployment).",
		[]string{"application", "deployment"}, nil)
	healthyDesc = prometheus.NewDesc("ray_serve_deployment_replica_healthy",
		"1 for a replica that serves, 0 for one starting, recovering or stopping (head; labels: application, deployment, replica).",
		[]string{"application", "deployment", "replica"}, nil)
	autoscaleLabels = []string{"application", "deployment"}
	targetDesc      = prometheus.NewDesc("ray_serve_autoscaling_target_replicas",
		"The replica count the autoscaler works toward (head; labels: application, deployment).", autoscaleLabels, nil)
	desiredDesc = prometheus.NewDesc("ray_serve_autoscaling_desired_replicas",
		"The replica count the load asks for, before the policy's delays (head; labels: application, deployment).", autoscaleLabels, nil)
	totalRequestsDesc = prometheus.NewDesc("ray_serve_autoscaling_total_requests",
		"Ongoing and queued requests the autoscaler aggregated over the look-back period (head; labels: application, deployment).", autoscaleLabels, nil)
	targetOngoingDesc = prometheus.NewDesc("ray_serve_autoscaling_target_ongoing_requests",
		"The deployment's target_ongoing_requests (head; labels: application, deployment).", autoscaleLabels, nil)
	decisionsDesc = prometheus.NewDesc("rayk8s_serve_autoscaling_decisions_total",
		"Autoscaling decisions since the controller started (head; labels: application, deployment, direction up|down). Not a Ray metric.",
		[]string{"application", "deployment", "direction"}, nil)
	replicasDesc = prometheus.NewDesc("rayk8s_serve_deployment_replicas",
		"Replicas by state (head; labels: application, deployment, state). Not a Ray metric.",
		[]string{"application", "deployment", "state"}, nil)
)

// New returns Metrics that read time from clk (nil: the real clock).
// Register it on the node's registry.
func New(clk clock.PassiveClock, src Sources) *Metrics {
	if clk == nil {
		clk = clock.RealClock{}
	}
	httpLabels := []string{"application", "route", "method", "status_code"}
	return &Metrics{
		clock:     clk,
		src:       src,
		inflight:  map[string]int{},
		forgotten: map[string]bool{},
		children:  newChildren(),
		grpc:      newGRPCVecs(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_num_http_requests_total",
			Help: "HTTP requests the proxy answered (labels: application, route, method, status_code).",
		}, httpLabels),
		httpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_num_http_error_requests_total",
			Help: "HTTP requests the proxy answered with a status >= 400 (labels: application, route, method, error_code).",
		}, []string{"application", "route", "method", "error_code"}),
		httpDeployErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_num_deployment_http_error_requests_total",
			Help: "HTTP error requests by ingress deployment (labels: application, deployment, route, method, error_code).",
		}, []string{"application", "deployment", "route", "method", "error_code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ray_serve_http_request_latency_ms",
			Help:    "End-to-end latency of HTTP requests at the proxy in milliseconds (labels: application, route, method, status_code).",
			Buckets: LatencyBucketsMS,
		}, httpLabels),
		httpOngoing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ray_serve_num_ongoing_http_requests",
			Help: "HTTP requests the proxy is handling.",
		}),
		routerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_num_router_requests_total",
			Help: "Calls this node's routers received (labels: application, deployment, route).",
		}, []string{"application", "deployment", "route"}),
		replicaRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_deployment_request_counter_total",
			Help: "Calls this node's replicas processed (labels: application, deployment, replica, route).",
		}, []string{"application", "deployment", "replica", "route"}),
		replicaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ray_serve_deployment_error_counter_total",
			Help: "Calls this node's replicas failed (labels: application, deployment, replica, route).",
		}, []string{"application", "deployment", "replica", "route"}),
		replicaLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ray_serve_deployment_processing_latency_ms",
			Help:    "Time this node's replicas took to process a call in milliseconds (labels: application, deployment, replica, route).",
			Buckets: LatencyBucketsMS,
		}, []string{"application", "deployment", "replica", "route"}),
		replicaProcessing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ray_serve_replica_processing_queries",
			Help: "Calls this node's replicas are processing (labels: application, deployment, replica).",
		}, []string{"application", "deployment", "replica"}),
	}
}

func (m *Metrics) vecs() []prometheus.Collector {
	return append([]prometheus.Collector{m.httpRequests, m.httpErrors, m.httpDeployErrors, m.httpLatency, m.httpOngoing,
		m.routerRequests, m.replicaRequests, m.replicaErrors, m.replicaLatency, m.replicaProcessing}, m.grpc.collectors()...)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.vecs() {
		c.Describe(ch)
	}
	ch <- queuedDesc
	ch <- ongoingDesc
	ch <- healthyDesc
	ch <- replicasDesc
	for _, d := range []*prometheus.Desc{targetDesc, desiredDesc, totalRequestsDesc, targetOngoingDesc, decisionsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.vecs() {
		c.Collect(ch)
	}
	if m.src.Routers != nil {
		for _, s := range m.src.Routers() {
			ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(s.Queued), s.App, s.Deployment)
			ch <- prometheus.MustNewConstMetric(ongoingDesc, prometheus.GaugeValue, float64(s.Ongoing), s.App, s.Deployment)
		}
	}
	if m.src.Replicas != nil {
		type key struct{ app, dep, state string }
		counts := map[key]int{}
		for _, r := range m.src.Replicas() {
			v := 0.0
			if r.Healthy {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(healthyDesc, prometheus.GaugeValue, v, r.App, r.Deployment, r.Replica)
			counts[key{r.App, r.Deployment, r.State}]++
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, float64(n), k.app, k.dep, k.state)
		}
	}
	if m.src.Autoscaling != nil {
		for _, a := range m.src.Autoscaling() {
			ch <- prometheus.MustNewConstMetric(targetDesc, prometheus.GaugeValue, float64(a.Target), a.App, a.Deployment)
			ch <- prometheus.MustNewConstMetric(desiredDesc, prometheus.GaugeValue, float64(a.Desired), a.App, a.Deployment)
			ch <- prometheus.MustNewConstMetric(totalRequestsDesc, prometheus.GaugeValue, a.TotalRequests, a.App, a.Deployment)
			ch <- prometheus.MustNewConstMetric(targetOngoingDesc, prometheus.GaugeValue, a.TargetOngoingRequests, a.App, a.Deployment)
			ch <- prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue, float64(a.Upscales), a.App, a.Deployment, "up")
			ch <- prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue, float64(a.Downscales), a.App, a.Deployment, "down")
		}
	}
}

// Now is the metrics clock's time; pass it back to the recording calls.
func (m *Metrics) Now() time.Time {
	if m == nil {
		return time.Time{}
	}
	return m.clock.Now()
}

func (m *Metrics) sinceMS(start time.Time) float64 {
	return float64(m.clock.Since(start)) / float64(time.Millisecond)
}

// HTTPStarted counts a request the proxy is handling; call HTTPDone when it
// ends.
func (m *Metrics) HTTPStarted() {
	if m != nil {
		m.httpOngoing.Inc()
	}
}

// HTTPDone records a request the proxy answered with status (499: the
// client went away). app, route and deployment are empty for requests that
// matched no application; deployment is the application's ingress.
func (m *Metrics) HTTPDone(app, route, deployment, method string, status int, start time.Time) {
	if m == nil {
		return
	}
	m.httpOngoing.Dec()
	method = Method(method)
	c := m.httpChildren(httpKey{app: app, route: route, method: method, status: status})
	c.requests.Inc()
	c.latency.Observe(m.sinceMS(start))
	if status >= 400 {
		code := statusCode(status)
		m.httpErrors.WithLabelValues(app, route, method, code).Inc()
		if deployment != "" {
			m.httpDeployErrors.WithLabelValues(app, deployment, route, method, code).Inc()
		}
	}
}

// RouterRequest counts a call this node's router received.
func (m *Metrics) RouterRequest(app, deployment, route string) {
	if m != nil {
		m.routerChild(routerKey{app, deployment, route}).Inc()
	}
}

// ReplicaStarted records a call a local replica accepted; call ReplicaDone
// when it ends.
func (m *Metrics) ReplicaStarted(app, deployment, replica string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight[replica]++
	delete(m.forgotten, replica)
	m.processingLocked(replicaKey{app, deployment, replica}).Inc()
}

// ReplicasProcessing returns the calls each local replica is processing
// (replicas with none are left out), for the autoscaling reports.
func (m *Metrics) ReplicasProcessing() map[string]int {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.inflight))
	for id, n := range m.inflight {
		if n > 0 {
			out[id] = n
		}
	}
	return out
}

// ReplicaDone records the end of a call ReplicaStarted recorded; failed is
// a call that ended in an error (a user exception, a timeout).
func (m *Metrics) ReplicaDone(app, deployment, replica, route string, start time.Time, failed bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight[replica]--; m.inflight[replica] <= 0 {
		delete(m.inflight, replica)
		if m.forgotten[replica] {
			delete(m.forgotten, replica)
			m.deleteLocked(replica)
			return
		}
	}
	rk := replicaKey{app, deployment, replica}
	m.processingLocked(rk).Dec()
	c := m.replicaLocked(replicaRouteKey{rk, route})
	c.requests.Inc()
	c.latency.Observe(m.sinceMS(start))
	if failed {
		m.replicaErrors.WithLabelValues(app, deployment, replica, route).Inc()
	}
}

// Forget deletes a replica's series once its process is gone (after the
// calls still ending on it).
func (m *Metrics) Forget(replica string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight[replica] > 0 {
		m.forgotten[replica] = true
		return
	}
	m.deleteLocked(replica)
}

func (m *Metrics) deleteLocked(replica string) {
	m.forgetLocked(replica)
	l := prometheus.Labels{"replica": replica}
	m.replicaRequests.DeletePartialMatch(l)
	m.replicaErrors.DeletePartialMatch(l)
	m.replicaLatency.DeletePartialMatch(l)
	m.replicaProcessing.DeletePartialMatch(l)
}

// Method bounds an HTTP method label: the standard methods, else "OTHER".
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func statusCode(s int) string {
	if s < 100 || s > 999 {
		return "other"
	}
	return strconv.Itoa(s)
}
