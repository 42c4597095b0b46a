package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/raylet"
	"github.com/rayk8s/rayk8s/internal/serve/builtin"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// Environment of replica and build processes. python/rayk8s/serve reads
// the same names.
const (
	EnvReplicaID   = "RAYK8S_SERVE_REPLICA_ID"
	EnvApp         = "RAYK8S_SERVE_APP"
	EnvDeployment  = "RAYK8S_SERVE_DEPLOYMENT"
	EnvImportPath  = "RAYK8S_SERVE_IMPORT_PATH"
	EnvAppArgs     = "RAYK8S_SERVE_APP_ARGS"
	EnvConfig      = "RAYK8S_SERVE_REPLICA_CONFIG"
	EnvPyModules   = "RAYK8S_SERVE_PY_MODULES"
	BuildResultTag = "RAYK8S_SERVE_BUILD_RESULT "
)

// ReplicaConfig is the replica's initial config (EnvConfig); later changes
// arrive through reconfigure calls.
type ReplicaConfig struct {
	UserConfig                json.RawMessage `json:"user_config"`
	MaxOngoingRequests        int             `json:"max_ongoing_requests"`
	GracefulShutdownWaitLoopS float64         `json:"graceful_shutdown_wait_loop_s"`
	// Deployment is the deployment's options as code and config set them,
	// so a Python replica finds its class by name.
	Deployment dashboard.DeploymentSchema `json:"deployment"`
}

// runtimeEnv splits a runtime_env into what a ProcessSpec carries.
func runtimeEnv(re map[string]any) (workingDir string, env map[string]string, pyModules []string, err error) {
	env = map[string]string{}
	if wd, ok := re["working_dir"].(string); ok {
		workingDir = wd
	}
	if vars, ok := re["env_vars"].(map[string]any); ok {
		for k, v := range vars {
			s, ok := v.(string)
			if !ok {
				return "", nil, nil, fmt.Errorf("runtime_env.env_vars[%s] is not a string", k)
			}
			env[k] = s
		}
	}
	if mods, ok := re["py_modules"].([]any); ok {
		for _, m := range mods {
			if s, ok := m.(string); ok {
				pyModules = append(pyModules, s)
			}
		}
	}
	return workingDir, env, pyModules, nil
}

func (c *Controller) replicaSpec(d *deployment, r *replica) (*gcsv1.ProcessSpec, error) {
	wd, env, pyModules, err := runtimeEnv(d.cfg.RuntimeEnv)
	if err != nil {
		return nil, err
	}
	args, err := json.Marshal(d.appSpec.Args)
	if err != nil {
		return nil, fmt.Errorf("encoding args: %w", err)
	}
	cfg, err := json.Marshal(ReplicaConfig{
		UserConfig:                d.cfg.UserConfig,
		MaxOngoingRequests:        d.cfg.MaxOngoingRequests,
		GracefulShutdownWaitLoopS: d.cfg.GracefulShutdownWaitLoop.Seconds(),
		Deployment:                d.cfg.Schema,
	})
	if err != nil {
		return nil, fmt.Errorf("encoding replica config: %w", err)
	}
	env[EnvReplicaID] = r.id
	env[EnvApp] = d.app
	env[EnvDeployment] = d.name
	env[EnvImportPath] = d.appSpec.ImportPath
	env[EnvAppArgs] = string(args)
	env[EnvConfig] = string(cfg)
	env["RAY_ADDRESS"] = c.opts.GCSAddress
	env["PYTHONUNBUFFERED"] = "1"
	if len(pyModules) > 0 {
		env[EnvPyModules] = strings.Join(pyModules, string(rune(0x1f)))
	}
	var argv []string
	if strings.HasPrefix(d.appSpec.ImportPath, builtin.ImportPrefix) {
		argv = []string{raylet.SelfArgv0, "serve-replica"}
	} else {
		argv = []string{c.opts.Python, "-m", "rayk8s.serve._replica"}
	}
	// Summed in milliseconds: two durations of up to the validated maximum
	// each would overflow as a time.Duration.
	graceMs := d.cfg.GracefulShutdownTimeout.Milliseconds() + d.cfg.GracefulShutdownWaitLoop.Milliseconds()
	return &gcsv1.ProcessSpec{
		ProcessId:         r.id,
		Kind:              ReplicaKind,
		Argv:              argv,
		Env:               env,
		WorkingDir:        wd,
		LogFile:           r.logFile,
		Resources:         d.cfg.Resources,
		StopGracePeriodMs: graceMs,
	}, nil
}

// replicasPerNode counts every placed replica per node, for spreading.
func (c *Controller) replicasPerNode() map[string]int {
	out := map[string]int{}
	for _, a := range c.apps {
		for _, d := range a.deployments {
			for _, r := range d.replicas {
				if r.placed {
					out[r.nodeID]++
				}
			}
		}
	}
	return out
}

func (c *Controller) findReplica(id string) (*deployment, *replica) {
	for _, a := range c.apps {
		for _, d := range a.deployments {
			if r := d.find(id); r != nil {
				return d, r
			}
		}
	}
	return nil, nil
}

func (c *Controller) onReplicaEvent(nodeID string, st *gcsv1.ProcessStatus) {
	id := st.GetSpec().GetProcessId()
	c.enqueue(func() {
		d, r := c.findReplica(id)
		if r == nil {
			// A replica the controller forgot (deleted app): make sure it
			// does not linger.
			if st.State == gcsv1.ProcessState_PROCESS_STATE_RUNNING {
				_ = c.opts.Cluster.StopProcess(nodeID, id, 0)
			}
			return
		}
		d.processEvent(c, r, st)
	})
}

// failureMessage extracts the error from a failed process's log tail: the
// last Python traceback, else the tail itself.
func failureMessage(st *gcsv1.ProcessStatus) string {
	tail := strings.TrimSpace(st.LogTail)
	if i := strings.LastIndex(tail, "Traceback (most recent call last)"); i >= 0 {
		tail = tail[i:]
	} else if len(tail) > 4000 {
		tail = tail[len(tail)-4000:]
	}
	if st.Message != "" {
		if tail != "" {
			return st.Message + "\n" + tail
		}
		return st.Message
	}
	if tail == "" {
		return fmt.Sprintf("The replica process exited with code %d.", st.ExitCode)
	}
	return tail
}

// startBuild runs the Python import of an application in a process on the
// head, which prints the deployments its graph declares.
func (c *Controller) startBuild(a *app, nodes []*gcsv1.Node) {
	wd, env, pyModules, err := runtimeEnv(a.spec.RuntimeEnv)
	if err != nil {
		a.buildError = fmt.Sprintf("Deploying app '%s' failed with exception:\n%v", a.name, err)
		return
	}
	args, _ := json.Marshal(a.spec.Args)
	env[EnvImportPath] = a.spec.ImportPath
	env[EnvAppArgs] = string(args)
	env[EnvApp] = a.name
	env["PYTHONUNBUFFERED"] = "1"
	if len(pyModules) > 0 {
		env[EnvPyModules] = strings.Join(pyModules, string(rune(0x1f)))
	}
	id := fmt.Sprintf("serve_build:%s:%d", a.name, c.opts.Clock.Now().UnixNano())
	spec := &gcsv1.ProcessSpec{
		ProcessId:  id,
		Kind:       BuildKind,
		Argv:       []string{c.opts.Python, "-m", "rayk8s.serve._build"},
		Env:        env,
		WorkingDir: wd,
		LogFile:    "serve_build_" + safeName(a.name) + ".log",
	}
	node, err := c.opts.Cluster.PlaceProcess(gcs.Placement{Spec: spec, HeadOnly: true})
	if err != nil {
		if !errors.Is(err, gcs.ErrNoCapacity) {
			a.buildError = fmt.Sprintf("Deploying app '%s' failed with exception:\n%v", a.name, err)
		}
		return
	}
	c.opts.Logger.Info("Building application", "app", a.name, "importPath", a.spec.ImportPath, "nodeID", node.NodeId)
	a.building = &buildProcess{id: id, nodeID: node.NodeId, placed: true}
}

func (c *Controller) stopBuild(a *app) {
	_ = c.opts.Cluster.StopProcess(a.building.nodeID, a.building.id, 0)
	a.building = nil
}

func (c *Controller) onBuildEvent(_ string, st *gcsv1.ProcessStatus) {
	if st.State == gcsv1.ProcessState_PROCESS_STATE_RUNNING {
		return
	}
	id := st.GetSpec().GetProcessId()
	c.enqueue(func() {
		for _, a := range c.apps {
			if a.building == nil || a.building.id != id {
				continue
			}
			a.building = nil
			if a.deleting {
				return
			}
			res, err := parseBuild(st)
			if err != nil {
				a.buildError = fmt.Sprintf("Deploying app '%s' failed with exception:\n%s", a.name, err.Error())
				c.opts.Logger.Info("Building application failed", "app", a.name)
				return
			}
			a.build = res
			a.resolve(c)
			c.dirty = true
			return
		}
	})
}

func parseBuild(st *gcsv1.ProcessStatus) (*buildResult, error) {
	tail := st.LogTail
	if i := strings.LastIndex(tail, BuildResultTag); i >= 0 && st.ExitCode == 0 {
		line := tail[i+len(BuildResultTag):]
		if j := strings.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		var res buildResult
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, fmt.Errorf("decoding the build result: %w", err)
		}
		if res.Ingress == "" || len(res.Deployments) == 0 {
			return nil, errors.New("the import path did not resolve to an application with deployments")
		}
		return &res, nil
	}
	return nil, errors.New(failureMessage(st))
}
