package resources

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

const serveServiceLabelSuffix = "-serve"

// headServiceLabels are the labels (and the selector) of the head Service.
func headServiceLabels(cluster string) map[string]string {
	return map[string]string{
		rayv1.RayClusterLabelKey:                cluster,
		rayv1.RayNodeTypeLabelKey:               string(rayv1.HeadNode),
		rayv1.RayIDLabelKey:                     identifier(cluster, rayv1.HeadNode),
		rayv1.KubernetesApplicationNameLabelKey: rayv1.ApplicationName,
		rayv1.KubernetesCreatedByLabelKey:       rayv1.ComponentName,
	}
}

// CreatedByOperator adds app.kubernetes.io/created-by=kuberay-operator to labels and returns them.
// KubeRay puts that label on its head Services but not on its headless worker and serve Services;
// rayk8s puts it on every Service it creates, so that the operator's cache can hold only its own
// Services (and their EndpointSlices, which copy the Service's labels). KubeRay's own labels are
// all kept, so selectors written for KubeRay's Services still match.
func CreatedByOperator(labels map[string]string) map[string]string {
	if labels == nil {
		labels = map[string]string{}
	}
	labels[rayv1.KubernetesCreatedByLabelKey] = rayv1.ComponentName
	return labels
}

// HeadServiceSelector is the selector of the head Service; the reconciler can use it to list the
// head Service too.
func HeadServiceSelector(cluster string) map[string]string { return headServiceLabels(cluster) }

// headServicePortList renders headServicePorts as Service ports sorted by name.
func headServicePortList(c *rayv1.RayCluster) []corev1.ServicePort {
	ports := headServicePorts(c)
	out := make([]corev1.ServicePort, 0, len(ports))
	for _, name := range sortedKeys(ports) {
		out = append(out, corev1.ServicePort{
			Name:        name,
			Port:        ports[name],
			TargetPort:  intstr.FromInt32(ports[name]),
			AppProtocol: ptr.To(serviceAppProtocol),
		})
	}
	return out
}

// BuildHeadService builds the head Service. By default it is headless (clusterIP None, publishing
// not-ready addresses so that workers can reach a starting head), unless the service type is set
// to something other than ClusterIP or Options.HeadClusterIPService is on. When
// headGroupSpec.headService is given it is the starting point: its selector is replaced, the
// operator's ports are appended to its ports, the operator's labels and headServiceAnnotations win
// over its own, and name and type are defaulted.
func BuildHeadService(c *rayv1.RayCluster, o Options) *corev1.Service {
	selector := headServiceLabels(c.Name)
	ports := headServicePortList(c)
	svcType := c.Spec.HeadGroupSpec.ServiceType

	if user := c.Spec.HeadGroupSpec.HeadService; user != nil {
		svc := &corev1.Service{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{
				Name:            HeadServiceName(c),
				Namespace:       c.Namespace,
				Labels:          maps.Clone(user.Labels),
				Annotations:     maps.Clone(user.Annotations),
				OwnerReferences: ownerRefs(c),
			},
			Spec: *user.Spec.DeepCopy(),
		}
		if svc.Labels == nil {
			svc.Labels = map[string]string{}
		}
		for k, v := range headServiceLabels(c.Name) {
			svc.Labels[k] = v
		}
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		for k, v := range c.Spec.HeadServiceAnnotations {
			svc.Annotations[k] = v
		}
		svc.Spec.Selector = selector
		for _, p := range ports {
			// A port the user already declared (same name or number) is not repeated: the API
			// server would reject the duplicate.
			if slices.ContainsFunc(svc.Spec.Ports, func(u corev1.ServicePort) bool { return u.Name == p.Name || u.Port == p.Port }) {
				continue
			}
			svc.Spec.Ports = append(svc.Spec.Ports, p)
		}
		if svc.Spec.Type == "" {
			svc.Spec.Type = svcType
		}
		return svc
	}

	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            HeadServiceName(c),
			Namespace:       c.Namespace,
			Labels:          headServiceLabels(c.Name),
			Annotations:     maps.Clone(c.Spec.HeadServiceAnnotations),
			OwnerReferences: ownerRefs(c),
		},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    ports,
			Type:     svcType,
		},
	}
	if (svcType == "" || svcType == corev1.ServiceTypeClusterIP) && !o.HeadClusterIPService {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
		svc.Spec.PublishNotReadyAddresses = true
	}
	return svc
}

// OwnerHeadServiceName is the name of the head Service a RayJob or RayService keeps for its current
// cluster: "<owner>-head-svc".
func OwnerHeadServiceName(owner string) string { return owner + "-" + headServiceSuffix }

// BuildOwnerHeadService builds OwnerHeadServiceName(owner): a stable name for the head of
// whichever cluster a RayJob or RayService (of the given kind) currently uses. It is cluster's
// default head Service under the owner's name, controlled by the owner, labelled with the cluster
// and the originating custom resource, and selecting cluster's head pod.
func BuildOwnerHeadService(owner metav1.Object, kind rayv1.CRDType, cluster *rayv1.RayCluster, o Options) *corev1.Service {
	named := cluster.DeepCopy()
	named.Name = owner.GetName()
	named.Spec.HeadGroupSpec.HeadService = nil
	svc := BuildHeadService(named, o)
	svc.Namespace = owner.GetNamespace()
	svc.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, rayv1.GroupVersion.WithKind(string(kind)))}
	svc.Labels[rayv1.RayClusterLabelKey] = cluster.Name
	svc.Labels[rayv1.RayOriginatedFromCRNameLabelKey] = owner.GetName()
	svc.Labels[rayv1.RayOriginatedFromCRDLabelKey] = string(kind)
	svc.Spec.Selector = HeadServiceSelector(cluster.Name)
	return svc
}

// NeedsHeadlessWorkerService reports whether some worker group runs more than one host per
// replica; only then do workers need stable DNS names.
func NeedsHeadlessWorkerService(c *rayv1.RayCluster) bool {
	return slices.ContainsFunc(c.Spec.WorkerGroupSpecs, func(g rayv1.WorkerGroupSpec) bool { return g.NumOfHosts > 1 })
}

// BuildHeadlessWorkerService builds "<cluster>-headless", which gives multi-host workers DNS
// names. It returns nil when no group has numOfHosts > 1.
func BuildHeadlessWorkerService(c *rayv1.RayCluster) *corev1.Service {
	if !NeedsHeadlessWorkerService(c) {
		return nil
	}
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            HeadlessWorkerServiceName(c),
			Namespace:       c.Namespace,
			Labels:          CreatedByOperator(map[string]string{rayv1.RayClusterHeadlessServiceLabelKey: c.Name}),
			OwnerReferences: ownerRefs(c),
		},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 WorkerSelector(c.Name),
			PublishNotReadyAddresses: true,
		},
	}
}

// ServeServiceRequested reports whether the cluster asks for a serve Service through the
// ray.io/enable-serve-service annotation.
func ServeServiceRequested(c *rayv1.RayCluster) bool { return serveServiceEnabled(c) }

// BuildServeService builds "<cluster>-serve-svc", selecting every pod of the cluster on the head's
// Serve ports (named "serve" or "serve-*"). It is an error when the head declares no such port.
func BuildServeService(c *rayv1.RayCluster) (*corev1.Service, error) {
	var ports []corev1.ServicePort
	all := headServicePorts(c)
	for _, name := range sortedKeys(all) {
		if name == ServePortName || strings.HasPrefix(name, ServePortName+"-") {
			ports = append(ports, corev1.ServicePort{Name: name, Port: all[name], TargetPort: intstr.FromInt32(all[name])})
		}
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("RayCluster %s/%s asks for a serve Service but its head container declares no port named %q or %q",
			c.Namespace, c.Name, ServePortName, ServePortName+"-*")
	}
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ServeServiceName(c),
			Namespace: c.Namespace,
			Labels: CreatedByOperator(map[string]string{
				rayv1.RayOriginatedFromCRNameLabelKey:  c.Name,
				rayv1.RayOriginatedFromCRDLabelKey:     string(rayv1.RayClusterCRD),
				rayv1.RayClusterServingServiceLabelKey: c.Name + serveServiceLabelSuffix,
			}),
			OwnerReferences: ownerRefs(c),
		},
		Spec: corev1.ServiceSpec{
			Selector: ClusterSelector(c.Name),
			Ports:    ports,
			Type:     c.Spec.HeadGroupSpec.ServiceType,
		},
	}, nil
}

// BuildIngress builds the dashboard Ingress "<cluster>-head-ingress" when enableIngress is true,
// and returns nil otherwise. The cluster's annotations are copied onto it, except
// kubernetes.io/ingress.class which becomes spec.ingressClassName.
func BuildIngress(c *rayv1.RayCluster) *networkingv1.Ingress {
	if c.Spec.HeadGroupSpec.EnableIngress == nil || !*c.Spec.HeadGroupSpec.EnableIngress {
		return nil
	}
	labels := operatorLabels(c.Name)
	labels[rayv1.RayIDLabelKey] = identifier(c.Name, rayv1.HeadNode)

	annotations := map[string]string{}
	for k, v := range c.Annotations {
		if k != rayv1.IngressClassAnnotationKey {
			annotations[k] = v
		}
	}
	var className *string
	if v, ok := c.Annotations[rayv1.IngressClassAnnotationKey]; ok {
		className = ptr.To(v)
	}

	path := "/"
	pathType := networkingv1.PathTypePrefix
	var host string
	var tls []networkingv1.IngressTLS
	if opts := c.Spec.HeadGroupSpec.IngressOptions; opts != nil {
		if opts.Path != nil && *opts.Path != "" {
			path = *opts.Path
		}
		if opts.PathType != nil && *opts.PathType != "" {
			pathType = *opts.PathType
		}
		if opts.Host != nil {
			host = *opts.Host
		}
		for _, t := range opts.TLS {
			tls = append(tls, *t.DeepCopy())
		}
	}

	// The port is the one the head Service exposes as "dashboard".
	dashboardPort := int32(DefaultDashboardPort)
	if p, ok := headServicePorts(c)[DashboardPortName]; ok {
		dashboardPort = p
	}
	return &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            IngressName(c),
			Namespace:       c.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: ownerRefs(c),
		},
		Spec: networkingv1.IngressSpec{
			IngressClassName: className,
			TLS:              tls,
			Rules: []networkingv1.IngressRule{{
				Host: host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     path,
						PathType: ptr.To(pathType),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: HeadServiceName(c),
							Port: networkingv1.ServiceBackendPort{Number: dashboardPort},
						}},
					}},
				}},
			}},
		},
	}
}
