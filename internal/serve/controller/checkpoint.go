package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/config"
)

// The checkpoint lives in the control service's KV, like Ray's controller
// checkpoint in the GCS.
const (
	KVNamespace   = "serve"
	checkpointKey = "serve-controller-checkpoint"
)

type checkpointState struct {
	Running        bool                         `json:"running"`
	ProxyLocation  string                       `json:"proxy_location,omitempty"`
	HTTPOptions    *dashboard.HTTPOptionsSchema `json:"http_options,omitempty"`
	GRPCOptions    *dashboard.GRPCOptionsSchema `json:"grpc_options,omitempty"`
	TargetCapacity *float64                     `json:"target_capacity,omitempty"`
	Apps           []checkpointApp              `json:"apps,omitempty"`
	Replicas       []checkpointReplica          `json:"replicas,omitempty"`
}

type checkpointApp struct {
	Raw          json.RawMessage `json:"raw"`
	Build        *buildResult    `json:"build,omitempty"`
	LastDeployed int64           `json:"last_deployed_ms"`
	Deleting     bool            `json:"deleting,omitempty"`
	// Targets are the autoscaled deployments' current targets, so a
	// restarted controller resumes where the autoscaler was.
	Targets map[string]int `json:"autoscaled_targets,omitempty"`
}

type checkpointReplica struct {
	ID          string `json:"id"`
	App         string `json:"app"`
	Deployment  string `json:"deployment"`
	CodeVersion string `json:"code_version"`
	CfgVersion  string `json:"cfg_version"`
	NodeID      string `json:"node_id"`
	NodeIP      string `json:"node_ip"`
	AgentAddr   string `json:"agent_address"`
	LogFile     string `json:"log_file"`
	PID         int    `json:"pid"`
	StartTimeMS int64  `json:"start_time_ms"`
}

func (c *Controller) snapshotLocked() checkpointState {
	st := checkpointState{Running: c.running, ProxyLocation: c.proxyLocation, HTTPOptions: c.httpOptions, GRPCOptions: c.grpcOptions, TargetCapacity: c.targetCapacity}
	for _, a := range c.apps {
		ca := checkpointApp{Raw: a.raw, Build: a.build, LastDeployed: a.lastDeployed.UnixMilli(), Deleting: a.deleting}
		for _, d := range a.deployments {
			if d.auto != nil {
				if ca.Targets == nil {
					ca.Targets = map[string]int{}
				}
				ca.Targets[d.name] = d.cfg.NumReplicas
			}
		}
		st.Apps = append(st.Apps, ca)
		for _, d := range a.deployments {
			for _, r := range d.replicas {
				if !r.placed {
					continue
				}
				st.Replicas = append(st.Replicas, checkpointReplica{
					ID: r.id, App: a.name, Deployment: d.name, CodeVersion: r.codeVersion, CfgVersion: r.cfgVersion,
					NodeID: r.nodeID, NodeIP: r.nodeIP, AgentAddr: r.agentAddr, LogFile: r.logFile, PID: r.pid, StartTimeMS: r.startTime.UnixMilli(),
				})
			}
		}
	}
	return st
}

func (c *Controller) checkpoint(ctx context.Context) error {
	if c.opts.Store == nil {
		return nil
	}
	c.mu.Lock()
	st := c.snapshotLocked()
	c.mu.Unlock()
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding the Serve checkpoint: %w", err)
	}
	if _, err := c.opts.Store.Put(ctx, KVNamespace, checkpointKey, raw, true); err != nil {
		return fmt.Errorf("writing the Serve checkpoint: %w", err)
	}
	return nil
}

// restore re-adopts a previous controller's state: applications as they
// were declared and their replicas, which are RECOVERING until they answer.
func (c *Controller) restore(ctx context.Context) error {
	if c.opts.Store == nil {
		return nil
	}
	raw, ok, err := c.opts.Store.Get(ctx, KVNamespace, checkpointKey)
	if err != nil {
		return fmt.Errorf("reading the Serve checkpoint: %w", err)
	}
	if !ok {
		return nil
	}
	var st checkpointState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decoding the Serve checkpoint: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running, c.proxyLocation, c.httpOptions, c.grpcOptions, c.targetCapacity = st.Running, st.ProxyLocation, st.HTTPOptions, st.GRPCOptions, st.TargetCapacity
	c.http = config.ResolveHTTP(st.HTTPOptions)
	for _, ca := range st.Apps {
		var spec dashboard.ServeApplicationSchema
		if err := json.Unmarshal(ca.Raw, &spec); err != nil {
			return fmt.Errorf("decoding a checkpointed application: %w", err)
		}
		if spec.Name == "" {
			spec.Name = config.DefaultAppName
		}
		a := &app{name: spec.Name, deployments: map[string]*deployment{}}
		c.apps[spec.Name] = a
		if ca.Build != nil {
			a.buildKey, a.build = buildKey(spec), ca.Build
		}
		a.update(c, spec, ca.Raw, time.UnixMilli(ca.LastDeployed))
		for name, n := range ca.Targets {
			if d, ok := a.deployments[name]; ok && d.auto != nil {
				lo, hi := d.auto.cfg.Bounds(c.targetCapacity)
				d.cfg.NumReplicas = max(lo, min(n, hi))
			}
		}
		if ca.Deleting {
			a.startDelete()
		}
	}
	for _, cr := range st.Replicas {
		a, ok := c.apps[cr.App]
		if !ok {
			continue
		}
		d, ok := a.deployments[cr.Deployment]
		if !ok {
			continue
		}
		d.replicas = append(d.replicas, &replica{
			id: cr.ID, codeVersion: cr.CodeVersion, cfgVersion: cr.CfgVersion, state: dashboard.ReplicaStateRecovering,
			nodeID: cr.NodeID, nodeIP: cr.NodeIP, agentAddr: cr.AgentAddr, logFile: cr.LogFile, pid: cr.PID,
			startTime: time.UnixMilli(cr.StartTimeMS), placed: true, up: true,
		})
	}
	c.opts.Logger.Info("Restored Serve state", "applications", len(st.Apps), "replicas", len(st.Replicas))
	return nil
}
