package controller

import (
	"fmt"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/config"
	"github.com/rayk8s/rayk8s/internal/serve/metrics"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Details answers GET /api/serve/applications/
// (https://docs.ray.io/en/latest/serve/api/rest-api.html).
func (c *Controller) Details() *dashboard.ServeInstanceDetails {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &dashboard.ServeInstanceDetails{
		DeployMode:     dashboard.DeployModeMultiApp,
		Proxies:        map[string]dashboard.ProxyDetails{},
		Applications:   map[string]dashboard.ApplicationDetails{},
		TargetCapacity: c.targetCapacity,
	}
	if !c.running {
		return out
	}
	loc := c.proxyLocation
	out.ProxyLocation = &loc
	out.HTTPOptions = c.httpOptions
	out.GRPCOptions = c.grpcOptions
	nodes := c.opts.Cluster.Nodes()
	ips := map[string]string{}
	for _, n := range nodes {
		ips[n.NodeId] = n.NodeIpAddress
		if n.State != gcsv1.NodeState_NODE_STATE_ALIVE {
			continue
		}
		if loc == dashboard.ProxyLocationDisabled || loc == dashboard.ProxyLocationHeadOnly && !n.IsHead {
			continue
		}
		id, ip := n.NodeId, n.NodeIpAddress
		if n.IsHead {
			out.ControllerInfo = dashboard.ActorDetails{NodeID: &id, NodeIP: &ip, ActorName: ptr("SERVE_CONTROLLER_ACTOR")}
		}
		name := "SERVE_CONTROLLER_ACTOR:SERVE_PROXY_ACTOR-" + id
		out.Proxies[id] = dashboard.ProxyDetails{ActorDetails: dashboard.ActorDetails{NodeID: &id, NodeIP: &ip, ActorName: &name}, Status: dashboard.ProxyStatusHealthy}
	}
	for name, a := range c.apps {
		status, msg := a.status()
		ad := dashboard.ApplicationDetails{
			Name:              name,
			Status:            status,
			Message:           msg,
			LastDeployedTimeS: float64(a.lastDeployed.UnixMilli()) / 1000,
			DeployedAppConfig: a.raw,
			Source:            "declarative",
			Deployments:       map[string]dashboard.DeploymentDetails{},
		}
		if !a.spec.RoutePrefix.Set {
			ad.RoutePrefix = ptr("/")
		} else {
			ad.RoutePrefix = a.spec.RoutePrefix.Value
		}
		if a.spec.ExternalScalerEnabled != nil {
			ad.ExternalScalerEnabled = *a.spec.ExternalScalerEnabled
		}
		for dn, d := range a.deployments {
			dd := dashboard.DeploymentDetails{
				Name:              dn,
				Status:            d.status,
				StatusTrigger:     d.trigger,
				Message:           withAutoscalingNotice(d.message, d.cfg),
				DeploymentConfig:  d.cfg.Schema,
				TargetNumReplicas: d.cfg.NumReplicas,
				RequiredResources: d.cfg.Resources,
				Replicas:          []dashboard.ReplicaDetails{},
			}
			if d.deleting {
				dd.TargetNumReplicas = 0
			}
			for _, r := range d.replicas {
				rd := dashboard.ReplicaDetails{ReplicaID: r.id, State: r.state, StartTimeS: float64(r.startTime.UnixMilli()) / 1000}
				if r.placed {
					nodeID, ip := r.nodeID, ips[r.nodeID]
					actor := "SERVE_REPLICA::" + r.id
					rd.NodeID, rd.NodeIP, rd.ActorName = &nodeID, &ip, &actor
					logPath := r.logFile
					rd.LogFilePath = &logPath
				}
				if r.pid > 0 {
					pid := r.pid
					rd.PID = &pid
				}
				dd.Replicas = append(dd.Replicas, rd)
			}
			ad.Deployments[dn] = dd
		}
		out.Applications[name] = ad
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// ReplicaStats lists every replica and its state, for the head's metrics.
func (c *Controller) ReplicaStats() []metrics.ReplicaStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []metrics.ReplicaStat
	for _, a := range c.apps {
		for _, d := range a.deployments {
			for _, r := range d.replicas {
				out = append(out, metrics.ReplicaStat{App: d.app, Deployment: d.name, Replica: r.id, State: string(r.state), Healthy: r.serving()})
			}
		}
	}
	return out
}

// withAutoscalingNotice adds to msg that an autoscaling_config (or num_replicas "auto") is not
// acted on yet, so a user reading `serve status` learns the replica count is fixed instead of
// seeing the option accepted in silence.
func withAutoscalingNotice(msg string, cfg config.Deployment) string {
	if cfg.Schema.AutoscalingConfig == nil {
		return msg
	}
	notice := fmt.Sprintf("autoscaling_config is not implemented yet by this runtime: the deployment runs a fixed %d replicas", cfg.NumReplicas)
	if msg == "" {
		return notice
	}
	return msg + "; " + notice
}
