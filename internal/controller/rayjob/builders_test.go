package rayjob

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

func TestValidate(t *testing.T) {
	cases := map[string]struct {
		job       *rayv1.RayJob
		cfg       func(*Config)
		wantField string // "" = valid
	}{
		"valid":                            {job: makeJob("rj").obj()},
		"runtimeEnvYAML not YAML":          {job: makeJob("rj").with(func(j *rayv1.RayJob) { j.Spec.RuntimeEnvYAML = "pip: [a" }).obj(), wantField: "spec.runtimeEnvYAML"},
		"runtimeEnvYAML not a mapping":     {job: makeJob("rj").with(func(j *rayv1.RayJob) { j.Spec.RuntimeEnvYAML = "- a\n- b" }).obj(), wantField: "spec.runtimeEnvYAML"},
		"entrypointResources not JSON":     {job: makeJob("rj").with(func(j *rayv1.RayJob) { j.Spec.EntrypointResources = `{"a":` }).obj(), wantField: "spec.entrypointResources"},
		"entrypoint required in HTTPMode":  {job: makeJob("rj").mode(rayv1.HTTPMode).with(func(j *rayv1.RayJob) { j.Spec.Entrypoint = "" }).obj(), wantField: "spec.entrypoint"},
		"no entrypoint in InteractiveMode": {job: makeJob("rj").mode(rayv1.InteractiveMode).with(func(j *rayv1.RayJob) { j.Spec.Entrypoint = "" }).obj()},
		"Waiting outside InteractiveMode":  {job: makeJob("rj").state(rayv1.JobDeploymentStatusWaiting).obj(), wantField: "status.jobDeploymentStatus"},
		"submitterConfig in SidecarMode": {job: makeJob("rj").mode(rayv1.SidecarMode).with(func(j *rayv1.RayJob) {
			j.Spec.SubmitterConfig = &rayv1.SubmitterConfig{BackoffLimit: int32p(1)}
		}).obj(), wantField: "spec.submitterConfig"},
		"head without containers": {job: makeJob("rj").with(func(j *rayv1.RayJob) {
			j.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers = nil
		}).obj(), wantField: "spec.rayClusterSpec.headGroupSpec.template.spec.containers"},
		"worker group without containers": {job: makeJob("rj").with(func(j *rayv1.RayJob) {
			j.Spec.RayClusterSpec.WorkerGroupSpecs[0].Template.Spec.Containers = []corev1.Container{}
		}).obj(), wantField: "spec.rayClusterSpec.workerGroupSpecs[0].template.spec.containers"},
		"deletionStrategy without its feature gate": {
			job: makeJob("rj").with(func(j *rayv1.RayJob) { j.Spec.DeletionStrategy = &rayv1.DeletionStrategy{} }).obj(),
			cfg: func(c *Config) {
				g := features.New()
				if err := g.Set("RayJobDeletionPolicy=false"); err != nil {
					panic(err)
				}
				c.FeatureGates = g
			},
			wantField: "spec.deletionStrategy",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			vf := validate(tc.job, cfg)
			switch {
			case tc.wantField == "" && vf != nil:
				t.Fatalf("validate = %v, want valid", vf.err)
			case tc.wantField != "" && vf == nil:
				t.Fatalf("validate = valid, want an error naming %s", tc.wantField)
			case tc.wantField != "" && !strings.Contains(vf.err.Error(), tc.wantField):
				t.Fatalf("validate = %v, want it to name %s", vf.err, tc.wantField)
			}
		})
	}
}

func TestBuildSubmitterJob(t *testing.T) {
	job := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).attempt("rj-ccccc", "rj-jjjjj").with(func(j *rayv1.RayJob) {
		j.Spec.RuntimeEnvYAML = "env_vars:\n  A: \"it's\"\n"
		j.Spec.Metadata = map[string]string{"owner": "me"}
		j.Spec.EntrypointNumCPUs = 1
		j.Spec.EntrypointResources = `{"TPU": 1}`
	}).obj()
	sj, err := BuildSubmitterJob(job, "img:1")
	if err != nil {
		t.Fatal(err)
	}
	if sj.Name != "rj" || *sj.Spec.BackoffLimit != DefaultSubmitterBackoffLimit || !metav1.IsControlledBy(sj, job) {
		t.Fatalf("job meta = %s backoff %d owners %v", sj.Name, *sj.Spec.BackoffLimit, sj.OwnerReferences)
	}
	pod := sj.Spec.Template
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever || pod.Labels[rayv1.RayOriginatedFromCRNameLabelKey] != "rj" {
		t.Fatalf("pod template = %+v", pod)
	}
	ctr := pod.Spec.Containers[0]
	if ctr.Name != SubmitterContainerName || ctr.Image != "img:1" {
		t.Fatalf("container = %s %s", ctr.Name, ctr.Image)
	}
	if diff := cmp.Diff([]string{"/bin/bash", "-ce", "--"}, ctr.Command); diff != "" {
		t.Fatalf("command (-want,+got):\n%s", diff)
	}
	addr := "http://rj-ccccc-head-svc.ns.svc.cluster.local:8265"
	want := strings.Join([]string{
		`until ray job list --address ` + addr + ` >/dev/null 2>&1 ; do echo "Waiting for the Ray dashboard at ` + addr + `" ; sleep 2 ; done`,
		`if ! ray job status --address ` + addr + ` 'rj-jjjjj' >/dev/null 2>&1 ; then ray job submit --address ` + addr +
			` --no-wait --runtime-env-json '{"env_vars":{"A":"it'\''s"}}' --metadata-json '{"owner":"me"}' --submission-id 'rj-jjjjj'` +
			` --entrypoint-num-cpus 1.000000 --entrypoint-resources '{"TPU": 1}' -- python main.py ; fi`,
		`ray job logs --address ` + addr + ` --follow 'rj-jjjjj'`,
	}, "\n")
	if diff := cmp.Diff([]string{want}, ctr.Args); diff != "" {
		t.Fatalf("script (-want,+got):\n%s", diff)
	}
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	if env[EnvDashboardAddress] != "rj-ccccc-head-svc.ns.svc.cluster.local:8265" || env[EnvSubmissionID] != "rj-jjjjj" || env["PYTHONUNBUFFERED"] != "1" {
		t.Fatalf("env = %v", env)
	}

	// A custom pod template keeps its own command and gets the env; submitterConfig sets the backoff.
	job.Spec.SubmitterPodTemplate = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mine", Image: "custom", Command: []string{"run"}}}}}
	job.Spec.SubmitterConfig = &rayv1.SubmitterConfig{BackoffLimit: int32p(0)}
	sj, err = BuildSubmitterJob(job, "img:1")
	if err != nil {
		t.Fatal(err)
	}
	c := sj.Spec.Template.Spec.Containers[0]
	if c.Image != "custom" || c.Command[0] != "run" || len(c.Args) != 0 || len(c.Env) != 3 || *sj.Spec.BackoffLimit != 0 {
		t.Fatalf("custom submitter = %+v backoff %d", c, *sj.Spec.BackoffLimit)
	}
}

func TestBuildRayClusterSidecar(t *testing.T) {
	job := makeJob("rj").mode(rayv1.SidecarMode).attempt("rj-ccccc", "rj-jjjjj").with(func(j *rayv1.RayJob) {
		j.Labels = map[string]string{"team": "a"}
	}).obj()
	rc, err := BuildRayCluster(job)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Name != "rj-ccccc" || rc.Labels["team"] != "a" || rc.Labels[rayv1.RayJobSubmissionModeLabelKey] != "SidecarMode" ||
		rc.Annotations[rayv1.DisableProvisionedHeadRestartAnnotationKey] != "true" || !metav1.IsControlledBy(rc, job) {
		t.Fatalf("cluster meta = %+v", rc.ObjectMeta)
	}
	head := rc.Spec.HeadGroupSpec.Template.Spec
	if head.RestartPolicy != corev1.RestartPolicyNever || len(head.Containers) != 2 || head.Containers[1].Name != SubmitterContainerName {
		t.Fatalf("head = %+v", head)
	}
	script := head.Containers[1].Args[0]
	if !strings.Contains(script, "ray job submit --address http://127.0.0.1:8265 --submission-id 'rj-jjjjj' -- python main.py") || strings.Contains(script, "--no-wait") {
		t.Fatalf("sidecar script = %s", script)
	}
	if job.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.RestartPolicy != "" {
		t.Fatal("BuildRayCluster changed the RayJob's spec")
	}
}

func TestLogTail(t *testing.T) {
	long := strings.Repeat("x", 100) + "\n" + strings.Repeat("é", 3000) + "\nend"
	tail := logTail(long, LogTailBytes)
	if len(tail) > LogTailBytes || !strings.HasSuffix(tail, "\nend") || !strings.HasPrefix(tail, "é") {
		t.Fatalf("tail of %d bytes starts %q", len(tail), tail[:4])
	}
	for _, ch := range splitNote(tail, 1000) {
		if len(ch) > 1000 || !strings.HasPrefix(ch, "é") && !strings.HasPrefix(ch, "\n") {
			t.Fatalf("chunk of %d bytes starts %q", len(ch), ch[:2])
		}
	}
	if got := logTail("short", LogTailBytes); got != "short" {
		t.Fatalf("logTail(short) = %q", got)
	}
}

func TestClassifyHeadPod(t *testing.T) {
	cfg := DefaultConfig()
	cases := map[string]struct {
		head headPodFacts
		now  time.Time
		want rayv1.JobFailedReason
	}{
		"healthy": {head: headPod(nil), now: t0},
		"no pod":  {head: headPodFacts{}, now: t0},
		"failed":  {head: headPod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), now: t0, want: rayv1.HeadPodFailed},
		"init container keeps failing": {head: headPod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", RestartCount: 3,
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
		}), now: t0, want: rayv1.HeadPodInitContainerFailed},
		"init container failed with restartPolicy Never": {head: headPod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodFailed
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}}
		}), now: t0, want: rayv1.HeadPodInitContainerFailed},
		"crash loop": {head: headPod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].RestartCount = 5
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
		}), now: t0, want: rayv1.HeadPodCrashLoopBackOff},
		"a sidecar restarting is not the Ray container": {head: headPod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "other", RestartCount: 9})
		}), now: t0},
		"image pull past the timeout": {head: headPod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}
		}), now: t0.Add(DefaultHeadPodPendingTimeout), want: rayv1.HeadPodImagePullFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := classifyHeadPod(tc.head, tc.now, cfg)
			if v.reason != tc.want {
				t.Fatalf("reason = %q (%s), want %q", v.reason, v.message, tc.want)
			}
		})
	}
}
