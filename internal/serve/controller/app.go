package controller

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/builtin"
	"github.com/rayk8s/rayk8s/internal/serve/config"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// app is one application's state.
type app struct {
	name         string
	spec         dashboard.ServeApplicationSchema
	raw          json.RawMessage
	lastDeployed time.Time
	deleting     bool

	// build is the application's code graph: from the import path for
	// built-ins, from a build process for Python.
	buildKey string
	build    *buildResult
	building *buildProcess
	// buildError is a failed build's message (app DEPLOY_FAILED).
	buildError string
	// configError is a config that does not fit the code (app DEPLOY_FAILED).
	configError string

	deployments map[string]*deployment
	ingress     string
}

// buildResult is what an application's code declares.
type buildResult struct {
	Ingress     string                       `json:"ingress"`
	Deployments []dashboard.DeploymentSchema `json:"deployments"`
}

type buildProcess struct {
	id     string
	nodeID string
	placed bool
}

func (a *app) isBuiltin() bool { return strings.HasPrefix(a.spec.ImportPath, builtin.ImportPrefix) }

// update takes a new spec for the application.
func (a *app) update(c *Controller, spec dashboard.ServeApplicationSchema, raw json.RawMessage, now time.Time) {
	a.spec, a.raw, a.lastDeployed, a.deleting = spec, raw, now, false
	key := buildKey(spec)
	if key != a.buildKey {
		a.buildKey = key
		a.build, a.buildError = nil, ""
		if a.building != nil {
			c.stopBuild(a)
		}
		if a.isBuiltin() {
			name := strings.TrimPrefix(spec.ImportPath, builtin.ImportPrefix)
			if !builtin.Known(name) {
				a.buildError = fmt.Sprintf("Deploying app '%s' failed with exception:\nUnknown built-in deployment %q; known: %s", a.name, spec.ImportPath, strings.Join(builtin.Names(), ", "))
			} else {
				a.build = &buildResult{Ingress: name, Deployments: []dashboard.DeploymentSchema{{Name: name}}}
			}
		}
	}
	a.resolve(c)
}

func buildKey(spec dashboard.ServeApplicationSchema) string {
	raw, _ := json.Marshal(map[string]any{"import_path": spec.ImportPath, "runtime_env": spec.RuntimeEnv, "args": spec.Args})
	return string(raw)
}

// resolve turns the build result and the config overrides into the target
// of every deployment.
func (a *app) resolve(c *Controller) {
	a.configError = ""
	if a.build == nil {
		return
	}
	overrides := map[string]dashboard.DeploymentSchema{}
	for _, d := range a.spec.Deployments {
		overrides[d.Name] = d
	}
	declared := map[string]bool{}
	for _, code := range a.build.Deployments {
		declared[code.Name] = true
	}
	var unknown []string
	for name := range overrides {
		if !declared[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		a.configError = fmt.Sprintf("Deploying app '%s' failed with exception:\nThe deployments %v are in the config but not in the application's code.", a.name, unknown)
		return
	}
	a.ingress = a.build.Ingress
	for _, code := range a.build.Deployments {
		merged := config.Merge(code, overrides[code.Name])
		merged.Name = code.Name
		cfg := config.Resolve(merged, a.spec.RuntimeEnv, c.targetCapacity)
		d, ok := a.deployments[code.Name]
		if !ok {
			d = &deployment{app: a.name, name: code.Name, status: dashboard.DeploymentStatusUpdating, trigger: dashboard.TriggerConfigUpdateStarted}
			a.deployments[code.Name] = d
		}
		d.setTarget(cfg, config.CodeVersion(&a.spec, &cfg), config.ReplicaConfigVersion(&cfg), a.spec, c.targetCapacity)
	}
	for name, d := range a.deployments {
		if !declared[name] {
			d.startDelete()
		}
	}
}

func (a *app) startDelete() {
	a.deleting = true
	for _, d := range a.deployments {
		d.startDelete()
	}
}

func (a *app) empty() bool {
	if a.building != nil {
		return false
	}
	for _, d := range a.deployments {
		if len(d.replicas) > 0 {
			return false
		}
	}
	return true
}

func (a *app) reconcile(c *Controller, nodes []*gcsv1.Node, now time.Time) {
	if !a.deleting && a.build == nil && a.buildError == "" && a.building == nil {
		c.startBuild(a, nodes)
	}
	for name, d := range a.deployments {
		d.reconcile(c, nodes, now)
		if d.deleting && len(d.replicas) == 0 && !a.deleting {
			delete(a.deployments, name)
		}
	}
}

// status derives the application's status, as the Serve REST API reports it
// (https://docs.ray.io/en/latest/serve/api/rest-api.html).
func (a *app) status() (dashboard.ApplicationStatus, string) {
	switch {
	case a.deleting:
		return dashboard.ApplicationStatusDeleting, ""
	case a.buildError != "":
		return dashboard.ApplicationStatusDeployFailed, a.buildError
	case a.configError != "":
		return dashboard.ApplicationStatusDeployFailed, a.configError
	case a.build == nil:
		return dashboard.ApplicationStatusDeploying, ""
	}
	var failed, unhealthy []string
	updating := false
	for _, name := range a.sortedDeployments() {
		d := a.deployments[name]
		if d.deleting {
			updating = true
			continue
		}
		switch d.status {
		case dashboard.DeploymentStatusDeployFailed:
			failed = append(failed, name)
		case dashboard.DeploymentStatusUnhealthy:
			unhealthy = append(unhealthy, name)
		case dashboard.DeploymentStatusUpdating:
			updating = true
		case dashboard.DeploymentStatusUpscaling, dashboard.DeploymentStatusDownscaling:
			if d.trigger == dashboard.TriggerConfigUpdateStarted {
				updating = true
			}
		}
	}
	switch {
	case len(failed) > 0:
		return dashboard.ApplicationStatusDeployFailed, fmt.Sprintf("Failed to update the deployments %s.", pyList(failed))
	case len(unhealthy) > 0:
		return dashboard.ApplicationStatusUnhealthy, fmt.Sprintf("The deployments %s are UNHEALTHY.", pyList(unhealthy))
	case updating:
		return dashboard.ApplicationStatusDeploying, ""
	}
	return dashboard.ApplicationStatusRunning, ""
}

func (a *app) sortedDeployments() []string {
	names := make([]string, 0, len(a.deployments))
	for n := range a.deployments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// pyList formats names as Python prints a list of strings.
func pyList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}
