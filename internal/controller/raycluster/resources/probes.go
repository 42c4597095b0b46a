package resources

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Probe settings of Ray containers.
const (
	livenessInitialDelay  = 30
	readinessInitialDelay = 10
	probePeriod           = 5
	probeSuccess          = 1
	livenessFailure       = 120
	readinessFailure      = 10
	workerProbeTimeout    = 2
	headProbeTimeout      = 5
	// rayletCheckTimeout and gcsCheckTimeout are the wget timeouts of the exec health checks,
	// KubeRay's: 2 s for the raylet, 10 s for the dashboard's GCS check, which itself waits on
	// the GCS.
	rayletCheckTimeout = 2
	gcsCheckTimeout    = 10

	healthzPath       = "/api/healthz"
	rayletHealthPath  = "api/local_raylet_healthz"
	gcsHealthPath     = "api/gcs_healthz"
	httpProbeMinMajor = 2
	httpProbeMinMinor = 53
)

// wgetCheck is a shell health check that succeeds when the endpoint answers "success".
func wgetCheck(timeout int, port int32, path string) string {
	return fmt.Sprintf("wget --tries 1 -T %d -q -O- http://localhost:%d/%s | grep success", timeout, port, path)
}

func execProbe(checks ...string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{
		Command: []string{"bash", "-c", strings.Join(checks, " && ")},
	}}
}

// useHTTPProbes reports whether the Ray version serves the unified /api/healthz endpoint on the
// dashboard agent (Ray 2.53.0 and later). Unknown or unparsable versions use exec probes.
func useHTTPProbes(rayVersion string) bool {
	major, minor, ok := parseMajorMinor(rayVersion)
	if !ok {
		return false
	}
	return major > httpProbeMinMajor || (major == httpProbeMinMajor && minor >= httpProbeMinMinor)
}

// parseMajorMinor reads "X.Y" from versions such as "2.53.0", "v2.53" or "2.53.0rc1".
func parseMajorMinor(v string) (int, int, bool) {
	parts := strings.SplitN(strings.TrimPrefix(strings.TrimSpace(v), "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	minor, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return major, minor, true
}

// probeInput is what the probes of a Ray container are computed from.
type probeInput struct {
	nodeType   rayv1.RayNodeType
	params     map[string]string // complete rayStartParams
	rayVersion string
}

// setProbes gives the Ray container liveness and readiness probes unless the user defined them.
// RayService workers get the same probes as any worker: KubeRay adds a Serve proxy check to their
// readiness, which marks a worker whose proxy drains (no local replica) NotReady and so holds the
// RayCluster out of `ready` (KubeRay users' complaint #9). Here the RayService controller keeps
// pods out of the serve Service by the ray.io/serve label, which follows proxy health instead.
func setProbes(ctr *corev1.Container, in probeInput) {
	agentPort := paramPortOr(in.params, paramDashboardAgentPort, DefaultDashboardAgentPort)
	dashboardPort := paramPortOr(in.params, paramDashboardPort, DefaultDashboardPort)
	timeout := int32(workerProbeTimeout)
	if in.nodeType == rayv1.HeadNode {
		timeout = headProbeTimeout
	}

	var handler corev1.ProbeHandler
	if useHTTPProbes(in.rayVersion) {
		handler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: healthzPath,
			Port: intstr.FromInt32(agentPort),
		}}
	} else {
		checks := []string{wgetCheck(rayletCheckTimeout, agentPort, rayletHealthPath)}
		if in.nodeType == rayv1.HeadNode {
			checks = append(checks, wgetCheck(gcsCheckTimeout, dashboardPort, gcsHealthPath))
		}
		handler = execProbe(checks...)
	}

	if ctr.LivenessProbe == nil {
		ctr.LivenessProbe = &corev1.Probe{
			ProbeHandler:        *handler.DeepCopy(),
			InitialDelaySeconds: livenessInitialDelay,
			TimeoutSeconds:      timeout,
			PeriodSeconds:       probePeriod,
			SuccessThreshold:    probeSuccess,
			FailureThreshold:    livenessFailure,
		}
	}
	if ctr.ReadinessProbe == nil {
		ctr.ReadinessProbe = &corev1.Probe{
			ProbeHandler:        *handler.DeepCopy(),
			InitialDelaySeconds: readinessInitialDelay,
			TimeoutSeconds:      timeout,
			PeriodSeconds:       probePeriod,
			SuccessThreshold:    probeSuccess,
			FailureThreshold:    readinessFailure,
		}
	}
}
