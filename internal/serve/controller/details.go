package controller

import (
	"fmt"
	"strings"

	"github.com/rayk8s/rayk8s/internal/dashboard"
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
				Message:           deploymentMessage(d),
				DeploymentConfig:  d.cfg.Schema,
				TargetNumReplicas: d.cfg.NumReplicas,
				RequiredResources: d.cfg.Resources,
				Replicas:          []dashboard.ReplicaDetails{},
				AutoscalingDetail: d.autoscalingDetail(),
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

// deploymentMessage is the deployment's status message, followed by what
// keeps its replicas from starting: an autoscaling_config declared in code
// that could not be used, and replicas no node has room for.
func deploymentMessage(d *deployment) string {
	parts := []string{}
	if d.message != "" {
		parts = append(parts, d.message)
	}
	if d.cfg.AutoscalingError != "" {
		parts = append(parts, fmt.Sprintf("autoscaling_config is invalid (%s): the deployment runs a fixed %d replicas", d.cfg.AutoscalingError, d.cfg.NumReplicas))
	}
	if msg := d.unplacedMessage(); msg != "" {
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}
