package resources

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Mutual TLS between Ray nodes (spec.tlsOptions, RayClusterMTLS gate): KubeRay mounts the
// cert-manager Secret of the node's role and points Ray's TLS variables at it, as described in
// https://docs.ray.io/en/latest/ray-core/configure.html#tls-authentication.
const (
	// TLSVolumeName is the Secret volume holding tls.crt, tls.key and ca.crt.
	TLSVolumeName = "ray-tls"
	// TLSMountPath is where the TLS volume is mounted in every container that talks to Ray.
	TLSMountPath = "/etc/ray/tls"
	// WaitForTLSIPSANInitName is the init container that waits until the node's certificate
	// lists the pod's IP.
	WaitForTLSIPSANInitName = "wait-for-tls-ip-san"

	EnvUseTLS        = "RAY_USE_TLS"
	EnvTLSServerCert = "RAY_TLS_SERVER_CERT"
	EnvTLSServerKey  = "RAY_TLS_SERVER_KEY"
	EnvTLSCACert     = "RAY_TLS_CA_CERT"

	headTLSSecretPrefix   = "ray-head-secret-"
	workerTLSSecretPrefix = "ray-worker-secret-"
)

// TLSEnabled reports whether the cluster asks for mutual TLS (spec.tlsOptions.enabled).
func TLSEnabled(c *rayv1.RayCluster) bool {
	return c.Spec.TLSOptions != nil && c.Spec.TLSOptions.Enabled != nil && *c.Spec.TLSOptions.Enabled
}

// TLSSecretName is the Secret cert-manager writes the certificate of one node role into:
// "ray-head-secret-<cluster>" or "ray-worker-secret-<cluster>", KubeRay's names.
func TLSSecretName(c *rayv1.RayCluster, nodeType rayv1.RayNodeType) string {
	if nodeType == rayv1.HeadNode {
		return headTLSSecretPrefix + c.Name
	}
	return workerTLSSecretPrefix + c.Name
}

// TLSEnvNames are the variables the operator sets when TLS is on; users may not set them then.
func TLSEnvNames() []string {
	return []string{EnvUseTLS, EnvTLSServerCert, EnvTLSServerKey, EnvTLSCACert}
}

// setTLSEnv points ctr at the mounted certificates (variables it sets itself are kept).
func setTLSEnv(ctr *corev1.Container) {
	for _, e := range []corev1.EnvVar{
		{Name: EnvUseTLS, Value: "1"},
		{Name: EnvTLSServerCert, Value: TLSMountPath + "/tls.crt"},
		{Name: EnvTLSServerKey, Value: TLSMountPath + "/tls.key"},
		{Name: EnvTLSCACert, Value: TLSMountPath + "/ca.crt"},
	} {
		addEnvIfAbsent(ctr, e)
	}
	if !mountsPath(ctr, TLSMountPath) && !hasMount(ctr, TLSVolumeName) {
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: TLSVolumeName, MountPath: TLSMountPath, ReadOnly: true})
	}
}

func hasMount(ctr *corev1.Container, volume string) bool {
	for _, m := range ctr.VolumeMounts {
		if m.Name == volume {
			return true
		}
	}
	return false
}

// waitForTLSIPSANScript waits until the certificate lists the pod's IP: the certificate's IP SANs
// follow the pods, and a peer checking the certificate against the IP it dialled would refuse it
// before then.
var waitForTLSIPSANScript = fmt.Sprintf(`CERT="%s/tls.crt"
if [ -z "${POD_IP}" ]; then
  POD_IP=$(hostname -i 2>/dev/null | awk '{print $1}')
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "openssl not found; cannot verify IP SAN" >&2
  exit 1
fi
echo "Waiting for TLS cert to include IP SAN for ${POD_IP}..."
while true; do
  if openssl x509 -in "${CERT}" -noout -text 2>/dev/null | grep -qE "IP Address:${POD_IP}([^0-9.]|$)"; then
    echo "TLS cert now includes IP SAN for ${POD_IP}"
    exit 0
  fi
  echo "IP SAN for ${POD_IP} not yet in cert, retrying in 5s..."
  sleep 5
done`, TLSMountPath)

// configureTLS mounts the node role's certificate Secret, sets the TLS variables on the Ray
// container, the autoscaler and wait-gcs-ready (not on the user's own init containers), and runs
// wait-for-tls-ip-san first. Nothing is done unless spec.tlsOptions.enabled.
func configureTLS(c *rayv1.RayCluster, nodeType rayv1.RayNodeType, spec *corev1.PodSpec) {
	if !TLSEnabled(c) {
		return
	}
	addVolume(spec, corev1.Volume{Name: TLSVolumeName, VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: TLSSecretName(c, nodeType)},
	}})
	ray := rayContainer(spec)
	setTLSEnv(ray)
	for i := range spec.Containers {
		if spec.Containers[i].Name == AutoscalerContainerName && i != 0 {
			setTLSEnv(&spec.Containers[i])
		}
	}
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == WaitGCSReadyInitName {
			setTLSEnv(&spec.InitContainers[i])
		}
		if spec.InitContainers[i].Name == WaitForTLSIPSANInitName {
			return
		}
	}
	wait := corev1.Container{
		Name:            WaitForTLSIPSANInitName,
		Image:           ray.Image,
		ImagePullPolicy: ray.ImagePullPolicy,
		Command:         []string{"sh", "-c"},
		Args:            []string{waitForTLSIPSANScript},
		SecurityContext: ray.SecurityContext.DeepCopy(),
		Env:             []corev1.EnvVar{fieldEnv("POD_IP", "status.podIP")},
		VolumeMounts:    []corev1.VolumeMount{{Name: TLSVolumeName, MountPath: TLSMountPath, ReadOnly: true}},
		Resources:       fixedResources("50m", "64Mi"),
	}
	spec.InitContainers = append([]corev1.Container{wait}, spec.InitContainers...)
}
