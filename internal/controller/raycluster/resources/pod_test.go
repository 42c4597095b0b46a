package resources

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

func TestPodNames(t *testing.T) {
	long := strings.Repeat("a", 53)
	tests := []struct {
		name, cluster, group     string
		wantHead, wantHeadPrefix string
		wantWorkerPrefix         string
	}{
		{name: "short", cluster: "rc", group: "small", wantHead: "rc-head", wantHeadPrefix: "rc-head-", wantWorkerPrefix: "rc-small-worker-"},
		{name: "upper case group is lowercased", cluster: "rc", group: "GPU", wantHead: "rc-head", wantHeadPrefix: "rc-head-", wantWorkerPrefix: "rc-gpu-worker-"},
		{
			name: "long names are truncated to 50 before the suffix", cluster: long, group: "group",
			wantHead: strings.Repeat("a", 50) + "-head", wantHeadPrefix: strings.Repeat("a", 50) + "-head-",
			wantWorkerPrefix: strings.Repeat("a", 50) + "-worker-",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &rayv1.RayCluster{ObjectMeta: metav1.ObjectMeta{Name: tt.cluster}}
			if got := HeadPodName(c); got != tt.wantHead {
				t.Errorf("HeadPodName = %q, want %q", got, tt.wantHead)
			}
			if got := HeadPodGenerateName(c); got != tt.wantHeadPrefix {
				t.Errorf("HeadPodGenerateName = %q, want %q", got, tt.wantHeadPrefix)
			}
			if got := WorkerPodGenerateName(c, tt.group); got != tt.wantWorkerPrefix {
				t.Errorf("WorkerPodGenerateName = %q, want %q", got, tt.wantWorkerPrefix)
			}
		})
	}
}

func TestBuildHeadPodMetadata(t *testing.T) {
	c := testCluster()
	c.Spec.HeadGroupSpec.Template.Labels = map[string]string{
		"team": "ml", rayv1.RayClusterLabelKey: "spoofed", rayv1.RayNodeTypeLabelKey: "worker",
		rayv1.KubernetesApplicationNameLabelKey: "my-app",
	}
	c.Spec.HeadGroupSpec.Labels = map[string]string{"team": "infra", "zone": "a"}
	c.Spec.HeadGroupSpec.Template.Annotations = map[string]string{"user": "kept"}
	c.Annotations = map[string]string{rayv1.RayOverwriteContainerCmdAnnotationKey: "false", "unrelated": "x"}

	pod := BuildHeadPod(c, testOptions())

	wantLabels := map[string]string{
		"team": "infra", "zone": "a",
		rayv1.RayClusterLabelKey:                "rc",
		rayv1.RayNodeTypeLabelKey:               "head",
		rayv1.RayNodeGroupLabelKey:              "headgroup",
		rayv1.RayIDLabelKey:                     "rc-head",
		rayv1.RayNodeLabelKey:                   "yes",
		rayv1.KubernetesApplicationNameLabelKey: "my-app",
		rayv1.KubernetesCreatedByLabelKey:       "kuberay-operator",
	}
	if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{
		"user": "kept",
		rayv1.RayOverwriteContainerCmdAnnotationKey: "false",
		rayv1.RayFTEnabledAnnotationKey:             "false",
		rayv1.UpgradeStrategyRecreateHashKey:        ClusterSpecHash(c),
		rayv1.KubeRayVersion:                        "v1.2.3",
		PodTemplateHashAnnotationKey:                PodTemplateHash(c, rayv1.HeadGroupName),
	}
	if diff := cmp.Diff(wantAnn, pod.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if pod.GenerateName != "rc-head-" || pod.Name != "" || pod.Namespace != "ns" {
		t.Errorf("name = %q, generateName = %q, namespace = %q", pod.Name, pod.GenerateName, pod.Namespace)
	}
	wantOwner := []metav1.OwnerReference{{
		APIVersion: "ray.io/v1", Kind: "RayCluster", Name: "rc", UID: testUID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
	if diff := cmp.Diff(wantOwner, pod.OwnerReferences); diff != "" {
		t.Errorf("owner references (-want +got):\n%s", diff)
	}
	if pod.Kind != "Pod" || pod.APIVersion != "v1" {
		t.Errorf("TypeMeta = %+v", pod.TypeMeta)
	}

	o := testOptions()
	o.DeterministicHeadPodName = true
	if pod := BuildHeadPod(c, o); pod.Name != "rc-head" || pod.GenerateName != "" {
		t.Errorf("deterministic: name = %q, generateName = %q", pod.Name, pod.GenerateName)
	}
}

func TestBuildHeadPodRecreateAnnotations(t *testing.T) {
	// KubeRay stamps the spec hash and its version on every head pod, whatever the strategy.
	c := testCluster()
	before := BuildHeadPod(c, testOptions())
	if got, want := before.Annotations[rayv1.UpgradeStrategyRecreateHashKey], ClusterSpecHash(c); got != want || got == "" {
		t.Errorf("recreate hash without a strategy = %q, want %q", got, want)
	}
	c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRecreate)}
	pod := BuildHeadPod(c, testOptions())
	if got, want := pod.Annotations[rayv1.UpgradeStrategyRecreateHashKey], ClusterSpecHash(c); got != want || got == "" {
		t.Errorf("recreate hash = %q, want %q", got, want)
	}
	if got := pod.Annotations[rayv1.KubeRayVersion]; got != "v1.2.3" {
		t.Errorf("kuberay version = %q", got)
	}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Image = "other"
	if BuildHeadPod(c, testOptions()).Annotations[rayv1.UpgradeStrategyRecreateHashKey] == pod.Annotations[rayv1.UpgradeStrategyRecreateHashKey] {
		t.Error("recreate hash did not change with the head template")
	}
	w := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions())
	for _, k := range []string{rayv1.UpgradeStrategyRecreateHashKey, rayv1.KubeRayVersion, rayv1.RayFTEnabledAnnotationKey} {
		if _, ok := w.Annotations[k]; ok {
			t.Errorf("worker pod carries %s; KubeRay puts it on the head only", k)
		}
	}
}

func TestBuildWorkerPodMetadata(t *testing.T) {
	c := testCluster()
	g := &c.Spec.WorkerGroupSpecs[0]
	tests := []struct {
		name  string
		p     WorkerPodParams
		extra map[string]string
	}{
		{name: "no indexing", p: WorkerPodParams{}},
		{name: "replica index", p: WorkerPodParams{ReplicaIndex: ptr.To[int32](3)}, extra: map[string]string{rayv1.RayWorkerReplicaIndexKey: "3"}},
		{
			name: "multi-host replica",
			p:    WorkerPodParams{ReplicaIndex: ptr.To[int32](1), ReplicaName: "small-x7k2p", HostIndex: 2},
			extra: map[string]string{
				rayv1.RayWorkerReplicaIndexKey: "1", rayv1.RayWorkerReplicaNameKey: "small-x7k2p", rayv1.RayHostIndexKey: "2",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := BuildWorkerPod(c, g, tt.p, testOptions())
			want := map[string]string{
				rayv1.RayClusterLabelKey:                "rc",
				rayv1.RayNodeTypeLabelKey:               "worker",
				rayv1.RayNodeGroupLabelKey:              "small",
				rayv1.RayIDLabelKey:                     "rc-worker",
				rayv1.RayNodeLabelKey:                   "yes",
				rayv1.KubernetesApplicationNameLabelKey: "kuberay",
				rayv1.KubernetesCreatedByLabelKey:       "kuberay-operator",
			}
			for k, v := range tt.extra {
				want[k] = v
			}
			if diff := cmp.Diff(want, pod.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if pod.GenerateName != "rc-small-worker-" {
				t.Errorf("generateName = %q", pod.GenerateName)
			}
			if pod.Annotations[PodTemplateHashAnnotationKey] != PodTemplateHash(c, "small") {
				t.Errorf("pod template hash annotation = %q", pod.Annotations[PodTemplateHashAnnotationKey])
			}
		})
	}
}

func TestServeLabels(t *testing.T) {
	c := testCluster()
	c.Annotations = map[string]string{rayv1.EnableServeServiceAnnotationKey: "true"}
	if got := BuildHeadPod(c, testOptions()).Labels[rayv1.RayClusterServingServiceLabelKey]; got != "false" {
		t.Errorf("head ray.io/serve = %q, want false", got)
	}
	if got := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions()).Labels[rayv1.RayClusterServingServiceLabelKey]; got != "true" {
		t.Errorf("worker ray.io/serve = %q, want true", got)
	}
	c.Annotations = nil
	if _, ok := BuildHeadPod(c, testOptions()).Labels[rayv1.RayClusterServingServiceLabelKey]; ok {
		t.Errorf("ray.io/serve set without the annotation")
	}
}

func TestRayContainerEnv(t *testing.T) {
	c := testCluster()
	c.Spec.HeadGroupSpec.RayStartParams["port"] = "6380"
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "RAY_USAGE_STATS_KUBERAY_IN_USE", Value: "0"},
		{Name: "RAY_CLUSTER_NAME", Value: "user-value-is-replaced"},
	}
	head := BuildHeadPod(c, testOptions())
	hc := &head.Spec.Containers[0]
	mustEnv(t, hc, EnvRayPort, "6380")
	mustEnv(t, hc, EnvRayAddress, "127.0.0.1:6380")
	mustEnv(t, hc, EnvUsageStatsKubeRayInUse, "0") // user value kept
	mustEnv(t, hc, EnvDashboardK8sDiskUsage, "1")
	mustEnv(t, hc, EnvUsageStatsExtraTags, "kuberay_version=v1.2.3;kuberay_crd=RayCluster")
	mustEnv(t, hc, EnvGenRayStartCmd, "ray start --head --block --dashboard-agent-listen-port=52365 --dashboard-host=0.0.0.0 --memory=2147483648 --metrics-export-port=8080 --num-cpus=1 --port=6380")
	noEnv(t, hc, EnvFQRayIP)
	noEnv(t, hc, EnvTaskWaitForDeathInfo)
	e, _ := envValue(t, hc, EnvRayClusterName)
	if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.labels['ray.io/cluster']" {
		t.Errorf("RAY_CLUSTER_NAME = %+v, want a fieldRef to the cluster label", e)
	}
	for name, path := range map[string]string{
		EnvRayClusterNamespace: "metadata.namespace",
		EnvRayCloudInstanceID:  "metadata.name",
		EnvRayNodeTypeName:     "metadata.labels['ray.io/group']",
	} {
		e, _ := envValue(t, hc, name)
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != path {
			t.Errorf("%s = %+v, want fieldRef %s", name, e, path)
		}
	}

	worker := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions())
	wc := &worker.Spec.Containers[0]
	mustEnv(t, wc, EnvFQRayIP, "rc-head-svc.ns.svc.cluster.local")
	mustEnv(t, wc, EnvRayIP, "rc-head-svc")
	mustEnv(t, wc, EnvRayAddress, "rc-head-svc.ns.svc.cluster.local:6380")
	mustEnv(t, wc, EnvRayPort, "6380")
	noEnv(t, wc, EnvUsageStatsExtraTags)
	mustEnv(t, wc, EnvGenRayStartCmd, "ray start --address=rc-head-svc.ns.svc.cluster.local:6380 --block --dashboard-agent-listen-port=52365 --memory=1073741824 --metrics-export-port=8080 --num-cpus=2")

	o := testOptions()
	o.ClusterDomain = "corp.example"
	worker = BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, o)
	mustEnv(t, &worker.Spec.Containers[0], EnvFQRayIP, "rc-head-svc.ns.svc.corp.example")
}

func TestRayServiceEnvAndProbes(t *testing.T) {
	c := testCluster()
	c.Labels = map[string]string{rayv1.RayOriginatedFromCRDLabelKey: "RayService"}
	c.Spec.RayVersion = "2.54.0"
	c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "serve", ContainerPort: 9000}}

	head := BuildHeadPod(c, testOptions())
	hc := &head.Spec.Containers[0]
	mustEnv(t, hc, EnvUsageStatsExtraTags, "kuberay_version=v1.2.3;kuberay_crd=RayService")
	mustEnv(t, hc, EnvTaskWaitForDeathInfo, "0")
	mustEnv(t, hc, EnvGCSServerRequestTimeout, "5")
	mustEnv(t, hc, EnvServeKVTimeout, "5")
	if hc.ReadinessProbe.HTTPGet == nil {
		t.Errorf("head of a RayService keeps the HTTP readiness probe, got %+v", hc.ReadinessProbe)
	}

	w := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions())
	wc := &w.Spec.Containers[0]
	if wc.LivenessProbe.HTTPGet == nil {
		t.Errorf("worker liveness should stay HTTP on Ray 2.54, got %+v", wc.LivenessProbe)
	}
	// Unlike KubeRay, no Serve proxy check: a worker whose proxy drains stays Ready (the
	// RayService controller's ray.io/serve label keeps it out of the serve Service instead).
	if diff := cmp.Diff(wc.LivenessProbe.ProbeHandler, wc.ReadinessProbe.ProbeHandler); diff != "" {
		t.Errorf("RayService worker readiness should check what liveness checks, (-liveness +readiness):\n%s", diff)
	}
	if wc.ReadinessProbe.FailureThreshold != readinessFailure {
		t.Errorf("readiness failureThreshold = %d, want %d", wc.ReadinessProbe.FailureThreshold, readinessFailure)
	}

	// Options.CreatorCRD wins over the label.
	o := testOptions()
	o.CreatorCRD = "RayJob"
	mustEnv(t, &BuildHeadPod(c, o).Spec.Containers[0], EnvUsageStatsExtraTags, "kuberay_version=v1.2.3;kuberay_crd=RayJob")
}

func TestProbes(t *testing.T) {
	oldHead := "wget --tries 1 -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | grep success && " +
		"wget --tries 1 -T 10 -q -O- http://localhost:8265/api/gcs_healthz | grep success"
	oldWorker := "wget --tries 1 -T 2 -q -O- http://localhost:52365/api/local_raylet_healthz | grep success"
	tests := []struct {
		name       string
		version    string
		headParams map[string]string
		wantHTTP   bool
		wantHead   string // exec command when !wantHTTP
		wantWorker string
		wantPort   int32
	}{
		{name: "old ray uses exec checks", version: "2.46.0", wantHead: oldHead, wantWorker: oldWorker},
		{name: "unknown version uses exec checks", version: "nightly", wantHead: oldHead, wantWorker: oldWorker},
		{name: "empty version uses exec checks", version: "", wantHead: oldHead, wantWorker: oldWorker},
		{name: "2.53.0 uses HTTP", version: "2.53.0", wantHTTP: true, wantPort: 52365},
		{name: "3.0 uses HTTP", version: "3.0.1", wantHTTP: true, wantPort: 52365},
		{
			name: "custom ports are honoured", version: "2.40.0",
			headParams: map[string]string{"dashboard-agent-listen-port": "1111", "dashboard-port": "2222"},
			wantHead: "wget --tries 1 -T 2 -q -O- http://localhost:1111/api/local_raylet_healthz | grep success && " +
				"wget --tries 1 -T 10 -q -O- http://localhost:2222/api/gcs_healthz | grep success",
			wantWorker: oldWorker,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster()
			c.Spec.RayVersion = tt.version
			for k, v := range tt.headParams {
				c.Spec.HeadGroupSpec.RayStartParams[k] = v
			}
			head := BuildHeadPod(c, testOptions()).Spec.Containers[0]
			worker := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions()).Spec.Containers[0]
			check := func(who string, p *corev1.Probe, timeout, delay, failure int32, wantExec string) {
				t.Helper()
				if p == nil {
					t.Fatalf("%s: probe missing", who)
				}
				if p.TimeoutSeconds != timeout || p.InitialDelaySeconds != delay || p.FailureThreshold != failure ||
					p.PeriodSeconds != 5 || p.SuccessThreshold != 1 {
					t.Errorf("%s: timings %+v", who, p)
				}
				if tt.wantHTTP {
					if p.HTTPGet == nil || p.HTTPGet.Path != "/api/healthz" || p.HTTPGet.Port.IntVal != tt.wantPort {
						t.Errorf("%s: want HTTP GET /api/healthz:%d, got %+v", who, tt.wantPort, p.ProbeHandler)
					}
					return
				}
				if p.Exec == nil || len(p.Exec.Command) != 3 || p.Exec.Command[2] != wantExec {
					t.Errorf("%s: exec = %+v, want %q", who, p.Exec, wantExec)
				}
			}
			check("head liveness", head.LivenessProbe, 5, 30, 120, tt.wantHead)
			check("head readiness", head.ReadinessProbe, 5, 10, 10, tt.wantHead)
			check("worker liveness", worker.LivenessProbe, 2, 30, 120, tt.wantWorker)
			check("worker readiness", worker.ReadinessProbe, 2, 10, 10, tt.wantWorker)
		})
	}

	t.Run("user probes are kept", func(t *testing.T) {
		c := testCluster()
		user := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		c.Spec.HeadGroupSpec.Template.Spec.Containers[0].LivenessProbe = user
		head := BuildHeadPod(c, testOptions()).Spec.Containers[0]
		if !equality.Semantic.DeepEqual(head.LivenessProbe, user) {
			t.Errorf("liveness = %+v, want the user's", head.LivenessProbe)
		}
		if head.ReadinessProbe == nil {
			t.Errorf("readiness should still be injected")
		}
	})
	t.Run("injection disabled", func(t *testing.T) {
		o := testOptions()
		o.EnableProbesInjection = false
		c := testCluster()
		head := BuildHeadPod(c, o).Spec.Containers[0]
		worker := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, o).Spec.Containers[0]
		if head.LivenessProbe != nil || head.ReadinessProbe != nil || worker.LivenessProbe != nil || worker.ReadinessProbe != nil {
			t.Errorf("probes injected although disabled")
		}
	})
}

func TestMetricsPort(t *testing.T) {
	c := testCluster()
	c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9999}}
	head := BuildHeadPod(c, testOptions()).Spec.Containers[0]
	if diff := cmp.Diff([]corev1.ContainerPort{{Name: "metrics", ContainerPort: 8080}}, head.Ports); diff != "" {
		t.Errorf("head ports (-want +got):\n%s", diff)
	}
	worker := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions()).Spec.Containers[0]
	if diff := cmp.Diff([]corev1.ContainerPort{{Name: "metrics", ContainerPort: 9999}}, worker.Ports); diff != "" {
		t.Errorf("worker ports (-want +got):\n%s", diff)
	}
}

func TestSharedMemoryVolume(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*rayv1.RayCluster)
		wantShm   bool
		wantLimit string
	}{
		{name: "sized like the memory limit", wantShm: true, wantLimit: "2Gi"},
		{name: "falls back to the memory request", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Resources.Limits = nil
		}, wantShm: true, wantLimit: "1Gi"},
		{name: "no memory at all gives no size limit", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
		}, wantShm: true},
		{name: "plasma-directory skips it", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.RayStartParams["plasma-directory"] = "/plasma"
		}},
		{name: "user /dev/shm mount skips it", mutate: func(c *rayv1.RayCluster) {
			c.Spec.HeadGroupSpec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "mine", MountPath: "/dev/shm"}}
			c.Spec.HeadGroupSpec.Template.Spec.Volumes = []corev1.Volume{{Name: "mine"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster()
			if tt.mutate != nil {
				tt.mutate(c)
			}
			pod := BuildHeadPod(c, testOptions())
			var vol *corev1.Volume
			for i := range pod.Spec.Volumes {
				if pod.Spec.Volumes[i].Name == "shared-mem" {
					vol = &pod.Spec.Volumes[i]
				}
			}
			mounted := mountsPath(&pod.Spec.Containers[0], "/dev/shm")
			if !tt.wantShm {
				if vol != nil {
					t.Errorf("shared-mem volume added: %+v", vol)
				}
				return
			}
			if vol == nil || vol.EmptyDir == nil || vol.EmptyDir.Medium != corev1.StorageMediumMemory || !mounted {
				t.Fatalf("shared-mem volume = %+v, mounted = %v", vol, mounted)
			}
			if tt.wantLimit == "" {
				if vol.EmptyDir.SizeLimit != nil {
					t.Errorf("sizeLimit = %v, want none", vol.EmptyDir.SizeLimit)
				}
			} else if vol.EmptyDir.SizeLimit == nil || vol.EmptyDir.SizeLimit.Cmp(resource.MustParse(tt.wantLimit)) != 0 {
				t.Errorf("sizeLimit = %v, want %s", vol.EmptyDir.SizeLimit, tt.wantLimit)
			}
		})
	}
}

func TestWaitGCSReadyInitContainer(t *testing.T) {
	c := testCluster()
	g := &c.Spec.WorkerGroupSpecs[0]
	g.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "USER_VAR", Value: "1"}}
	g.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
	g.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways
	g.Template.Spec.InitContainers = []corev1.Container{{Name: "user-init", Image: "busybox"}}

	pod := BuildWorkerPod(c, g, WorkerPodParams{}, testOptions())
	if len(pod.Spec.InitContainers) != 2 {
		t.Fatalf("init containers = %d, want 2", len(pod.Spec.InitContainers))
	}
	user, wait := pod.Spec.InitContainers[0], pod.Spec.InitContainers[1]
	mustEnv(t, &user, EnvFQRayIP, "rc-head-svc.ns.svc.cluster.local")
	mustEnv(t, &user, EnvRayIP, "rc-head-svc")
	if wait.Name != "wait-gcs-ready" || wait.Image != "rayproject/ray:2.52.0" || wait.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("wait-gcs-ready = %+v", wait)
	}
	if wait.SecurityContext == nil || *wait.SecurityContext.RunAsUser != 1000 {
		t.Errorf("security context not copied: %+v", wait.SecurityContext)
	}
	mustEnv(t, &wait, "USER_VAR", "1")
	mustEnv(t, &wait, EnvFQRayIP, "rc-head-svc.ns.svc.cluster.local")
	if diff := cmp.Diff([]string{"/bin/bash", "-c", "--"}, wait.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if !strings.Contains(wait.Args[0], "ray health-check --address rc-head-svc.ns.svc.cluster.local:6379") {
		t.Errorf("script does not health-check the head: %s", wait.Args[0])
	}
	if diff := cmp.Diff(fixedResources("200m", "256Mi"), wait.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}

	o := testOptions()
	o.EnableInitContainerInjection = false
	if pod := BuildWorkerPod(c, g, WorkerPodParams{}, o); len(pod.Spec.InitContainers) != 1 {
		t.Errorf("init container injected although disabled: %d", len(pod.Spec.InitContainers))
	}
	if head := BuildHeadPod(c, testOptions()); len(head.Spec.InitContainers) != 0 {
		t.Errorf("head got init containers")
	}
}

func TestAutoscalerInjection(t *testing.T) {
	c := testCluster()
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)

	head := BuildHeadPod(c, testOptions())
	if len(head.Spec.Containers) != 2 {
		t.Fatalf("containers = %d, want ray + autoscaler", len(head.Spec.Containers))
	}
	ray, as := head.Spec.Containers[0], head.Spec.Containers[1]
	if head.Spec.ServiceAccountName != "rc" {
		t.Errorf("serviceAccountName = %q", head.Spec.ServiceAccountName)
	}
	if !strings.Contains(ray.Args[0], "--no-monitor") {
		t.Errorf("ray start lacks --no-monitor: %s", ray.Args[0])
	}
	if as.Name != "autoscaler" || as.Image != ray.Image || as.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("autoscaler = %+v", as)
	}
	if diff := cmp.Diff([]string{"/bin/bash", "-c", "--"}, as.Command); diff != "" {
		t.Errorf("autoscaler command (-want +got):\n%s", diff)
	}
	wantArgs := []string{"ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace $(RAY_CLUSTER_NAMESPACE)"}
	if diff := cmp.Diff(wantArgs, as.Args); diff != "" {
		t.Errorf("autoscaler args (-want +got):\n%s", diff)
	}
	mustEnv(t, &as, EnvKubeRayCRDVersion, "v1")
	mustEnv(t, &as, EnvGenAutoscalerStartCmd, wantArgs[0])
	for _, name := range []string{EnvRayClusterName, EnvRayClusterNamespace, EnvHeadPodName} {
		if e, ok := envValue(t, &as, name); !ok || e.ValueFrom == nil {
			t.Errorf("autoscaler env %s = %+v", name, e)
		}
	}
	if diff := cmp.Diff(fixedResources("500m", "512Mi"), as.Resources); diff != "" {
		t.Errorf("autoscaler resources (-want +got):\n%s", diff)
	}
	if !mountsPath(&ray, "/tmp/ray") || !mountsPath(&as, "/tmp/ray") || !hasVolume(&head.Spec, "ray-logs") {
		t.Errorf("ray-logs volume not shared")
	}
	noEnv(t, &ray, EnvEnableAutoscalerV2)
	if head.Spec.RestartPolicy != "" {
		t.Errorf("restartPolicy = %q without v2", head.Spec.RestartPolicy)
	}

	t.Run("overrides", func(t *testing.T) {
		c := c.DeepCopy()
		res := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
		c.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{
			Image:           ptr.To("my/autoscaler:1"),
			ImagePullPolicy: ptr.To(corev1.PullAlways),
			Resources:       &res,
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(false)},
			Env:             []corev1.EnvVar{{Name: "EXTRA", Value: "1"}},
			EnvFrom:         []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			VolumeMounts:    []corev1.VolumeMount{{Name: "v", MountPath: "/v"}},
			Command:         []string{"/bin/sh"},
			Args:            []string{"-c", "run"},
		}
		c.Spec.HeadGroupSpec.Template.Spec.ServiceAccountName = "my-sa"
		head := BuildHeadPod(c, testOptions())
		as := head.Spec.Containers[1]
		if as.Image != "my/autoscaler:1" || as.ImagePullPolicy != corev1.PullAlways || !equality.Semantic.DeepEqual(as.Resources, res) ||
			as.SecurityContext == nil || len(as.EnvFrom) != 1 {
			t.Errorf("overrides not applied: %+v", as)
		}
		if diff := cmp.Diff([]string{"/bin/sh"}, as.Command); diff != "" {
			t.Errorf("command (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"-c", "run"}, as.Args); diff != "" {
			t.Errorf("args (-want +got):\n%s", diff)
		}
		mustEnv(t, &as, "EXTRA", "1")
		mustEnv(t, &as, EnvKubeRayCRDVersion, "v1") // appended, not replaced
		if !mountsPath(&as, "/v") || !mountsPath(&as, "/tmp/ray") {
			t.Errorf("volume mounts = %+v", as.VolumeMounts)
		}
		if head.Spec.ServiceAccountName != "my-sa" {
			t.Errorf("serviceAccountName = %q, want the template's", head.Spec.ServiceAccountName)
		}
	})

	t.Run("v2", func(t *testing.T) {
		c := c.DeepCopy()
		c.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{Version: ptr.To(rayv1.AutoscalerVersionV2)}
		head := BuildHeadPod(c, testOptions())
		mustEnv(t, &head.Spec.Containers[0], EnvEnableAutoscalerV2, "true")
		if head.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("head restartPolicy = %q", head.Spec.RestartPolicy)
		}
		w := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions())
		if w.Spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("worker restartPolicy = %q", w.Spec.RestartPolicy)
		}
		noEnv(t, &w.Spec.Containers[0], EnvEnableAutoscalerV2)
	})
	t.Run("v1", func(t *testing.T) {
		c := c.DeepCopy()
		c.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{Version: ptr.To(rayv1.AutoscalerVersionV1)}
		head := BuildHeadPod(c, testOptions())
		mustEnv(t, &head.Spec.Containers[0], EnvEnableAutoscalerV2, "false")
		if head.Spec.RestartPolicy != "" {
			t.Errorf("head restartPolicy = %q", head.Spec.RestartPolicy)
		}
	})
	t.Run("off", func(t *testing.T) {
		c := testCluster()
		c.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{Version: ptr.To(rayv1.AutoscalerVersionV2)}
		head := BuildHeadPod(c, testOptions())
		if len(head.Spec.Containers) != 1 || head.Spec.ServiceAccountName != "" || head.Spec.RestartPolicy != "" {
			t.Errorf("autoscaler bits injected with autoscaling off: %+v", head.Spec)
		}
	})
}

func TestGCSFaultTolerance(t *testing.T) {
	t.Run("redis options", func(t *testing.T) {
		c := testCluster()
		secret := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}
		c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{
			RedisAddress:             "redis:6379",
			RedisPassword:            &rayv1.RedisCredential{ValueFrom: secret},
			RedisUsername:            &rayv1.RedisCredential{Value: "default"},
			ExternalStorageNamespace: "my-ns",
		}
		head := BuildHeadPod(c, testOptions())
		hc := &head.Spec.Containers[0]
		if head.Annotations[rayv1.RayFTEnabledAnnotationKey] != "true" || head.Annotations[rayv1.RayExternalStorageNSAnnotationKey] != "my-ns" {
			t.Errorf("annotations = %v", head.Annotations)
		}
		mustEnv(t, hc, EnvExternalStorageNS, "my-ns")
		mustEnv(t, hc, EnvRedisAddress, "redis:6379")
		mustEnv(t, hc, EnvRedisUsername, "default")
		if e, _ := envValue(t, hc, EnvRedisPassword); !equality.Semantic.DeepEqual(e.ValueFrom, secret) {
			t.Errorf("REDIS_PASSWORD = %+v", e)
		}
		if !strings.Contains(hc.Args[0], "--redis-password=$REDIS_PASSWORD") || !strings.Contains(hc.Args[0], "--redis-username=$REDIS_USERNAME") {
			t.Errorf("ray start lacks redis credentials: %s", hc.Args[0])
		}
		w := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions())
		wc := &w.Spec.Containers[0]
		mustEnv(t, wc, EnvGCSReconnectTimeout, "600")
		noEnv(t, wc, EnvRedisAddress)
		noEnv(t, wc, EnvExternalStorageNS)
		if _, ok := w.Annotations[rayv1.RayFTEnabledAnnotationKey]; ok {
			t.Errorf("worker annotations = %v, want no %s (head only)", w.Annotations, rayv1.RayFTEnabledAnnotationKey)
		}
		if strings.Contains(wc.Args[0], "redis") {
			t.Errorf("worker ray start mentions redis: %s", wc.Args[0])
		}
	})
	t.Run("legacy annotation defaults the namespace to the UID", func(t *testing.T) {
		c := testCluster()
		c.Annotations = map[string]string{rayv1.RayFTEnabledAnnotationKey: "true"}
		c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvRedisAddress, Value: "r:6379"}}
		head := BuildHeadPod(c, testOptions())
		mustEnv(t, &head.Spec.Containers[0], EnvExternalStorageNS, testUID)
		mustEnv(t, &head.Spec.Containers[0], EnvRedisAddress, "r:6379")
		if head.Annotations[rayv1.RayExternalStorageNSAnnotationKey] != testUID {
			t.Errorf("annotations = %v", head.Annotations)
		}
		c.Annotations[rayv1.RayExternalStorageNSAnnotationKey] = "legacy-ns"
		mustEnv(t, &BuildHeadPod(c, testOptions()).Spec.Containers[0], EnvExternalStorageNS, "legacy-ns")
	})
	t.Run("user env wins", func(t *testing.T) {
		c := testCluster()
		c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{RedisAddress: "redis:6379"}
		c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvExternalStorageNS, Value: "mine"}}
		c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: EnvGCSReconnectTimeout, Value: "60"}}
		head := BuildHeadPod(c, testOptions())
		mustEnv(t, &head.Spec.Containers[0], EnvExternalStorageNS, "mine")
		if _, ok := head.Annotations[rayv1.RayExternalStorageNSAnnotationKey]; ok {
			t.Errorf("storage namespace annotation set although the user set the env")
		}
		mustEnv(t, &BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions()).Spec.Containers[0], EnvGCSReconnectTimeout, "60")
	})
	t.Run("rocksdb", func(t *testing.T) {
		c := testCluster()
		c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{
			Backend: ptr.To(rayv1.GcsBackendRocksDB),
			Storage: &rayv1.GcsStorage{SubPath: "gcs"},
		}
		head := BuildHeadPod(c, testOptions())
		hc := &head.Spec.Containers[0]
		mustEnv(t, hc, EnvGCSStorage, "rocksdb")
		mustEnv(t, hc, EnvGCSStoragePath, "/data/gcs")
		noEnv(t, hc, EnvExternalStorageNS)
		var found bool
		for _, v := range head.Spec.Volumes {
			if v.Name == "gcs-storage" && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "rc-gcs-pvc" {
				found = true
			}
		}
		if !found {
			t.Errorf("gcs-storage volume missing: %+v", head.Spec.Volumes)
		}
		var mounted bool
		for _, m := range hc.VolumeMounts {
			if m.Name == "gcs-storage" && m.MountPath == "/data/gcs" && m.SubPath == "gcs" {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("gcs-storage mount missing: %+v", hc.VolumeMounts)
		}
		if BuildRedisCleanupJob(c, testOptions()) != nil {
			t.Errorf("rocksdb clusters need no redis clean-up")
		}
	})
}

func TestAuthEnv(t *testing.T) {
	t.Run("generated secret", func(t *testing.T) {
		c := testCluster()
		c.Spec.EnableInTreeAutoscaling = ptr.To(true)
		c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken}
		head := BuildHeadPod(c, testOptions())
		worker := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions())
		for _, ctr := range []corev1.Container{head.Spec.Containers[0], head.Spec.Containers[1], worker.Spec.Containers[0], worker.Spec.InitContainers[0]} {
			mustEnv(t, &ctr, EnvAuthMode, "token")
			e, _ := envValue(t, &ctr, EnvAuthToken)
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "rc" || e.ValueFrom.SecretKeyRef.Key != "auth_token" {
				t.Errorf("%s: RAY_AUTH_TOKEN = %+v", ctr.Name, e)
			}
		}
	})
	t.Run("user secret", func(t *testing.T) {
		c := testCluster()
		c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken, SecretName: ptr.To("mine")}
		e, _ := envValue(t, &BuildHeadPod(c, testOptions()).Spec.Containers[0], EnvAuthToken)
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef.Name != "mine" {
			t.Errorf("RAY_AUTH_TOKEN = %+v", e)
		}
		if BuildAuthSecret(c, "t") != nil {
			t.Errorf("secret built although the user brings one")
		}
	})
	t.Run("kubernetes tokens", func(t *testing.T) {
		c := testCluster()
		c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken, EnableK8sTokenAuth: ptr.To(true)}
		head := BuildHeadPod(c, testOptions())
		hc := &head.Spec.Containers[0]
		mustEnv(t, hc, EnvEnableK8sTokenAuth, "true")
		noEnv(t, hc, EnvAuthToken)
		if !hasVolume(&head.Spec, "ray-token") || !mountsPath(hc, "/var/run/secrets/ray.io/serviceaccount") {
			t.Errorf("ray-token volume not mounted")
		}
		if BuildAuthSecret(c, "t") != nil {
			t.Errorf("secret built for kubernetes token auth")
		}
	})
	t.Run("disabled", func(t *testing.T) {
		c := testCluster()
		c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeDisabled}
		noEnv(t, &BuildHeadPod(c, testOptions()).Spec.Containers[0], EnvAuthMode)
		if BuildAuthSecret(c, "t") != nil {
			t.Errorf("secret built with auth disabled")
		}
	})
	t.Run("secret", func(t *testing.T) {
		c := testCluster()
		c.Spec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken}
		s := BuildAuthSecret(c, "tok")
		if s == nil || s.Name != "rc" || s.Namespace != "ns" || string(s.Data["auth_token"]) != "tok" || len(s.OwnerReferences) != 1 {
			t.Errorf("secret = %+v", s)
		}
	})
}

func TestOverwriteAnnotation(t *testing.T) {
	c := testCluster()
	c.Annotations = map[string]string{rayv1.RayOverwriteContainerCmdAnnotationKey: "true"}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Command = []string{"/bin/bash", "-c", "--"}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Args = []string{"echo hi; $KUBERAY_GEN_RAY_START_CMD"}
	head := BuildHeadPod(c, testOptions())
	hc := &head.Spec.Containers[0]
	if diff := cmp.Diff([]string{"echo hi; $KUBERAY_GEN_RAY_START_CMD"}, hc.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if e, _ := envValue(t, hc, EnvGenRayStartCmd); !strings.HasPrefix(e.Value, "ray start --head") {
		t.Errorf("KUBERAY_GEN_RAY_START_CMD = %q", e.Value)
	}
	if head.Annotations[rayv1.RayOverwriteContainerCmdAnnotationKey] != "true" {
		t.Errorf("annotation not copied: %v", head.Annotations)
	}
}

// TestBuildersArePure checks that building does not modify the cluster and that building twice
// gives the same objects.
func TestBuildersArePure(t *testing.T) {
	c := testCluster()
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)
	c.Spec.AutoscalerOptions = &rayv1.AutoscalerOptions{Version: ptr.To(rayv1.AutoscalerVersionV2), Env: []corev1.EnvVar{{Name: "A", Value: "1"}}}
	c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{RedisAddress: "redis:6379", RedisPassword: &rayv1.RedisCredential{Value: "x"}}
	c.Spec.HeadGroupSpec.Resources = map[string]string{"CPU": "2"}
	c.Spec.HeadGroupSpec.Labels = map[string]string{"a": "b"}
	c.Spec.HeadGroupSpec.EnableIngress = ptr.To(true)
	c.Spec.HeadGroupSpec.HeadService = &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "x", Port: 1}}}}
	c.Spec.WorkerGroupSpecs[0].NumOfHosts = 2
	before := c.DeepCopy()
	o := testOptions()

	build := func() []any {
		serve, _ := BuildServeService(c)
		return []any{
			BuildHeadPod(c, o), BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{ReplicaName: "r", ReplicaIndex: ptr.To[int32](0)}, o),
			BuildHeadService(c, o), BuildHeadlessWorkerService(c), serve, BuildIngress(c),
			BuildAutoscalerServiceAccount(c), BuildAutoscalerRole(c), BuildAutoscalerRoleBinding(c),
			BuildRedisCleanupJob(c, o), BuildGCSStoragePVC(c), BuildAuthSecret(c, "t"),
		}
	}
	first, second := build(), build()
	if !equality.Semantic.DeepEqual(before, c) {
		t.Errorf("building modified the RayCluster: %s", cmp.Diff(before, c))
	}
	for i := range first {
		if !equality.Semantic.DeepEqual(first[i], second[i]) {
			t.Errorf("builder %d is not deterministic: %s", i, cmp.Diff(first[i], second[i]))
		}
	}
	// Mutating an output must not reach the input.
	head := first[0].(*corev1.Pod)
	head.Spec.Containers[0].Env[0].Value = "changed"
	head.Labels["x"] = "y"
	if !equality.Semantic.DeepEqual(before, c) {
		t.Errorf("output aliases the RayCluster")
	}
}

func TestNoContainersDoesNotPanic(t *testing.T) {
	c := testCluster()
	c.Spec.HeadGroupSpec.Template.Spec.Containers = nil
	c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers = nil
	if pod := BuildHeadPod(c, testOptions()); pod.Labels[rayv1.RayNodeTypeLabelKey] != "head" {
		t.Errorf("head pod without containers lost its labels")
	}
	if pod := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, testOptions()); pod.Labels[rayv1.RayNodeTypeLabelKey] != "worker" {
		t.Errorf("worker pod without containers lost its labels")
	}
	_ = BuildHeadService(c, testOptions())
}

func TestPodDefaults(t *testing.T) {
	c := testCluster()
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)
	c.Spec.HeadGroupSpec.Template.Labels = map[string]string{"team": "mine"}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SHARED", Value: "user"}}
	o := testOptions()
	o.PodDefaults = PodDefaults{
		HeadSidecarContainers:   []corev1.Container{{Name: "head-side", Image: "busybox"}},
		WorkerSidecarContainers: []corev1.Container{{Name: "worker-side", Image: "busybox"}},
		ContainerEnvs:           []corev1.EnvVar{{Name: "SHARED", Value: "operator"}, {Name: "ONLY_OPERATOR", Value: "1"}},
		Labels:                  map[string]string{"team": "operator", "cost-center": "ray", rayv1.RayNodeTypeLabelKey: "bogus"},
		Annotations:             map[string]string{"note": "operator"},
	}
	head := BuildHeadPod(c, o)
	names := func(p *corev1.Pod) []string {
		var out []string
		for _, ctr := range p.Spec.Containers {
			out = append(out, ctr.Name)
		}
		return out
	}
	if got := names(head); !slices.Equal(got, []string{"ray-head", AutoscalerContainerName, "head-side"}) {
		t.Errorf("head containers = %v, want the sidecar after the autoscaler", got)
	}
	hc := &head.Spec.Containers[0]
	mustEnv(t, hc, "SHARED", "user")
	mustEnv(t, hc, "ONLY_OPERATOR", "1")
	noEnv(t, &head.Spec.Containers[1], "ONLY_OPERATOR")
	if head.Labels["team"] != "mine" || head.Labels["cost-center"] != "ray" || head.Labels[rayv1.RayNodeTypeLabelKey] != "head" {
		t.Errorf("head labels = %v: template and operator labels must win over defaults", head.Labels)
	}
	if head.Annotations["note"] != "operator" {
		t.Errorf("head annotations = %v", head.Annotations)
	}

	w := BuildWorkerPod(c, &c.Spec.WorkerGroupSpecs[0], WorkerPodParams{}, o)
	if got := names(w); len(got) != 2 || got[1] != "worker-side" {
		t.Errorf("worker containers = %v, want the worker sidecar only", got)
	}
	mustEnv(t, &w.Spec.Containers[0], "ONLY_OPERATOR", "1")
	if w.Labels["team"] != "operator" || w.Annotations["note"] != "operator" {
		t.Errorf("worker labels %v / annotations %v lack the defaults", w.Labels, w.Annotations)
	}
	if o.PodDefaults.HeadSidecarContainers[0].Env != nil || len(o.PodDefaults.ContainerEnvs) != 2 {
		t.Error("building a pod changed the operator's defaults")
	}
	if PodTemplateHash(c, rayv1.HeadGroupName) != head.Annotations[PodTemplateHashAnnotationKey] {
		t.Error("pod defaults changed the pod-template hash; operator options must not mark pods outdated")
	}
}
