// Package podenv computes a container's environment the way a kubelet does: service variables
// (KUBERNETES_SERVICE_HOST and friends, plus the namespace's services when enableServiceLinks),
// then envFrom, then env with $(VAR) expansion, downward API fields (including status.podIP) and
// resource fields.
package podenv

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// Sources are where env values come from.
type Sources struct {
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	Services   corev1listers.ServiceLister
	// APIServerHost and APIServerPort, when set, replace the kubernetes Service's ClusterIP in
	// KUBERNETES_SERVICE_* and KUBERNETES_PORT*: the process node points in-cluster clients
	// straight at the apiserver so they work without kube-proxy.
	APIServerHost string
	APIServerPort int32
}

// Runtime holds the values only known once the pod runs.
type Runtime struct {
	PodIP, HostIP string
	// NodeAllocatable stands in for unset limits in resource fields, as on a kubelet.
	NodeAllocatable corev1.ResourceList
}

// Build returns the container's environment as KEY=VALUE strings, sorted by key.
func Build(src Sources, pod *corev1.Pod, c *corev1.Container, rt Runtime) ([]string, error) {
	env := map[string]string{}
	if err := serviceEnv(src, pod, env); err != nil {
		return nil, err
	}
	for _, from := range c.EnvFrom {
		if err := addEnvFrom(src, pod.Namespace, from, env); err != nil {
			return nil, err
		}
	}
	for _, e := range c.Env {
		v, err := value(src, pod, c, rt, e, env)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if v != nil {
			env[e.Name] = *v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

func addEnvFrom(src Sources, ns string, from corev1.EnvFromSource, env map[string]string) error {
	optional := func(p *bool) bool { return p != nil && *p }
	var data map[string]string
	switch {
	case from.ConfigMapRef != nil:
		cm, err := src.ConfigMaps.ConfigMaps(ns).Get(from.ConfigMapRef.Name)
		if apierrors.IsNotFound(err) && optional(from.ConfigMapRef.Optional) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("envFrom configmap %s: %w", from.ConfigMapRef.Name, err)
		}
		data = cm.Data
	case from.SecretRef != nil:
		s, err := src.Secrets.Secrets(ns).Get(from.SecretRef.Name)
		if apierrors.IsNotFound(err) && optional(from.SecretRef.Optional) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
		}
		data = map[string]string{}
		for k, v := range s.Data {
			data[k] = string(v)
		}
	}
	for k, v := range data {
		env[from.Prefix+k] = v
	}
	return nil
}

func value(src Sources, pod *corev1.Pod, c *corev1.Container, rt Runtime, e corev1.EnvVar, env map[string]string) (*string, error) {
	if e.ValueFrom == nil {
		v := Expand(e.Value, env)
		return &v, nil
	}
	vf := e.ValueFrom
	optional := func(p *bool) bool { return p != nil && *p }
	switch {
	case vf.FieldRef != nil:
		v, err := FieldValue(pod, vf.FieldRef.FieldPath, rt)
		return &v, err
	case vf.ResourceFieldRef != nil:
		v, err := ResourceValue(pod, c, vf.ResourceFieldRef, rt.NodeAllocatable)
		return &v, err
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		cm, err := src.ConfigMaps.ConfigMaps(pod.Namespace).Get(ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("configmap %s: %w", ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("configmap %s has no key %q", ref.Name, ref.Key)
		}
		return &v, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		s, err := src.Secrets.Secrets(pod.Namespace).Get(ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("secret %s: %w", ref.Name, err)
		}
		b, ok := s.Data[ref.Key]
		if !ok {
			if optional(ref.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("secret %s has no key %q", ref.Name, ref.Key)
		}
		v := string(b)
		return &v, nil
	}
	return nil, fmt.Errorf("unsupported valueFrom")
}

// FieldValue resolves a downward-API field path.
func FieldValue(pod *corev1.Pod, path string, rt Runtime) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return rt.HostIP, nil
	case "status.podIP", "status.podIPs":
		return rt.PodIP, nil
	}
	return "", fmt.Errorf("unsupported field path %q", path)
}

func subscript(path, field string) (string, bool) {
	rest, ok := strings.CutPrefix(path, field+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// ResourceValue resolves a resourceFieldRef; an unset limit reads as the node's allocatable.
func ResourceValue(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector, alloc corev1.ResourceList) (string, error) {
	if ref.ContainerName != "" && ref.ContainerName != c.Name {
		found := false
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == ref.ContainerName {
				c, found = &pod.Spec.Containers[i], true
			}
		}
		if !found {
			return "", fmt.Errorf("resourceFieldRef: no container %q", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	var q resource.Quantity
	switch kind {
	case "limits":
		v, ok := c.Resources.Limits[corev1.ResourceName(name)]
		if !ok {
			v = alloc[corev1.ResourceName(name)]
		}
		q = v
	case "requests":
		q = c.Resources.Requests[corev1.ResourceName(name)]
	default:
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == string(corev1.ResourceCPU) {
		v := math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
		return strconv.FormatInt(int64(v), 10), nil
	}
	v := math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	return strconv.FormatInt(int64(v), 10), nil
}

// serviceEnv adds the docker-link style variables of the kubernetes Service (always) and, with
// enableServiceLinks (the default), of every ClusterIP Service in the pod's namespace.
func serviceEnv(src Sources, pod *corev1.Pod, env map[string]string) error {
	if src.Services == nil {
		return nil
	}
	var svcs []*corev1.Service
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		list, err := src.Services.Services(pod.Namespace).List(labels.Everything())
		if err != nil {
			return err
		}
		svcs = append(svcs, list...)
	}
	if k, err := src.Services.Services(corev1.NamespaceDefault).Get("kubernetes"); err == nil {
		svcs = append(svcs, k)
	}
	for _, s := range svcs {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		isAPI := s.Namespace == corev1.NamespaceDefault && s.Name == "kubernetes"
		if s.Namespace != pod.Namespace && !isAPI {
			continue
		}
		host, ports := s.Spec.ClusterIP, s.Spec.Ports
		if s.Namespace == corev1.NamespaceDefault && s.Name == "kubernetes" && src.APIServerHost != "" {
			host = src.APIServerHost
			ports = []corev1.ServicePort{{Name: "https", Port: src.APIServerPort, Protocol: corev1.ProtocolTCP}}
		}
		addServiceVars(s.Name, host, ports, env)
	}
	return nil
}

func addServiceVars(name, host string, ports []corev1.ServicePort, env map[string]string) {
	if len(ports) == 0 {
		return
	}
	prefix := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	env[prefix+"_SERVICE_HOST"] = host
	env[prefix+"_SERVICE_PORT"] = strconv.Itoa(int(ports[0].Port))
	for i, p := range ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		if p.Name != "" {
			env[prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = strconv.Itoa(int(p.Port))
		}
		url := fmt.Sprintf("%s://%s", proto, net.JoinHostPort(host, strconv.Itoa(int(p.Port))))
		if i == 0 {
			env[prefix+"_PORT"] = url
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
		env[pp] = url
		env[pp+"_PROTO"] = proto
		env[pp+"_PORT"] = strconv.Itoa(int(p.Port))
		env[pp+"_ADDR"] = host
	}
}

// Expand replaces $(VAR) with VAR's value when defined, leaves unknown references as they are,
// and turns $$ into $, like Kubernetes' command and env expansion.
func Expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// EnvMap turns KEY=VALUE strings into a map (for expanding command and args).
func EnvMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
