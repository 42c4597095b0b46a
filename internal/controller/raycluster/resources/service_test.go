package resources

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func svcPort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(port), AppProtocol: ptr.To("tcp")}
}

func TestBuildHeadService(t *testing.T) {
	defaultPorts := []corev1.ServicePort{
		svcPort("client", 10001), svcPort("dashboard", 8265), svcPort("gcs-server", 6379), svcPort("metrics", 8080), svcPort("serve", 8000),
	}
	tests := []struct {
		name         string
		mutate       func(*rayv1.RayCluster)
		opts         func(*Options)
		wantType     corev1.ServiceType
		wantHeadless bool
		wantPorts    []corev1.ServicePort
	}{
		{name: "no container ports: default ports, headless", wantHeadless: true, wantPorts: defaultPorts},
		{
			name: "declared ports, sorted, unnamed named after the number, metrics appended",
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{
					{Name: "gcs-server", ContainerPort: 6379}, {ContainerPort: 7777}, {Name: "dashboard", ContainerPort: 8265},
				}
			},
			wantHeadless: true,
			wantPorts:    []corev1.ServicePort{svcPort("7777-port", 7777), svcPort("dashboard", 8265), svcPort("gcs-server", 6379), svcPort("metrics", 8080)},
		},
		{
			name: "declared metrics port is used",
			mutate: func(c *rayv1.RayCluster) {
				c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9000}}
			},
			wantHeadless: true,
			wantPorts:    []corev1.ServicePort{svcPort("metrics", 9000)},
		},
		{
			name:         "explicit ClusterIP stays headless",
			mutate:       func(c *rayv1.RayCluster) { c.Spec.HeadGroupSpec.ServiceType = corev1.ServiceTypeClusterIP },
			wantType:     corev1.ServiceTypeClusterIP,
			wantHeadless: true,
			wantPorts:    defaultPorts,
		},
		{
			name:      "operator option gives a cluster IP",
			opts:      func(o *Options) { o.HeadClusterIPService = true },
			wantPorts: defaultPorts,
		},
		{
			name:      "NodePort",
			mutate:    func(c *rayv1.RayCluster) { c.Spec.HeadGroupSpec.ServiceType = corev1.ServiceTypeNodePort },
			wantType:  corev1.ServiceTypeNodePort,
			wantPorts: defaultPorts,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster()
			c.Spec.HeadServiceAnnotations = map[string]string{"a": "b"}
			if tt.mutate != nil {
				tt.mutate(c)
			}
			o := testOptions()
			if tt.opts != nil {
				tt.opts(&o)
			}
			svc := BuildHeadService(c, o)
			want := headServiceLabels("rc")
			if diff := cmp.Diff(want, svc.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, svc.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if svc.Name != "rc-head-svc" || svc.Namespace != "ns" || svc.Annotations["a"] != "b" || len(svc.OwnerReferences) != 1 {
				t.Errorf("metadata = %+v", svc.ObjectMeta)
			}
			if svc.Spec.Type != tt.wantType {
				t.Errorf("type = %q, want %q", svc.Spec.Type, tt.wantType)
			}
			headless := svc.Spec.ClusterIP == corev1.ClusterIPNone && svc.Spec.PublishNotReadyAddresses
			if headless != tt.wantHeadless {
				t.Errorf("headless = %v (clusterIP %q, publishNotReady %v)", headless, svc.Spec.ClusterIP, svc.Spec.PublishNotReadyAddresses)
			}
			if diff := cmp.Diff(tt.wantPorts, svc.Spec.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildHeadServiceOverride(t *testing.T) {
	c := testCluster()
	c.Spec.HeadGroupSpec.ServiceType = corev1.ServiceTypeNodePort
	c.Spec.HeadServiceAnnotations = map[string]string{"shared": "from-spec", "extra": "1"}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{Name: "gcs-server", ContainerPort: 6379}, {Name: "dashboard", ContainerPort: 8265},
	}
	c.Spec.HeadGroupSpec.HeadService = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "custom",
			Namespace:   "elsewhere",
			Labels:      map[string]string{"mine": "x", rayv1.RayClusterLabelKey: "spoofed"},
			Annotations: map[string]string{"shared": "from-service", "own": "2"},
		},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "other"},
			Ports:    []corev1.ServicePort{{Name: "custom", Port: 12345}, {Name: "dash2", Port: 8265}},
		},
	}
	svc := BuildHeadService(c, testOptions())
	if svc.Name != "custom" || svc.Namespace != "ns" {
		t.Errorf("name/namespace = %s/%s", svc.Namespace, svc.Name)
	}
	wantLabels := headServiceLabels("rc")
	wantLabels["mine"] = "x"
	if diff := cmp.Diff(wantLabels, svc.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"shared": "from-spec", "extra": "1", "own": "2"}, svc.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(headServiceLabels("rc"), svc.Spec.Selector); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	wantPorts := []corev1.ServicePort{{Name: "custom", Port: 12345}, {Name: "dash2", Port: 8265}, svcPort("gcs-server", 6379), svcPort("metrics", 8080)}
	if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.ClusterIP != "" {
		t.Errorf("type = %q clusterIP = %q", svc.Spec.Type, svc.Spec.ClusterIP)
	}
	if got := HeadServiceName(c); got != "custom" {
		t.Errorf("HeadServiceName = %q", got)
	}
	if got := HeadServiceFQDN(c, testOptions()); got != "custom.ns.svc.cluster.local" {
		t.Errorf("HeadServiceFQDN = %q", got)
	}

	c.Spec.HeadGroupSpec.HeadService.Spec.Type = corev1.ServiceTypeLoadBalancer
	c.Spec.HeadGroupSpec.HeadService.Name = ""
	svc = BuildHeadService(c, testOptions())
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Name != "rc-head-svc" {
		t.Errorf("type %q name %q: user type must win and the name default", svc.Spec.Type, svc.Name)
	}
}

func TestBuildHeadlessWorkerService(t *testing.T) {
	c := testCluster()
	if svc := BuildHeadlessWorkerService(c); svc != nil {
		t.Errorf("headless service built for single-host groups: %+v", svc)
	}
	c.Spec.WorkerGroupSpecs = append(c.Spec.WorkerGroupSpecs, rayv1.WorkerGroupSpec{GroupName: "tpu", NumOfHosts: 4})
	svc := BuildHeadlessWorkerService(c)
	if svc == nil {
		t.Fatal("no headless service for a multi-host group")
	}
	if svc.Name != "rc-headless" || svc.Namespace != "ns" || svc.Labels[rayv1.RayClusterHeadlessServiceLabelKey] != "rc" ||
		svc.Labels[rayv1.KubernetesCreatedByLabelKey] != rayv1.ComponentName {
		t.Errorf("metadata = %+v", svc.ObjectMeta)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Errorf("spec = %+v", svc.Spec)
	}
	if diff := cmp.Diff(map[string]string{rayv1.RayClusterLabelKey: "rc", rayv1.RayNodeTypeLabelKey: "worker"}, svc.Spec.Selector); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
}

func TestBuildServeService(t *testing.T) {
	c := testCluster()
	c.Spec.HeadGroupSpec.ServiceType = corev1.ServiceTypeLoadBalancer
	svc, err := BuildServeService(c) // default ports include serve 8000
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		rayv1.RayOriginatedFromCRNameLabelKey: "rc", rayv1.RayOriginatedFromCRDLabelKey: "RayCluster", rayv1.RayClusterServingServiceLabelKey: "rc-serve",
		// KubeRay's serve Service lacks it; the operator's cache selects on it.
		rayv1.KubernetesCreatedByLabelKey: rayv1.ComponentName,
	}
	if diff := cmp.Diff(wantLabels, svc.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if svc.Name != "rc-serve-svc" || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("name %q type %q", svc.Name, svc.Spec.Type)
	}
	if diff := cmp.Diff(map[string]string{rayv1.RayClusterLabelKey: "rc"}, svc.Spec.Selector); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.ServicePort{{Name: "serve", Port: 8000, TargetPort: intstr.FromInt32(8000)}}, svc.Spec.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}

	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{Name: "serve", ContainerPort: 8000}, {Name: "serve-grpc", ContainerPort: 9000}, {Name: "server", ContainerPort: 1}, {Name: "dashboard", ContainerPort: 8265},
	}
	svc, err = BuildServeService(c)
	if err != nil {
		t.Fatal(err)
	}
	wantPorts := []corev1.ServicePort{{Name: "serve", Port: 8000, TargetPort: intstr.FromInt32(8000)}, {Name: "serve-grpc", Port: 9000, TargetPort: intstr.FromInt32(9000)}}
	if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}

	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "dashboard", ContainerPort: 8265}}
	if _, err := BuildServeService(c); err == nil || !strings.Contains(err.Error(), "serve") {
		t.Errorf("err = %v, want an error about the missing serve port", err)
	}
}

func TestBuildIngress(t *testing.T) {
	c := testCluster()
	if BuildIngress(c) != nil {
		t.Errorf("ingress built without enableIngress")
	}
	c.Spec.HeadGroupSpec.EnableIngress = ptr.To(false)
	if BuildIngress(c) != nil {
		t.Errorf("ingress built with enableIngress false")
	}
	c.Spec.HeadGroupSpec.EnableIngress = ptr.To(true)
	c.Annotations = map[string]string{"kubernetes.io/ingress.class": "nginx", "nginx.ingress.kubernetes.io/rewrite-target": "/$1"}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "dashboard", ContainerPort: 9265}}

	ing := BuildIngress(c)
	if ing.Name != "rc-head-ingress" || ing.Namespace != "ns" || len(ing.OwnerReferences) != 1 {
		t.Errorf("metadata = %+v", ing.ObjectMeta)
	}
	wantLabels := map[string]string{
		rayv1.RayClusterLabelKey: "rc", rayv1.RayIDLabelKey: "rc-head",
		rayv1.KubernetesApplicationNameLabelKey: "kuberay", rayv1.KubernetesCreatedByLabelKey: "kuberay-operator",
	}
	if diff := cmp.Diff(wantLabels, ing.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"nginx.ingress.kubernetes.io/rewrite-target": "/$1"}, ing.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	want := networkingv1.IngressSpec{
		IngressClassName: ptr.To("nginx"),
		Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "rc-head-svc", Port: networkingv1.ServiceBackendPort{Number: 9265},
				}},
			}},
		}}}},
	}
	if diff := cmp.Diff(want, ing.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}

	c.Spec.HeadGroupSpec.IngressOptions = &rayv1.IngressOptions{
		Host: ptr.To("ray.example.com"), Path: ptr.To("/ray"), PathType: ptr.To(networkingv1.PathTypeExact),
		TLS: []networkingv1.IngressTLS{{Hosts: []string{"ray.example.com"}, SecretName: "tls"}},
	}
	ing = BuildIngress(c)
	rule := ing.Spec.Rules[0]
	if rule.Host != "ray.example.com" || rule.HTTP.Paths[0].Path != "/ray" || *rule.HTTP.Paths[0].PathType != networkingv1.PathTypeExact {
		t.Errorf("rule = %+v", rule)
	}
	if diff := cmp.Diff(c.Spec.HeadGroupSpec.IngressOptions.TLS, ing.Spec.TLS); diff != "" {
		t.Errorf("tls (-want +got):\n%s", diff)
	}
}

func TestPortHelpers(t *testing.T) {
	c := testCluster()
	if GCSPort(c) != 6379 || DashboardPort(c) != 8265 {
		t.Errorf("defaults: gcs %d dashboard %d", GCSPort(c), DashboardPort(c))
	}
	c.Spec.HeadGroupSpec.RayStartParams = map[string]string{"port": "7000", "dashboard-port": "9000"}
	if GCSPort(c) != 7000 || DashboardPort(c) != 9000 {
		t.Errorf("params: gcs %d dashboard %d", GCSPort(c), DashboardPort(c))
	}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "dashboard", ContainerPort: 8000}}
	if DashboardPort(c) != 8000 {
		t.Errorf("container port should win: %d", DashboardPort(c))
	}
	c.Spec.HeadGroupSpec.RayStartParams = map[string]string{"port": "not-a-number"}
	if GCSPort(c) != 6379 {
		t.Errorf("bad port param: %d", GCSPort(c))
	}
	if RayContainerIndex() != 0 {
		t.Errorf("RayContainerIndex = %d", RayContainerIndex())
	}
}
