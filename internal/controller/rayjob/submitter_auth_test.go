package rayjob

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// On a token-auth cluster both submitters carry RAY_AUTH_TOKEN from the cluster's Secret; without
// auth they carry none.
func TestSubmittersCarryTheAuthToken(t *testing.T) {
	tokenOf := func(env []corev1.EnvVar) *corev1.EnvVar {
		for i := range env {
			if env[i].Name == "RAY_AUTH_TOKEN" {
				return &env[i]
			}
		}
		return nil
	}
	job := makeJob("rj").state(rayv1.JobDeploymentStatusInitializing).attempt("rj-ccccc", "rj-jjjjj").obj()
	sj, err := BuildSubmitterJob(job, "img:1")
	if err != nil {
		t.Fatal(err)
	}
	if e := tokenOf(sj.Spec.Template.Spec.Containers[0].Env); e != nil {
		t.Fatalf("no auth, yet the submitter has %+v", e)
	}

	job.Spec.RayClusterSpec.AuthOptions = &rayv1.AuthOptions{Mode: rayv1.AuthModeToken}
	sj, err = BuildSubmitterJob(job, "img:1")
	if err != nil {
		t.Fatal(err)
	}
	sidecar, err := BuildSidecarSubmitter(job, "img:1", 8265)
	if err != nil {
		t.Fatal(err)
	}
	for what, env := range map[string][]corev1.EnvVar{"K8sJobMode": sj.Spec.Template.Spec.Containers[0].Env, "SidecarMode": sidecar.Env} {
		e := tokenOf(env)
		if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != "rj-ccccc" || e.ValueFrom.SecretKeyRef.Key != "auth_token" {
			t.Errorf("%s submitter RAY_AUTH_TOKEN = %+v, want Secret rj-ccccc key auth_token", what, e)
		}
	}
}
