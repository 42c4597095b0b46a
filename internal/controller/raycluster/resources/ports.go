package resources

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Default ports and port names of a Ray head. They are used for the head Service only when the
// head's Ray container declares no ports at all.
const (
	DefaultClientPort         = 10001
	DefaultGCSPort            = 6379
	DefaultDashboardPort      = 8265
	DefaultMetricsPort        = 8080
	DefaultServePort          = 8000
	DefaultDashboardAgentPort = 52365

	ClientPortName    = "client"
	GCSPortName       = "gcs-server"
	DashboardPortName = "dashboard"
	MetricsPortName   = "metrics"
	ServePortName     = "serve"
)

// serviceAppProtocol is the appProtocol of head Service ports.
const serviceAppProtocol = "tcp"

// GCSPort is the head's GCS port: rayStartParams "port" of the head group, or 6379.
func GCSPort(c *rayv1.RayCluster) int32 {
	if v, ok := c.Spec.HeadGroupSpec.RayStartParams[paramPort]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err == nil && n > 0 {
			return int32(n)
		}
	}
	return DefaultGCSPort
}

// DashboardPort is the head's dashboard port: the Ray container port named "dashboard", else
// rayStartParams "dashboard-port", else 8265.
func DashboardPort(c *rayv1.RayCluster) int32 {
	if ctr := rayContainer(&c.Spec.HeadGroupSpec.Template.Spec); ctr != nil {
		for _, p := range ctr.Ports {
			if p.Name == DashboardPortName {
				return p.ContainerPort
			}
		}
	}
	return paramPortOr(c.Spec.HeadGroupSpec.RayStartParams, paramDashboardPort, DefaultDashboardPort)
}

// paramPortOr reads a port number from rayStartParams, falling back to def when the key is missing
// or not a number.
func paramPortOr(params map[string]string, key string, def int32) int32 {
	if v, ok := params[key]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32); err == nil && n > 0 {
			return int32(n)
		}
	}
	return def
}

// headServicePorts maps port names to numbers for the head Service: every port the head's Ray
// container declares (unnamed ones become "<port>-port"), or the default set when it declares none,
// plus "metrics" when missing.
func headServicePorts(c *rayv1.RayCluster) map[string]int32 {
	ports := map[string]int32{}
	if ctr := rayContainer(&c.Spec.HeadGroupSpec.Template.Spec); ctr != nil {
		for _, p := range ctr.Ports {
			name := p.Name
			if name == "" {
				name = strconv.Itoa(int(p.ContainerPort)) + "-port"
			}
			ports[name] = p.ContainerPort
		}
	}
	if len(ports) == 0 {
		ports = map[string]int32{
			ClientPortName:    DefaultClientPort,
			GCSPortName:       DefaultGCSPort,
			DashboardPortName: DefaultDashboardPort,
			MetricsPortName:   DefaultMetricsPort,
			ServePortName:     DefaultServePort,
		}
	}
	if _, ok := ports[MetricsPortName]; !ok {
		ports[MetricsPortName] = DefaultMetricsPort
	}
	return ports
}

// ensureMetricsPort adds the metrics container port to a Ray container that has no port named
// "metrics", so that Prometheus pod monitors find it.
func ensureMetricsPort(ctr *corev1.Container) {
	for _, p := range ctr.Ports {
		if p.Name == MetricsPortName {
			return
		}
	}
	ctr.Ports = append(ctr.Ports, corev1.ContainerPort{
		Name:          MetricsPortName,
		ContainerPort: DefaultMetricsPort,
	})
}
