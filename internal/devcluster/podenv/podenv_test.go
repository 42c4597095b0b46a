package podenv

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func sources(t *testing.T, objs ...any) Sources {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	cms, secrets, svcs := idx(), idx(), idx()
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			_ = cms.Add(o)
		case *corev1.Secret:
			_ = secrets.Add(o)
		case *corev1.Service:
			_ = svcs.Add(o)
		}
	}
	return Sources{ConfigMaps: corev1listers.NewConfigMapLister(cms), Secrets: corev1listers.NewSecretLister(secrets),
		Services: corev1listers.NewServiceLister(svcs)}
}

func TestBuild(t *testing.T) {
	src := sources(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"A": "from-cm", "K": "v"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Data: map[string][]byte{"pw": []byte("hunter2")}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "head-svc", Namespace: "ns"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.9", Ports: []corev1.ServicePort{{Name: "gcs", Port: 6379, Protocol: corev1.ProtocolTCP}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "ns"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}},
	)
	src.APIServerHost, src.APIServerPort = "10.244.0.1", 16443
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{NodeName: "n1", ServiceAccountName: "sa"}}
	c := &corev1.Container{
		Name:    "c",
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}, Prefix: "CM_"}},
		Env: []corev1.EnvVar{
			{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "pw"}}},
			{Name: "K", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "K"}}},
			{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu"}}},
			{Name: "ADDR", Value: "$(IP):$(HEAD_SVC_SERVICE_PORT) $$(IP) $(UNKNOWN)"},
		},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}},
	}
	env, err := Build(src, pod, c, Runtime{PodIP: "10.244.0.7", HostIP: "10.244.0.1",
		NodeAllocatable: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"IP=10.244.0.7", "NAME=p", "APP=x", "NODE=n1", "PW=hunter2", "K=v", "CM_A=from-cm", "CM_K=v",
		"MEM=2048", "CPU=2", "ADDR=10.244.0.7:6379 $(IP) $(UNKNOWN)",
		"KUBERNETES_SERVICE_HOST=10.244.0.1", "KUBERNETES_SERVICE_PORT=16443", "KUBERNETES_PORT=tcp://10.244.0.1:16443",
		"HEAD_SVC_SERVICE_HOST=10.96.0.9", "HEAD_SVC_SERVICE_PORT_GCS=6379",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %s; got %v", want, env)
		}
	}
	for _, e := range env {
		if len(e) > 9 && e[:9] == "HEADLESS_" {
			t.Errorf("headless service got variables: %s", e)
		}
	}
}

func TestBuildMissingRequiredKeyFails(t *testing.T) {
	src := sources(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	opt := true
	c := &corev1.Container{Env: []corev1.EnvVar{
		{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: &opt}}},
	}}
	if env, err := Build(src, pod, c, Runtime{}); err != nil || slices.ContainsFunc(env, func(s string) bool { return s[:4] == "OPT=" }) {
		t.Fatalf("optional missing key: %v %v", env, err)
	}
	c.Env[0].ValueFrom.ConfigMapKeyRef.Optional = nil
	if _, err := Build(src, pod, c, Runtime{}); err == nil {
		t.Fatal("missing required configmap succeeded")
	}
}
