package controller

import (
	"context"
	"sort"
	"time"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/autoscaling"
	"github.com/rayk8s/rayk8s/internal/serve/config"
	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	servev1 "github.com/rayk8s/rayk8s/proto/serve/v1"
)

// maxDecisions bounds the decisions kept for observability.
const maxDecisions = 20

// autoscaler is an autoscaled deployment's metrics and policy state
// (https://docs.ray.io/en/latest/serve/autoscaling-guide.html).
type autoscaler struct {
	cfg autoscaling.Config
	// routers hold each node's samples of calls in flight and queued;
	// replicas each node's samples of calls its replicas process.
	routers  *autoscaling.Window
	replicas *autoscaling.Window
	// queued is each node's latest count of calls waiting in its queue.
	queued map[string]float64
	state  autoscaling.State

	// What the last pass saw and decided, for observability.
	reading   autoscaling.Reading
	desired   int
	decisions []dashboard.ScalingDecision
	// ups and downs count the decisions taken, for the metrics port.
	ups, downs int
}

func newAutoscaler(cfg autoscaling.Config) *autoscaler {
	return &autoscaler{cfg: cfg, routers: autoscaling.NewWindow(), replicas: autoscaling.NewWindow(), queued: map[string]float64{}}
}

// staleAfter is how long a node's reports may pause before the metrics
// count as delayed: two push intervals and a margin for a slow push.
func (a *autoscaler) staleAfter() time.Duration { return 2*a.cfg.MetricsInterval + time.Second }

// applyAutoscalingTarget carries an autoscaled deployment's current target
// over a new config: an autoscaling_config change is applied in place, so
// the count moves only as far as the new bounds require.
func (d *deployment) applyAutoscalingTarget(cfg *config.Deployment, targetCapacity *float64) {
	if cfg.Autoscaling == nil || d.auto == nil || d.codeVersion == "" {
		return
	}
	lo, hi := cfg.Autoscaling.Bounds(targetCapacity)
	cfg.NumReplicas = max(lo, min(d.cfg.NumReplicas, hi))
}

// setAutoscaler installs, updates or drops the autoscaler for cfg.
func (d *deployment) setAutoscaler(cfg *config.Deployment) {
	switch {
	case cfg.Autoscaling == nil:
		d.auto = nil
	case d.auto == nil:
		d.auto = newAutoscaler(*cfg.Autoscaling)
	default:
		d.auto.cfg = *cfg.Autoscaling
	}
}

// autoscale runs the policy on the window and applies a new target.
func (d *deployment) autoscale(c *Controller, now time.Time) {
	a := d.auto
	running := servingCount(d.replicas)
	reading := a.routers.Read(now, a.cfg, a.staleAfter())
	// Replicas see every call they process, including calls of a router
	// whose reports did not arrive; the larger count is the load.
	if rp := a.replicas.Read(now, a.cfg, a.staleAfter()); rp.Total > reading.Total {
		reading.Total = rp.Total
	}
	a.reading = reading
	cur := d.cfg.NumReplicas
	dec := autoscaling.Decide(a.cfg, autoscaling.Input{Now: now, Target: cur, Running: running, Reading: reading, TargetCapacity: c.targetCapacity}, &a.state)
	a.desired = dec.Desired
	if dec.Target == cur {
		return
	}
	c.opts.Logger.Info("Autoscaling deployment", "app", d.app, "deployment", d.name, "from", cur, "to", dec.Target, "reason", dec.Reason)
	policy := "default"
	a.decisions = append(a.decisions, dashboard.ScalingDecision{
		TimestampS: float64(now.UnixMilli()) / 1000, Reason: dec.Reason, PrevNumReplicas: cur, CurrNumReplicas: dec.Target, Policy: &policy,
	})
	if len(a.decisions) > maxDecisions {
		a.decisions = a.decisions[len(a.decisions)-maxDecisions:]
	}
	if dec.Target > cur {
		a.ups++
	} else {
		a.downs++
	}
	d.cfg.NumReplicas = dec.Target
	c.dirty = true
	// A config update in progress keeps its status; otherwise the
	// deployment reports the autoscaler's move (the application stays
	// RUNNING).
	switch d.status {
	case dashboard.DeploymentStatusHealthy, dashboard.DeploymentStatusUpscaling, dashboard.DeploymentStatusDownscaling:
		if d.status != dashboard.DeploymentStatusHealthy && d.trigger != dashboard.TriggerAutoscaling {
			return
		}
		if dec.Target > cur {
			d.setStatus(dashboard.DeploymentStatusUpscaling, dashboard.TriggerAutoscaling, "")
		} else {
			d.setStatus(dashboard.DeploymentStatusDownscaling, dashboard.TriggerAutoscaling, "")
		}
		d.converging = true
	}
}

// ReportMetrics records a node's autoscaling metrics.
func (c *Controller) ReportMetrics(req *servev1.ReportMetricsRequest) {
	now := c.opts.Clock.Now()
	node := req.GetNodeId()
	coldStart := false
	c.mu.Lock()
	for _, l := range req.GetRouters() {
		d := c.autoscaled(l.GetApp(), l.GetDeployment())
		if d == nil {
			continue
		}
		d.auto.routers.Record(node, samples(now, l.GetSamples(), true)...)
		if s := latest(l.GetSamples()); s != nil {
			d.auto.queued[node] = s.GetQueued()
			if s.GetQueued() > 0 && servingCount(d.replicas) == 0 {
				coldStart = true
			}
		}
	}
	for _, l := range req.GetReplicas() {
		if d := c.autoscaled(l.GetApp(), l.GetDeployment()); d != nil {
			d.auto.replicas.Record(node, samples(now, l.GetSamples(), false)...)
		}
	}
	c.mu.Unlock()
	if coldStart {
		// Calls wait for a deployment with no replica: decide now, not at
		// the next tick.
		c.poke()
	}
}

func (c *Controller) autoscaled(app, name string) *deployment {
	a, ok := c.apps[app]
	if !ok {
		return nil
	}
	d, ok := a.deployments[name]
	if !ok || d.auto == nil || d.deleting {
		return nil
	}
	return d
}

func samples(now time.Time, in []*servev1.LoadSample, withQueued bool) []autoscaling.Sample {
	out := make([]autoscaling.Sample, 0, len(in))
	for _, s := range in {
		v := s.GetOngoing()
		if withQueued {
			v += s.GetQueued()
		}
		out = append(out, autoscaling.Sample{At: now.Add(-time.Duration(s.GetAgeMs()) * time.Millisecond), Value: v})
	}
	return out
}

func latest(in []*servev1.LoadSample) *servev1.LoadSample {
	var best *servev1.LoadSample
	for _, s := range in {
		if best == nil || s.GetAgeMs() < best.GetAgeMs() {
			best = s
		}
	}
	return best
}

// forgetNodeMetrics drops a dead node's reports: its calls died with it.
func (d *deployment) forgetNodeMetrics(nodeID string) {
	if d.auto == nil {
		return
	}
	d.auto.routers.Forget(nodeID)
	d.auto.replicas.Forget(nodeID)
	delete(d.auto.queued, nodeID)
}

// autoscalingDetail is the deployment's autoscaling_detail.
func (d *deployment) autoscalingDetail() *dashboard.DeploymentAutoscalingDetail {
	a := d.auto
	if a == nil {
		return nil
	}
	running := servingCount(d.replicas)
	status := dashboard.AutoscalingStatusStable
	switch {
	case d.cfg.NumReplicas > running:
		status = dashboard.AutoscalingStatusUpscaling
	case d.cfg.NumReplicas < running:
		status = dashboard.AutoscalingStatusDownscaling
	}
	queued := 0.0
	for _, q := range a.queued {
		queued += q
	}
	health := a.reading.Health
	if health == "" {
		health = autoscaling.MetricsUnavailable
	}
	out := &dashboard.DeploymentAutoscalingDetail{
		ScalingStatus: status,
		Decisions:     append([]dashboard.ScalingDecision{}, a.decisions...),
		Metrics: map[string]any{
			"total_requests":          a.reading.Total,
			"queued_requests":         queued,
			"target_ongoing_requests": a.cfg.TargetOngoingRequests,
			"running_replicas":        running,
			"target_replicas":         d.cfg.NumReplicas,
			"desired_replicas":        a.desired,
			"metrics_sources":         a.reading.Sources,
		},
		MetricsHealth: string(health),
		Errors:        []string{},
	}
	if msg := d.unplacedMessage(); msg != "" {
		out.Errors = append(out.Errors, msg)
	}
	return out
}

// AutoscalingObservability answers GET /api/serve/autoscaling/observability:
// application → deployment → autoscaling detail, for autoscaled deployments.
func (c *Controller) AutoscalingObservability() map[string]map[string]*dashboard.DeploymentAutoscalingDetail {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]map[string]*dashboard.DeploymentAutoscalingDetail{}
	for name, a := range c.apps {
		for dn, d := range a.deployments {
			detail := d.autoscalingDetail()
			if detail == nil {
				continue
			}
			if out[name] == nil {
				out[name] = map[string]*dashboard.DeploymentAutoscalingDetail{}
			}
			out[name][dn] = detail
		}
	}
	return out
}

// AutoscalingStats lists the autoscaled deployments' targets and loads.
func (c *Controller) AutoscalingStats() []metrics.AutoscalingStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []metrics.AutoscalingStat
	for _, a := range c.apps {
		for _, d := range a.deployments {
			if d.auto == nil {
				continue
			}
			out = append(out, metrics.AutoscalingStat{App: d.app, Deployment: d.name, Target: d.cfg.NumReplicas,
				TargetOngoingRequests: d.auto.cfg.TargetOngoingRequests, Desired: d.auto.desired, TotalRequests: d.auto.reading.Total, Upscales: d.auto.ups, Downscales: d.auto.downs})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Deployment < out[j].Deployment
	})
	return out
}

func (s *routeService) ReportMetrics(_ context.Context, req *servev1.ReportMetricsRequest) (*servev1.ReportMetricsResponse, error) {
	s.c.ReportMetrics(req)
	return &servev1.ReportMetricsResponse{}, nil
}
