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
	// serveReadinessFailure drops a RayService worker from the serve endpoints at the first failed
	// check of its Serve proxy.
	serveReadinessFailure = 1
	// wgetTimeout is the per-request timeout of the exec health checks.
	wgetTimeout = 2

	healthzPath       = "/api/healthz"
	rayletHealthPath  = "api/local_raylet_healthz"
	gcsHealthPath     = "api/gcs_healthz"
	serveHealthPath   = "-/healthz"
	httpProbeMinMajor = 2
	httpProbeMinMinor = 53
)

// wgetCheck is a shell health check that succeeds when the endpoint answers "success".
func wgetCheck(port int32, path string) string {
	return fmt.Sprintf("wget --tries 1 -T %d -q -O- http://localhost:%d/%s | grep success", wgetTimeout, port, path)
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
	creator    rayv1.CRDType
	params     map[string]string // complete rayStartParams
	rayVersion string
}

// setProbes gives the Ray container liveness and readiness probes unless the user defined them.
// Workers of a RayService additionally report not-ready when their Serve proxy is unhealthy, so
// that they leave the serve Service endpoints.
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
		checks := []string{wgetCheck(agentPort, rayletHealthPath)}
		if in.nodeType == rayv1.HeadNode {
			checks = append(checks, wgetCheck(dashboardPort, gcsHealthPath))
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
		if in.nodeType == rayv1.WorkerNode && in.creator == rayv1.RayServiceCRD {
			servePort := containerPortOr(ctr, ServePortName, DefaultServePort)
			ctr.ReadinessProbe.ProbeHandler = execProbe(
				wgetCheck(agentPort, rayletHealthPath),
				wgetCheck(servePort, serveHealthPath),
			)
			ctr.ReadinessProbe.FailureThreshold = serveReadinessFailure
		}
	}
}
