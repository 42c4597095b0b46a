package resources

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Well-known "ray start" parameters and their defaults.
const (
	paramPort                = "port"
	paramAddress             = "address"
	paramDashboardHost       = "dashboard-host"
	paramDashboardPort       = "dashboard-port"
	paramMetricsExportPort   = "metrics-export-port"
	paramDashboardAgentPort  = "dashboard-agent-listen-port"
	paramBlock               = "block"
	paramNoMonitor           = "no-monitor"
	paramNumCPUs             = "num-cpus"
	paramNumGPUs             = "num-gpus"
	paramMemory              = "memory"
	paramResources           = "resources"
	paramLabels              = "labels"
	paramRedisPassword       = "redis-password"
	paramRedisUsername       = "redis-username"
	paramPlasmaDirectory     = "plasma-directory"
	defaultDashboardHost     = "0.0.0.0"
	rayStartUlimitPrefix     = "ulimit -n ${RAY_START_ULIMIT_OPEN_FILES:-65536}; "
	shellCommand             = "/bin/bash"
	redisPasswordParamValue  = "$REDIS_PASSWORD"
	redisUsernameParamValue  = "$REDIS_USERNAME"
	rayStartCommandSubstring = "ray start"
)

// alwaysValuedParams take "true"/"false" as a real value (e.g. --log-color=auto|true|false), so they
// are always rendered as --key=value.
var alwaysValuedParams = []string{"log-color", "include-dashboard", "include-log-monitor"}

// acceleratorResources maps container resource names to the Ray resource they become when the
// container asks for them, in the order they are considered.
var acceleratorResources = []struct{ k8s, ray string }{
	{"aws.amazon.com/neuroncore", "neuron_cores"},
	{"google.com/tpu", "TPU"},
}

// nvidiaMIG matches NVIDIA multi-instance GPU resources such as nvidia.com/mig-1g.5gb.
var nvidiaMIG = regexp.MustCompile(`^nvidia\.com/mig-\d+g\.\d+gb$`)

// isGPUResource reports whether a container resource counts as GPUs for Ray.
func isGPUResource(name corev1.ResourceName) bool {
	return strings.HasSuffix(string(name), "gpu") || nvidiaMIG.MatchString(string(name))
}

// rayStartInput is what the "ray start" parameters of one pod are computed from.
type rayStartInput struct {
	nodeType       rayv1.RayNodeType
	params         map[string]string // the group's rayStartParams
	groupResources map[string]string // the group's resources field
	groupLabels    map[string]string // the group's labels field
	container      corev1.ResourceRequirements
	headAddress    string // workers: "<fqdn>:<gcs port>"
	autoscaling    bool
	ft             *rayv1.GcsFaultToleranceOptions
}

// buildRayStartParams returns the complete parameter map of a pod's "ray start" command: the
// group's rayStartParams, overridden by the group's resources and labels, completed with the
// defaults the operator adds and with values derived from the Ray container's resources.
func buildRayStartParams(in rayStartInput) map[string]string {
	p := make(map[string]string, len(in.params)+8)
	for k, v := range in.params {
		p[k] = v
	}
	applyGroupResources(p, in.groupResources)
	if len(in.groupLabels) > 0 {
		keys := sortedKeys(in.groupLabels)
		pairs := make([]string, 0, len(keys))
		for _, k := range keys {
			pairs = append(pairs, k+"="+in.groupLabels[k])
		}
		p[paramLabels] = strings.Join(pairs, ",")
	}

	switch in.nodeType {
	case rayv1.WorkerNode:
		setDefault(p, paramAddress, in.headAddress)
	case rayv1.HeadNode:
		setDefault(p, paramDashboardHost, defaultDashboardHost)
		if in.autoscaling {
			// The autoscaler sidecar replaces Ray's own monitor process.
			p[paramNoMonitor] = "true"
		}
		if in.ft != nil && gcsBackend(in.ft) == rayv1.GcsBackendRedis {
			if in.ft.RedisPassword != nil {
				p[paramRedisPassword] = redisPasswordParamValue
			}
			if in.ft.RedisUsername != nil {
				p[paramRedisUsername] = redisUsernameParamValue
			}
		}
	}
	setDefault(p, paramMetricsExportPort, strconv.Itoa(DefaultMetricsPort))
	setDefault(p, paramDashboardAgentPort, strconv.Itoa(DefaultDashboardAgentPort))
	// Without --block, "ray start" daemonises and the container would exit immediately.
	p[paramBlock] = "true"

	applyContainerResources(p, in.container)
	return p
}

func setDefault(p map[string]string, key, value string) {
	if _, ok := p[key]; !ok {
		p[key] = value
	}
}

// applyGroupResources turns the group's resources field into num-cpus, memory, num-gpus and a
// resources JSON object. It overrides whatever rayStartParams said.
func applyGroupResources(p map[string]string, res map[string]string) {
	if len(res) == 0 {
		return
	}
	custom := map[string]float64{}
	for _, name := range sortedKeys(res) {
		q, err := resource.ParseQuantity(res[name])
		if err != nil {
			// The value is not a quantity; Ray would reject it too. Leave it out rather than
			// guessing.
			continue
		}
		lower := strings.ToLower(name)
		switch {
		case lower == "cpu":
			p[paramNumCPUs] = formatQuantityNumber(q)
		case lower == "memory":
			p[paramMemory] = strconv.FormatInt(q.Value(), 10)
		case strings.HasSuffix(lower, "gpu"):
			p[paramNumGPUs] = formatQuantityNumber(q)
		default:
			custom[name] = q.AsApproximateFloat64()
		}
	}
	if len(custom) > 0 {
		b, _ := json.Marshal(custom) // a map[string]float64 of finite numbers always marshals
		p[paramResources] = "'" + string(b) + "'"
	}
}

// formatQuantityNumber renders a quantity as a plain number: an integer when it is whole,
// otherwise the shortest decimal ("500m" → "0.5").
func formatQuantityNumber(q resource.Quantity) string {
	if q.MilliValue()%1000 == 0 {
		return strconv.FormatInt(q.Value(), 10)
	}
	return strconv.FormatFloat(q.AsApproximateFloat64(), 'f', -1, 64)
}

// applyContainerResources derives num-cpus, memory, num-gpus and accelerator resources from the Ray
// container's resources when the parameters do not already set them.
func applyContainerResources(p map[string]string, r corev1.ResourceRequirements) {
	if _, ok := p[paramNumCPUs]; !ok {
		if cpu, ok := r.Limits[corev1.ResourceCPU]; ok && !cpu.IsZero() {
			p[paramNumCPUs] = strconv.FormatInt(cpu.Value(), 10) // Value rounds up
		} else if cpu, ok := r.Requests[corev1.ResourceCPU]; ok && !cpu.IsZero() {
			p[paramNumCPUs] = strconv.FormatInt(cpu.Value(), 10)
		}
	}
	if _, ok := p[paramMemory]; !ok {
		if mem, ok := r.Limits[corev1.ResourceMemory]; ok && !mem.IsZero() {
			p[paramMemory] = strconv.FormatInt(mem.Value(), 10)
		}
	}
	if _, ok := p[paramNumGPUs]; !ok {
		names := make([]string, 0, len(r.Limits))
		for name := range r.Limits {
			names = append(names, string(name))
		}
		slices.Sort(names)
		for _, name := range names {
			q := r.Limits[corev1.ResourceName(name)]
			if isGPUResource(corev1.ResourceName(name)) && !q.IsZero() {
				p[paramNumGPUs] = strconv.FormatInt(q.Value(), 10)
				break
			}
		}
	}
	addAcceleratorResource(p, r.Limits)
}

// addAcceleratorResource adds the first well-known accelerator the container asks for (Neuron
// cores, TPUs) to the resources JSON, unless the JSON already names one of them. A resources
// parameter that is not plain JSON is left alone.
func addAcceleratorResource(p map[string]string, limits corev1.ResourceList) {
	var found *struct{ k8s, ray string }
	var amount int64
	for i := range acceleratorResources {
		q, ok := limits[corev1.ResourceName(acceleratorResources[i].k8s)]
		if ok && !q.IsZero() {
			found, amount = &acceleratorResources[i], q.Value()
			break
		}
	}
	if found == nil {
		return
	}
	existing := map[string]float64{}
	if raw, ok := p[paramResources]; ok {
		if err := json.Unmarshal([]byte(strings.Trim(raw, "'\"` ")), &existing); err != nil {
			return
		}
	}
	for _, a := range acceleratorResources {
		if _, ok := existing[a.ray]; ok {
			return
		}
	}
	existing[found.ray] = float64(amount)
	b, _ := json.Marshal(existing)
	p[paramResources] = "'" + string(b) + "'"
}

// renderRayStartCommand renders "ray start [--head] --k=v ..." with the keys sorted. A value of
// "true" (any case) becomes a bare --key and "false" drops the flag, except for the few flags whose
// value may legitimately be true or false.
func renderRayStartCommand(nodeType rayv1.RayNodeType, p map[string]string) string {
	parts := []string{"ray", "start"}
	if nodeType == rayv1.HeadNode {
		parts = append(parts, "--head")
	}
	for _, k := range sortedKeys(p) {
		v := p[k]
		lower := strings.ToLower(v)
		if (lower == "true" || lower == "false") && !slices.Contains(alwaysValuedParams, k) {
			if lower == "true" {
				parts = append(parts, "--"+k)
			}
			continue
		}
		parts = append(parts, "--"+k+"="+v)
	}
	return strings.Join(parts, " ")
}

// shellFlag is the bash flag used to run generated commands: -c, or -lc for a login shell.
func shellFlag(o Options) string {
	if o.EnableLoginShell {
		return "-lc"
	}
	return "-c"
}

// setRayContainerCommand makes the Ray container run the generated "ray start" command, wrapped in
// a ulimit. A user command that does not start Ray itself runs first (joined with &&). A user
// command that already contains "ray start", or the overwrite annotation, keeps the container as
// written.
func setRayContainerCommand(ctr *corev1.Container, rayStart string, overwrite bool, o Options) {
	user := strings.Join(append(slices.Clone(ctr.Command), ctr.Args...), " ")
	if overwrite || strings.Contains(user, rayStartCommandSubstring) {
		return
	}
	script := rayStartUlimitPrefix + rayStart
	if strings.TrimSpace(user) != "" {
		script = user + " && " + script
	}
	ctr.Command = []string{shellCommand, shellFlag(o), "--"}
	ctr.Args = []string{script}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
