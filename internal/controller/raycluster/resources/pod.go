package resources

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// PodTemplateHashAnnotationKey holds PodTemplateHash on every pod the operator builds; the
// reconciler compares it with the current hash to find pods built from an outdated template.
const PodTemplateHashAnnotationKey = "ray.io/pod-template-hash"

// Sidecar and init container names.
const (
	AutoscalerContainerName = "autoscaler"
	WaitGCSReadyInitName    = "wait-gcs-ready"
)

// autoscalerCommand is what the autoscaler sidecar runs; the variables are expanded by Kubernetes
// from the container's env.
const autoscalerCommand = "ray kuberay-autoscaler --cluster-name $(RAY_CLUSTER_NAME) --cluster-namespace $(RAY_CLUSTER_NAMESPACE)"

// gcsReadyTimeoutQuiet is how long wait-gcs-ready hides health-check errors before printing them.
const gcsReadyTimeoutQuiet = 120

// gcsReadyTroubleshootingURL is where wait-gcs-ready points once the wait gets long. Its messages
// are KubeRay's word for word, so that log searches and alerts written for KubeRay pods match.
const gcsReadyTroubleshootingURL = "https://github.com/ray-project/kuberay/blob/master/docs/guidance/FAQ.md"

// BuildHeadPod builds the head pod of c. The pod has GenerateName "<cluster>-head-" (or Name
// "<cluster>-head" with Options.DeterministicHeadPodName) and carries the pod-template hash.
func BuildHeadPod(c *rayv1.RayCluster, o Options) *corev1.Pod {
	pod := buildHeadPod(c, o)
	pod.Annotations[PodTemplateHashAnnotationKey] = PodTemplateHash(c, rayv1.HeadGroupName)
	return pod
}

// BuildWorkerPod builds one worker pod of group, with GenerateName "<cluster>-<group>-worker-".
// p carries the replica identity chosen by the reconciler (indexing and multi-host labels).
func BuildWorkerPod(c *rayv1.RayCluster, group *rayv1.WorkerGroupSpec, p WorkerPodParams, o Options) *corev1.Pod {
	pod := buildWorkerPod(c, group, p, o)
	pod.Annotations[PodTemplateHashAnnotationKey] = PodTemplateHash(c, group.GroupName)
	return pod
}

// WorkerPodParams carries the per-pod identity the reconciler chooses for a worker.
type WorkerPodParams struct {
	// ReplicaIndex is the ray.io/worker-group-replica-index label value; nil omits the label.
	ReplicaIndex *int32
	// ReplicaName is the ray.io/worker-group-replica-name shared by the hosts of one multi-host
	// replica; empty omits it and the host index.
	ReplicaName string
	// HostIndex is the ray.io/replica-host-index label value, set together with ReplicaName.
	HostIndex int32
}

// AutoscalingEnabled reports whether the Ray autoscaler runs next to the head.
func AutoscalingEnabled(c *rayv1.RayCluster) bool {
	return c.Spec.EnableInTreeAutoscaling != nil && *c.Spec.EnableInTreeAutoscaling
}

// autoscalerVersion is the explicitly requested autoscaler version, or "".
func autoscalerVersion(c *rayv1.RayCluster) rayv1.AutoscalerVersion {
	if !AutoscalingEnabled(c) || c.Spec.AutoscalerOptions == nil || c.Spec.AutoscalerOptions.Version == nil {
		return ""
	}
	return *c.Spec.AutoscalerOptions.Version
}

// podLabels merges template labels, group labels (which win) and the operator's labels. The
// cluster, node type and group labels are always the operator's; the others only fill gaps.
func podLabels(cluster string, nodeType rayv1.RayNodeType, group string, template, groupLabels map[string]string) map[string]string {
	labels := make(map[string]string, len(template)+len(groupLabels)+7)
	for k, v := range template {
		labels[k] = v
	}
	for k, v := range groupLabels {
		labels[k] = v
	}
	labels[rayv1.RayClusterLabelKey] = cluster
	labels[rayv1.RayNodeTypeLabelKey] = string(nodeType)
	labels[rayv1.RayNodeGroupLabelKey] = group
	setDefault(labels, rayv1.RayIDLabelKey, identifier(cluster, nodeType))
	setDefault(labels, rayv1.RayNodeLabelKey, rayv1.RayNodeLabelValue)
	setDefault(labels, rayv1.KubernetesApplicationNameLabelKey, rayv1.ApplicationName)
	setDefault(labels, rayv1.KubernetesCreatedByLabelKey, rayv1.ComponentName)
	return labels
}

// newPod starts a pod from a template: deep copy, namespace, labels, annotations, owner.
func newPod(c *rayv1.RayCluster, tmpl *corev1.PodTemplateSpec, labels map[string]string) *corev1.Pod {
	t := tmpl.DeepCopy()
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       c.Namespace,
			Labels:          labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: ownerRefs(c),
		},
		Spec: t.Spec,
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if v, ok := c.Annotations[rayv1.RayOverwriteContainerCmdAnnotationKey]; ok {
		pod.Annotations[rayv1.RayOverwriteContainerCmdAnnotationKey] = v
	}
	return pod
}

func overwriteCommand(pod *corev1.Pod) bool {
	return strings.EqualFold(pod.Annotations[rayv1.RayOverwriteContainerCmdAnnotationKey], "true")
}

// serveServiceEnabled reports whether the cluster's pods are members of a serve Service. The head
// starts outside it (a RayService flips its label once Serve is healthy); workers are gated by
// their readiness probe instead.
func serveServiceEnabled(c *rayv1.RayCluster) bool {
	return c.Annotations[rayv1.EnableServeServiceAnnotationKey] == "true"
}

func buildHeadPod(c *rayv1.RayCluster, o Options) *corev1.Pod {
	spec := &c.Spec.HeadGroupSpec
	pod := newPod(c, &spec.Template, podLabels(c.Name, rayv1.HeadNode, rayv1.HeadGroupName, spec.Template.Labels, spec.Labels))
	if o.DeterministicHeadPodName {
		pod.Name = HeadPodName(c)
	} else {
		pod.GenerateName = HeadPodGenerateName(c)
	}
	// Stamped on every head pod, as KubeRay does, whatever the upgrade strategy: switching a
	// cluster to Recreate later then compares against the spec its pods were built from.
	pod.Annotations[rayv1.UpgradeStrategyRecreateHashKey] = ClusterSpecHash(c)
	pod.Annotations[rayv1.KubeRayVersion] = o.OperatorVersion
	if serveServiceEnabled(c) {
		pod.Labels[rayv1.RayClusterServingServiceLabelKey] = "false"
	}
	ctr := rayContainer(&pod.Spec)
	if ctr == nil {
		return pod // rejected by validation; nothing to inject into
	}

	fqdn := HeadServiceFQDN(c, o)
	params := buildRayStartParams(rayStartInput{
		nodeType:       rayv1.HeadNode,
		params:         spec.RayStartParams,
		groupResources: spec.Resources,
		groupLabels:    spec.Labels,
		container:      ctr.Resources,
		autoscaling:    AutoscalingEnabled(c),
		ft:             c.Spec.GcsFaultToleranceOptions,
	})
	rayStart := renderRayStartCommand(rayv1.HeadNode, params)

	configureGCSFaultTolerance(c, rayv1.HeadNode, pod, ctr)
	ensureMetricsPort(ctr)
	setAuthEnv(ctr, c)
	if k8sTokenAuth(c) {
		addVolume(&pod.Spec, rayTokenVolume())
	}
	switch autoscalerVersion(c) {
	case rayv1.AutoscalerVersionV2:
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvEnableAutoscalerV2, Value: "true"})
		// Autoscaler v2 expects a Ray node whose processes died to be replaced, not restarted.
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	case rayv1.AutoscalerVersionV1:
		addEnvIfAbsent(ctr, corev1.EnvVar{Name: EnvEnableAutoscalerV2, Value: "false"})
	}
	addSharedMemoryUnlessPlasma(&pod.Spec, ctr, params)

	if AutoscalingEnabled(c) {
		pod.Spec.ServiceAccountName = HeadServiceAccountName(c)
		sidecar := buildAutoscalerContainer(c, ctr.Image, o)
		pod.Spec.Containers = append(pod.Spec.Containers, sidecar)
		ctr = rayContainer(&pod.Spec) // the append may have moved the slice
		addRayLogs(&pod.Spec, ctr, &pod.Spec.Containers[len(pod.Spec.Containers)-1])
	}
	configureTLS(c, rayv1.HeadNode, &pod.Spec)
	ctr = applyPodDefaults(pod, o.PodDefaults, o.PodDefaults.HeadSidecarContainers)

	setRayContainerCommand(ctr, rayStart, overwriteCommand(pod), o)
	for i := range pod.Spec.InitContainers {
		setInitContainerEnv(&pod.Spec.InitContainers[i], fqdn, HeadServiceName(c))
	}
	setRayContainerEnv(ctr, rayContainerEnvInput{
		nodeType:        rayv1.HeadNode,
		headFQDN:        fqdn,
		headServiceName: HeadServiceName(c),
		gcsPort:         GCSPort(c),
		rayStart:        rayStart,
		creator:         creatorCRD(c, o),
		operatorVersion: o.OperatorVersion,
	})
	if o.EnableProbesInjection {
		setProbes(ctr, probeInput{nodeType: rayv1.HeadNode, params: params, rayVersion: c.Spec.RayVersion})
	}
	return pod
}

func buildWorkerPod(c *rayv1.RayCluster, group *rayv1.WorkerGroupSpec, p WorkerPodParams, o Options) *corev1.Pod {
	pod := newPod(c, &group.Template, podLabels(c.Name, rayv1.WorkerNode, group.GroupName, group.Template.Labels, group.Labels))
	pod.GenerateName = WorkerPodGenerateName(c, group.GroupName)
	if p.ReplicaIndex != nil {
		pod.Labels[rayv1.RayWorkerReplicaIndexKey] = strconv.Itoa(int(*p.ReplicaIndex))
	}
	if p.ReplicaName != "" {
		pod.Labels[rayv1.RayWorkerReplicaNameKey] = p.ReplicaName
		pod.Labels[rayv1.RayHostIndexKey] = strconv.Itoa(int(p.HostIndex))
	}
	if serveServiceEnabled(c) {
		pod.Labels[rayv1.RayClusterServingServiceLabelKey] = "true"
	}
	ctr := rayContainer(&pod.Spec)
	if ctr == nil {
		return pod
	}

	fqdn := HeadServiceFQDN(c, o)
	gcsAddress := fmt.Sprintf("%s:%d", fqdn, GCSPort(c))
	params := buildRayStartParams(rayStartInput{
		nodeType:       rayv1.WorkerNode,
		params:         group.RayStartParams,
		groupResources: group.Resources,
		groupLabels:    group.Labels,
		container:      ctr.Resources,
		headAddress:    gcsAddress,
	})
	rayStart := renderRayStartCommand(rayv1.WorkerNode, params)

	configureGCSFaultTolerance(c, rayv1.WorkerNode, pod, ctr)
	ensureMetricsPort(ctr)
	setAuthEnv(ctr, c)
	if k8sTokenAuth(c) {
		addVolume(&pod.Spec, rayTokenVolume())
	}
	if autoscalerVersion(c) == rayv1.AutoscalerVersionV2 {
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	if o.EnableInitContainerInjection {
		// Built from the Ray container as configured so far, so it carries the same auth settings.
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, waitGCSReadyContainer(ctr, gcsAddress, o))
		ctr = rayContainer(&pod.Spec)
	}
	configureTLS(c, rayv1.WorkerNode, &pod.Spec)
	addSharedMemoryUnlessPlasma(&pod.Spec, ctr, params)
	ctr = applyPodDefaults(pod, o.PodDefaults, o.PodDefaults.WorkerSidecarContainers)

	setRayContainerCommand(ctr, rayStart, overwriteCommand(pod), o)
	for i := range pod.Spec.InitContainers {
		setInitContainerEnv(&pod.Spec.InitContainers[i], fqdn, HeadServiceName(c))
	}
	setRayContainerEnv(ctr, rayContainerEnvInput{
		nodeType:        rayv1.WorkerNode,
		headFQDN:        fqdn,
		headServiceName: HeadServiceName(c),
		gcsPort:         GCSPort(c),
		rayStart:        rayStart,
		creator:         creatorCRD(c, o),
		operatorVersion: o.OperatorVersion,
	})
	if o.EnableProbesInjection {
		setProbes(ctr, probeInput{nodeType: rayv1.WorkerNode, params: params, rayVersion: c.Spec.RayVersion})
	}
	return pod
}

// applyPodDefaults adds the operator's configured pod defaults: labels, annotations and Ray
// container env vars the pod does not set yet, and the sidecars after the pod's own containers. It
// returns the Ray container, which the append may have moved.
func applyPodDefaults(pod *corev1.Pod, d PodDefaults, sidecars []corev1.Container) *corev1.Container {
	for k, v := range d.Labels {
		setDefault(pod.Labels, k, v)
	}
	for k, v := range d.Annotations {
		setDefault(pod.Annotations, k, v)
	}
	for _, s := range sidecars {
		pod.Spec.Containers = append(pod.Spec.Containers, *s.DeepCopy())
	}
	ctr := rayContainer(&pod.Spec)
	for _, e := range d.ContainerEnvs {
		addEnvIfAbsent(ctr, *e.DeepCopy())
	}
	return ctr
}

// addSharedMemoryUnlessPlasma adds the /dev/shm volume unless Ray was told to keep its object
// store elsewhere.
func addSharedMemoryUnlessPlasma(spec *corev1.PodSpec, ctr *corev1.Container, params map[string]string) {
	if _, ok := params[paramPlasmaDirectory]; ok {
		return
	}
	addSharedMemory(spec, ctr)
}

// waitGCSReadyContainer blocks a worker until the head's GCS answers health checks, so that
// "ray start" does not give up on a head that is still starting. It reuses the Ray container's
// image, security context, env and mounts (TLS and auth settings live there).
func waitGCSReadyContainer(ray *corev1.Container, gcsAddress string, o Options) corev1.Container {
	r := ray.DeepCopy()
	script := fmt.Sprintf(`SECONDS=0
while true; do
  if (( SECONDS <= %[2]d )); then
    if ray health-check --address %[1]s > /dev/null 2>&1; then
      echo "GCS is ready."
      break
    fi
    echo "$SECONDS seconds elapsed: Waiting for GCS to be ready."
  else
    if ray health-check --address %[1]s; then
      echo "GCS is ready. Any error messages above can be safely ignored."
      break
    fi
    echo "$SECONDS seconds elapsed: Still waiting for GCS to be ready. For troubleshooting, refer to the FAQ at %[3]s."
  fi
  sleep 5
done`, gcsAddress, gcsReadyTimeoutQuiet, gcsReadyTroubleshootingURL)
	return corev1.Container{
		Name:            WaitGCSReadyInitName,
		Image:           r.Image,
		ImagePullPolicy: r.ImagePullPolicy,
		Command:         []string{shellCommand, shellFlag(o), "--"},
		Args:            []string{script},
		SecurityContext: r.SecurityContext,
		Env:             r.Env,
		VolumeMounts:    r.VolumeMounts,
		Resources:       fixedResources("200m", "256Mi"),
	}
}

// buildAutoscalerContainer builds the autoscaler sidecar of the head, with autoscalerOptions
// applied: resources, image, pull policy, security context, command and args replace the
// defaults; env, envFrom and volume mounts are added.
func buildAutoscalerContainer(c *rayv1.RayCluster, rayImage string, o Options) corev1.Container {
	ctr := corev1.Container{
		Name:            AutoscalerContainerName,
		Image:           rayImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{shellCommand, shellFlag(o), "--"},
		Args:            []string{autoscalerCommand},
		Env: []corev1.EnvVar{
			fieldEnv(EnvRayClusterName, clusterNameFieldPath),
			fieldEnv(EnvRayClusterNamespace, podNamespaceFieldPath),
			fieldEnv(EnvHeadPodName, podNameFieldPath),
			{Name: EnvKubeRayCRDVersion, Value: rayv1.GroupVersion.Version},
			{Name: EnvGenAutoscalerStartCmd, Value: autoscalerCommand},
		},
		Resources: fixedResources("500m", "512Mi"),
	}
	if opts := c.Spec.AutoscalerOptions; opts != nil {
		opts = opts.DeepCopy()
		if opts.Resources != nil {
			ctr.Resources = *opts.Resources
		}
		if opts.Image != nil {
			ctr.Image = *opts.Image
		}
		if opts.ImagePullPolicy != nil {
			ctr.ImagePullPolicy = *opts.ImagePullPolicy
		}
		if opts.SecurityContext != nil {
			ctr.SecurityContext = opts.SecurityContext
		}
		if len(opts.Command) > 0 {
			ctr.Command = opts.Command
		}
		if len(opts.Args) > 0 {
			ctr.Args = opts.Args
		}
		ctr.Env = append(ctr.Env, opts.Env...)
		ctr.EnvFrom = append(ctr.EnvFrom, opts.EnvFrom...)
		ctr.VolumeMounts = append(ctr.VolumeMounts, opts.VolumeMounts...)
	}
	setAuthEnv(&ctr, c)
	return ctr
}
