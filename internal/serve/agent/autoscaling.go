package agent

import (
	"context"
	"time"

	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// Autoscaling reports: the node samples, per autoscaled deployment, what its
// routers have in flight and queued and what its replicas process, and
// sends the samples to the controller every metrics_interval_s. That is one
// small RPC per node per interval, whatever the request rate; the hot path
// only keeps the counters it keeps anyway.
const (
	// DefaultLoadSamplePeriod is how often the node samples
	// (RAY_SERVE_HANDLE_AUTOSCALING_METRIC_RECORD_INTERVAL_S in Ray).
	DefaultLoadSamplePeriod = 500 * time.Millisecond
	// maxHeldSamples bounds what a node keeps per deployment while the
	// controller cannot be reached.
	maxHeldSamples = 600
	reportTimeout  = 5 * time.Second
)

type depRef struct{ app, name string }

type heldSample struct {
	at               time.Time
	ongoing, queued  float64
	replicasOngoing  float64
	replicasReported bool
}

// loadReporter holds the samples not yet sent.
type loadReporter struct {
	held     map[depRef][]heldSample
	lastSent map[depRef]time.Time
}

// reportLoad samples and reports until ctx is done.
func (a *Agent) reportLoad(ctx context.Context) {
	lr := &loadReporter{held: map[depRef][]heldSample{}, lastSent: map[depRef]time.Time{}}
	period := a.opts.LoadSamplePeriod
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Clock.After(period):
		}
		a.sampleAndReport(ctx, lr)
	}
}

// sampleAndReport takes one sample of every autoscaled deployment and sends
// those whose interval has passed, or that have calls waiting and no replica
// (a cold start must not wait for the interval).
func (a *Agent) sampleAndReport(ctx context.Context, lr *loadReporter) {
	a.mu.Lock()
	t := a.table
	a.mu.Unlock()
	now := a.opts.Clock.Now()
	intervals := map[depRef]time.Duration{}
	replicas := map[depRef]int{}
	for _, d := range t.GetDeployments() {
		if d.AutoscalingMetricsIntervalMs > 0 {
			k := depRef{d.App, d.Name}
			intervals[k] = time.Duration(d.AutoscalingMetricsIntervalMs) * time.Millisecond
			replicas[k] = len(d.Replicas)
		}
	}
	for k := range lr.held {
		if _, ok := intervals[k]; !ok {
			delete(lr.held, k)
			delete(lr.lastSent, k)
		}
	}
	if len(intervals) == 0 {
		return
	}
	processing := map[depRef]float64{}
	for id, n := range a.opts.Metrics.ReplicasProcessing() {
		if tg, ok := a.handles.Target(id); ok {
			processing[depRef{tg.App, tg.Deployment}] += float64(n)
		}
	}
	req := &servev1.ReportMetricsRequest{NodeId: a.opts.NodeID}
	var sent []depRef
	for k, interval := range intervals {
		queued, ongoing, ok := a.handles.Load(k.app, k.name)
		if !ok {
			continue
		}
		s := heldSample{at: now, ongoing: float64(ongoing), queued: float64(queued), replicasOngoing: processing[k], replicasReported: a.opts.Metrics != nil}
		held := append(lr.held[k], s)
		if len(held) > maxHeldSamples {
			held = held[len(held)-maxHeldSamples:]
		}
		lr.held[k] = held
		coldStart := queued > 0 && replicas[k] == 0
		if !coldStart && now.Sub(lr.lastSent[k]) < interval {
			continue
		}
		routers := &servev1.DeploymentLoad{App: k.app, Deployment: k.name}
		reps := &servev1.DeploymentLoad{App: k.app, Deployment: k.name}
		for _, h := range held {
			age := now.Sub(h.at).Milliseconds()
			routers.Samples = append(routers.Samples, &servev1.LoadSample{AgeMs: age, Ongoing: h.ongoing, Queued: h.queued})
			if h.replicasReported {
				reps.Samples = append(reps.Samples, &servev1.LoadSample{AgeMs: age, Ongoing: h.replicasOngoing})
			}
		}
		req.Routers = append(req.Routers, routers)
		if len(reps.Samples) > 0 {
			req.Replicas = append(req.Replicas, reps)
		}
		sent = append(sent, k)
	}
	if len(sent) == 0 || a.client == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if _, err := a.client.ReportMetrics(rctx, req); err != nil {
		// The samples stay held and go with the next report.
		a.opts.Logger.V(1).Info("Reporting autoscaling metrics failed; keeping the samples", "reason", err.Error())
		return
	}
	for _, k := range sent {
		lr.held[k] = nil
		lr.lastSent[k] = now
	}
}
