package resources

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Environment variables the operator sets on Ray containers.
const (
	EnvRayClusterName          = "RAY_CLUSTER_NAME"
	EnvRayClusterNamespace     = "RAY_CLUSTER_NAMESPACE"
	EnvRayCloudInstanceID      = "RAY_CLOUD_INSTANCE_ID"
	EnvRayNodeTypeName         = "RAY_NODE_TYPE_NAME"
	EnvGenRayStartCmd          = "KUBERAY_GEN_RAY_START_CMD"
	EnvFQRayIP                 = "FQ_RAY_IP"
	EnvRayIP                   = "RAY_IP"
	EnvRayPort                 = "RAY_PORT"
	EnvRayAddress              = "RAY_ADDRESS"
	EnvUsageStatsKubeRayInUse  = "RAY_USAGE_STATS_KUBERAY_IN_USE"
	EnvUsageStatsExtraTags     = "RAY_USAGE_STATS_EXTRA_TAGS"
	EnvDashboardK8sDiskUsage   = "RAY_DASHBOARD_ENABLE_K8S_DISK_USAGE"
	EnvTaskWaitForDeathInfo    = "RAY_timeout_ms_task_wait_for_death_info"
	EnvGCSServerRequestTimeout = "RAY_gcs_server_request_timeout_seconds"
	EnvServeKVTimeout          = "RAY_SERVE_KV_TIMEOUT_S"
	EnvEnableAutoscalerV2      = "RAY_enable_autoscaler_v2"
	EnvGCSReconnectTimeout     = "RAY_gcs_rpc_server_reconnect_timeout_s"
	EnvExternalStorageNS       = "RAY_external_storage_namespace"
	EnvRedisAddress            = "RAY_REDIS_ADDRESS"
	EnvRedisPassword           = "REDIS_PASSWORD"
	EnvRedisUsername           = "REDIS_USERNAME"
	EnvGCSStorage              = "RAY_gcs_storage"
	EnvGCSStoragePath          = "RAY_gcs_storage_path"
	EnvAuthMode                = "RAY_AUTH_MODE"
	EnvAuthToken               = "RAY_AUTH_TOKEN"
	EnvEnableK8sTokenAuth      = "RAY_ENABLE_K8S_TOKEN_AUTH"
	EnvHeadPodName             = "RAY_HEAD_POD_NAME"
	EnvKubeRayCRDVersion       = "KUBERAY_CRD_VER"
	EnvGenAutoscalerStartCmd   = "KUBERAY_GEN_AUTOSCALER_START_CMD"
	EnvRedisDBConnectRetries   = "RAY_redis_db_connect_retries"
	EnvRedisDBConnectWaitMs    = "RAY_redis_db_connect_wait_milliseconds"
)

const (
	localhost                    = "127.0.0.1"
	defaultWorkerGCSReconnectS   = "600"
	AuthTokenSecretKey           = "auth_token"
	clusterNameFieldPath         = "metadata.labels['" + rayv1.RayClusterLabelKey + "']"
	groupNameFieldPath           = "metadata.labels['" + rayv1.RayNodeGroupLabelKey + "']"
	podNameFieldPath             = "metadata.name"
	podNamespaceFieldPath        = "metadata.namespace"
	rayServiceTaskWaitForDeathMs = "0"
	rayServiceGCSRequestTimeoutS = "5"
	rayServiceServeKVTimeoutS    = "5"
)

func envExists(env []corev1.EnvVar, name string) bool {
	return slices.ContainsFunc(env, func(e corev1.EnvVar) bool { return e.Name == name })
}

// addEnvIfAbsent appends e unless the container already defines a variable of that name; the
// user's value wins.
func addEnvIfAbsent(ctr *corev1.Container, e corev1.EnvVar) {
	if !envExists(ctr.Env, e.Name) {
		ctr.Env = append(ctr.Env, e)
	}
}

// setEnv appends e after removing any variable of the same name; the operator's value wins.
func setEnv(ctr *corev1.Container, e corev1.EnvVar) {
	ctr.Env = slices.DeleteFunc(ctr.Env, func(x corev1.EnvVar) bool { return x.Name == e.Name })
	ctr.Env = append(ctr.Env, e)
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: path},
	}}
}

// rayContainerEnvInput is what the Ray container's generated variables are computed from.
type rayContainerEnvInput struct {
	nodeType        rayv1.RayNodeType
	headFQDN        string
	headServiceName string
	gcsPort         int32
	rayStart        string
	creator         rayv1.CRDType
	operatorVersion string
}

// setRayContainerEnv adds the variables every Ray container gets: identity of the node, the
// generated start command, how to reach the GCS, usage-stats tags, and RayService timeouts.
func setRayContainerEnv(ctr *corev1.Container, in rayContainerEnvInput) {
	if in.nodeType == rayv1.WorkerNode {
		setEnv(ctr, corev1.EnvVar{Name: EnvFQRayIP, Value: in.headFQDN})
		// Deprecated short form of FQ_RAY_IP, kept for scripts written against KubeRay.
		setEnv(ctr, corev1.EnvVar{Name: EnvRayIP, Value: in.headServiceName})
	}
	setEnv(ctr, fieldEnv(EnvRayClusterName, clusterNameFieldPath))
	setEnv(ctr, fieldEnv(EnvRayClusterNamespace, podNamespaceFieldPath))
	setEnv(ctr, fieldEnv(EnvRayCloudInstanceID, podNameFieldPath))
	setEnv(ctr, fieldEnv(EnvRayNodeTypeName, groupNameFieldPath))
	setEnv(ctr, corev1.EnvVar{Name: EnvGenRayStartCmd, Value: in.rayStart})

	port := strconv.Itoa(int(in.gcsPort))
	addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvRayPort, Value: port})
	host := localhost
	if in.nodeType == rayv1.WorkerNode {
		host = in.headFQDN
	}
	addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvRayAddress, Value: host + ":" + port})
	addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvUsageStatsKubeRayInUse, Value: "1"})
	addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvDashboardK8sDiskUsage, Value: "1"})
	if in.nodeType == rayv1.HeadNode {
		addEnvIfAbsent(ctr, corev1.EnvVar{
			Name:  EnvUsageStatsExtraTags,
			Value: fmt.Sprintf("kuberay_version=%s;kuberay_crd=%s", in.operatorVersion, in.creator),
		})
	}
	if in.creator == rayv1.RayServiceCRD {
		// Serve needs to notice a dead head quickly to fail over.
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvTaskWaitForDeathInfo, Value: rayServiceTaskWaitForDeathMs})
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvGCSServerRequestTimeout, Value: rayServiceGCSRequestTimeoutS})
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvServeKVTimeout, Value: rayServiceServeKVTimeoutS})
	}
}

// setInitContainerEnv gives an init container the head address, so that user init containers can
// wait for the head too.
func setInitContainerEnv(ctr *corev1.Container, headFQDN, headServiceName string) {
	setEnv(ctr, corev1.EnvVar{Name: EnvFQRayIP, Value: headFQDN})
	setEnv(ctr, corev1.EnvVar{Name: EnvRayIP, Value: headServiceName})
}

// authEnabled reports whether Ray token authentication is on.
func authEnabled(c *rayv1.RayCluster) bool {
	return c.Spec.AuthOptions != nil && c.Spec.AuthOptions.Mode == rayv1.AuthModeToken
}

// k8sTokenAuth reports whether token authentication delegates to Kubernetes TokenReview.
func k8sTokenAuth(c *rayv1.RayCluster) bool {
	return authEnabled(c) && c.Spec.AuthOptions.EnableK8sTokenAuth != nil && *c.Spec.AuthOptions.EnableK8sTokenAuth
}

// UsesAuthTokenSecret reports whether the cluster's token lives in a Secret (AuthSecretName, key
// AuthTokenSecretKey): token authentication without Kubernetes token delegation.
func UsesAuthTokenSecret(c *rayv1.RayCluster) bool {
	return authEnabled(c) && !k8sTokenAuth(c)
}

// AuthTokenEnvVar is RAY_AUTH_TOKEN read from the cluster's auth Secret: what Ray containers and
// RayJob submitters use to authenticate.
func AuthTokenEnvVar(c *rayv1.RayCluster) corev1.EnvVar {
	return corev1.EnvVar{Name: EnvAuthToken, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: AuthSecretName(c)},
			Key:                  AuthTokenSecretKey,
		},
	}}
}

// AuthSecretName is the Secret holding the cluster's auth token (key "auth_token"): the user's
// authOptions.secretName or "<cluster>".
func AuthSecretName(c *rayv1.RayCluster) string {
	if c.Spec.AuthOptions != nil && c.Spec.AuthOptions.SecretName != nil && *c.Spec.AuthOptions.SecretName != "" {
		return *c.Spec.AuthOptions.SecretName
	}
	return c.Name
}

// setAuthEnv adds the token-authentication variables (and, for Kubernetes token auth, the
// projected token mount) to a container. It does nothing when authentication is off.
func setAuthEnv(ctr *corev1.Container, c *rayv1.RayCluster) {
	if !authEnabled(c) {
		return
	}
	addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvAuthMode, Value: string(rayv1.AuthModeToken)})
	if k8sTokenAuth(c) {
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvEnableK8sTokenAuth, Value: "true"})
		addVolumeMount(ctr, corev1.VolumeMount{Name: rayTokenVolumeName, MountPath: rayTokenMountPath, ReadOnly: true})
		return
	}
	addEnvIfAbsent(ctr, AuthTokenEnvVar(c))
}
