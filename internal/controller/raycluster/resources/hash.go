package resources

import (
	"crypto/sha1" //nolint:gosec // not used for security: mirrors KubeRay's spec hash so values stay comparable
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// ClusterSpecHash hashes the parts of the spec that shape pods, for the Recreate upgrade strategy:
// worker counts (replicas, min, max, workersToDelete), the upgrade strategy itself, and the
// tolerations and scheduling gates of every template (which Kueue injects on admission) are left
// out. The algorithm (JSON, SHA-1, first 8 bytes as a decimal string, base32hex) is KubeRay's.
func ClusterSpecHash(c *rayv1.RayCluster) string {
	spec := c.Spec.DeepCopy()
	spec.UpgradeStrategy = nil
	stripSchedulingInjections(&spec.HeadGroupSpec.Template.Spec)
	for i := range spec.WorkerGroupSpecs {
		g := &spec.WorkerGroupSpecs[i]
		g.Replicas, g.MinReplicas, g.MaxReplicas = nil, nil, nil
		g.ScaleStrategy.WorkersToDelete = nil
		stripSchedulingInjections(&g.Template.Spec)
	}
	return jsonHash(spec)
}

func stripSchedulingInjections(spec *corev1.PodSpec) {
	spec.Tolerations = nil
	spec.SchedulingGates = nil
}

// jsonHash is KubeRay's GenerateJsonHash: SHA-1 of the JSON, first 8 bytes as a big-endian
// integer, its decimal string base32hex-encoded.
func jsonHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unmarshalable values (channels, NaN) fail; API types never contain them.
		return ""
	}
	sum := sha1.Sum(b) //nolint:gosec // see import
	n := binary.BigEndian.Uint64(sum[:8])
	return base32.HexEncoding.EncodeToString([]byte(strconv.FormatUint(n, 10)))
}

// podHashInput is everything a pod of one group is built from, apart from per-pod identity.
type podHashInput struct {
	Group          string                          `json:"group"`
	Template       corev1.PodTemplateSpec          `json:"template"`
	RayStartParams map[string]string               `json:"rayStartParams,omitempty"`
	Resources      map[string]string               `json:"resources,omitempty"`
	Labels         map[string]string               `json:"labels,omitempty"`
	NumOfHosts     int32                           `json:"numOfHosts,omitempty"`
	RayVersion     string                          `json:"rayVersion,omitempty"`
	Autoscaling    bool                            `json:"autoscaling,omitempty"`
	Autoscaler     *rayv1.AutoscalerOptions        `json:"autoscaler,omitempty"`
	AutoscalerV    rayv1.AutoscalerVersion         `json:"autoscalerVersion,omitempty"`
	GCSFT          *rayv1.GcsFaultToleranceOptions `json:"gcsFT,omitempty"`
	Auth           *rayv1.AuthOptions              `json:"auth,omitempty"`
	TLS            *rayv1.TLSOptions               `json:"tls,omitempty"`
	History        *rayv1.HistoryServerOptions     `json:"history,omitempty"`
	Annotations    map[string]string               `json:"annotations,omitempty"`
	Creator        string                          `json:"creator,omitempty"`
	HeadService    string                          `json:"headService,omitempty"`
	GCSPort        int32                           `json:"gcsPort,omitempty"`
}

// podShapingAnnotations are the RayCluster annotations that change how pods are built.
var podShapingAnnotations = []string{
	rayv1.RayFTEnabledAnnotationKey,
	rayv1.RayExternalStorageNSAnnotationKey,
	rayv1.RayOverwriteContainerCmdAnnotationKey,
	rayv1.EnableServeServiceAnnotationKey,
}

// PodTemplateHash hashes what a pod of the given group (rayv1.HeadGroupName for the head) is built
// from: the group's template, rayStartParams, resources and labels, and the cluster-wide settings
// that reach pods. Replica counts, workersToDelete, suspend and autoscaler-only knobs are left
// out, so scaling never changes it. Operator options are left out too, so restarting the operator
// with different settings does not mark every pod outdated. It returns "" for an unknown group.
func PodTemplateHash(c *rayv1.RayCluster, group string) string {
	in := podHashInput{
		Group:      group,
		RayVersion: c.Spec.RayVersion,
		GCSFT:      c.Spec.GcsFaultToleranceOptions,
		Auth:       c.Spec.AuthOptions,
		TLS:        c.Spec.TLSOptions,
		History:    c.Spec.HistoryServerOptions,
		Creator:    c.Labels[rayv1.RayOriginatedFromCRDLabelKey],
	}
	for _, k := range podShapingAnnotations {
		if v, ok := c.Annotations[k]; ok {
			if in.Annotations == nil {
				in.Annotations = map[string]string{}
			}
			in.Annotations[k] = v
		}
	}
	if AutoscalingEnabled(c) {
		in.AutoscalerV = autoscalerVersion(c)
	}

	if group == rayv1.HeadGroupName {
		h := &c.Spec.HeadGroupSpec
		in.Template, in.RayStartParams, in.Resources, in.Labels = h.Template, h.RayStartParams, h.Resources, h.Labels
		in.Autoscaling = AutoscalingEnabled(c)
		if in.Autoscaling {
			in.Autoscaler = c.Spec.AutoscalerOptions
		}
		// The head's init containers get the head Service address.
		in.HeadService = HeadServiceName(c)
		return shortHash(in)
	}
	for i := range c.Spec.WorkerGroupSpecs {
		g := &c.Spec.WorkerGroupSpecs[i]
		if g.GroupName != group {
			continue
		}
		in.Template, in.RayStartParams, in.Resources, in.Labels = g.Template, g.RayStartParams, g.Resources, g.Labels
		in.NumOfHosts = g.NumOfHosts
		in.HeadService = HeadServiceName(c)
		in.GCSPort = GCSPort(c)
		return shortHash(in)
	}
	return ""
}

// shortHash is the first 8 bytes of the SHA-256 of v's JSON, in hex.
func shortHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
