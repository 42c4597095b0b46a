package rayservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// Prober health-checks the Serve proxy of a pod.
type Prober interface {
	// ServeHealthy reports whether the proxy on the pod answers GET /-/healthz on port with 200.
	ServeHealthy(ctx context.Context, pod *corev1.Pod, port int32) bool
}

// HTTPProber calls the pod IP directly, which needs the operator inside the cluster network (as
// KubeRay without --use-kubernetes-proxy).
type HTTPProber struct {
	client *http.Client
}

var _ Prober = (*HTTPProber)(nil)

// NewHTTPProber returns a prober whose requests time out after timeout.
func NewHTTPProber(timeout time.Duration) *HTTPProber {
	return &HTTPProber{client: &http.Client{Timeout: timeout}}
}

// ServeHealthy implements Prober.
func (p *HTTPProber) ServeHealthy(ctx context.Context, pod *corev1.Pod, port int32) bool {
	if pod.Status.PodIP == "" {
		return false
	}
	u := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port))) + "/-/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == http.StatusOK
}

// maxParallelProbes bounds the concurrent health checks of one reconcile.
const maxParallelProbes = 8

// reconcileServeLabels gives every pod of the active and pending clusters the label
// ray.io/serve=true while its proxy answers its health check, and "false" otherwise (always
// "false" for the head with excludeHeadPodFromServeSvc). The serve Service selects the label, so
// a pod without a working proxy never receives traffic, and a worker without a proxy is not
// marked unready for it (KubeRay #9). It records how many proxies of each cluster are healthy.
func (r *Reconciler) reconcileServeLabels(ctx context.Context, s *scope) (bool, error) {
	var errs []error
	for _, rc := range []*rayv1.RayCluster{s.active, s.pending} {
		if rc == nil {
			continue
		}
		cs := s.serveOf(rc.Name)
		if !cs.headReady {
			continue
		}
		pods, err := r.clusterPods(ctx, rc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want := r.probePods(ctx, s, pods)
		for i, p := range pods {
			// Only a Ready pod becomes a serve endpoint: switching traffic to a cluster whose
			// healthy proxies are all unready would leave the Service without endpoints.
			if want[i] && resources.PodRunningAndReady(p) {
				cs.healthyProxies++
			}
			v := strconv.FormatBool(want[i])
			if p.Labels[rayv1.RayClusterServingServiceLabelKey] == v || !p.DeletionTimestamp.IsZero() {
				continue
			}
			errs = append(errs, r.setServeLabel(ctx, s, p, v))
		}
	}
	return false, errors.Join(errs...)
}

// probePods decides the label of each pod, probing in parallel.
func (r *Reconciler) probePods(ctx context.Context, s *scope, pods []*corev1.Pod) []bool {
	want := make([]bool, len(pods))
	sem := make(chan struct{}, maxParallelProbes)
	var wg sync.WaitGroup
	for i, p := range pods {
		isHead := p.Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.HeadNode)
		if (isHead && s.rs.Spec.ExcludeHeadPodFromServeSvc) || !p.DeletionTimestamp.IsZero() ||
			p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			want[i] = r.prober.ServeHealthy(ctx, p, servePort(&p.Spec))
		}()
	}
	wg.Wait()
	return want
}

func (r *Reconciler) setServeLabel(ctx context.Context, s *scope, p *corev1.Pod, v string) error {
	before := p.DeepCopy()
	metav1.SetMetaDataLabel(&p.ObjectMeta, rayv1.RayClusterServingServiceLabelKey, v)
	isHead := p.Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.HeadNode)
	s.log.V(4).Info("Labelling pod", "Pod", klog.KObj(p), "serve", v)
	if err := r.client.Patch(ctx, p, client.MergeFrom(before)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		if isHead {
			s.events.Add(corev1.EventTypeWarning, EventFailedToUpdateHeadPodServeLabel, eventActionUpdate, "Failed to set label %s=%s on head pod %s: %v", rayv1.RayClusterServingServiceLabelKey, v, p.Name, err)
		}
		return fmt.Errorf("labelling pod %s: %w", p.Name, err)
	}
	if isHead {
		s.events.Add(corev1.EventTypeNormal, EventUpdatedHeadPodServeLabel, eventActionUpdate, "Set label %s=%s on head pod %s", rayv1.RayClusterServingServiceLabelKey, v, p.Name)
	}
	return nil
}

// reconcileTraffic points the head and serve Services at the pending cluster once it is ready for
// traffic (every application RUNNING, a healthy proxy), else at the active one, and promotes the
// pending cluster when traffic moved to it. The superseded cluster is left to collectGarbage.
func (r *Reconciler) reconcileTraffic(ctx context.Context, s *scope) (bool, error) {
	pendingReady := false
	if cs := s.serve[s.pendingName]; cs != nil && s.pending != nil {
		pendingReady = readyForTraffic(cs.apps, cs.healthyProxies)
	}
	target := trafficTarget(s.activeName, s.pendingName, pendingReady)
	if target == "" {
		return false, nil
	}
	rc := s.active
	if target == s.pendingName {
		rc = s.pending
	}
	if rc == nil {
		return false, nil
	}
	serve, err := buildServeService(s.rs, rc)
	if err != nil {
		return false, err
	}
	for _, svc := range []*corev1.Service{resources.BuildOwnerHeadService(s.rs, rayv1.RayServiceCRD, rc, r.cfg.Resources), serve} {
		if err := r.ensureService(ctx, s, svc); err != nil {
			return false, err
		}
	}
	if target == s.pendingName {
		old := s.activeName
		s.activeName, s.pendingName = s.pendingName, ""
		s.active, s.pending = s.pending, nil
		s.promoted = true
		if old == "" {
			s.events.Add(corev1.EventTypeNormal, EventPromotedPendingCluster, eventActionSwitch, "RayCluster %s is serving", target)
		} else {
			s.events.Add(corev1.EventTypeNormal, EventPromotedPendingCluster, eventActionSwitch, "Switched traffic from RayCluster %s to %s", old, target)
		}
	}
	return false, nil
}

// ensureService applies a Service when it is missing, unlabelled, or its selector, ports or type
// differ.
func (r *Reconciler) ensureService(ctx context.Context, s *scope, want *corev1.Service) error {
	have := &corev1.Service{}
	err := r.client.Get(ctx, client.ObjectKeyFromObject(want), have)
	if apierrors.IsNotFound(err) {
		// The cache holds only Services labelled created-by=kuberay-operator: one an earlier
		// version created without that label, or a user's Service of that name, is seen only
		// uncached. Ours is then applied, which labels it.
		err = r.reader.Get(ctx, client.ObjectKeyFromObject(want), have)
	}
	switch {
	case apierrors.IsNotFound(err):
		have = nil
	case err != nil:
		return fmt.Errorf("getting Service %s: %w", want.Name, err)
	case !metav1.IsControlledBy(have, s.rs):
		return fmt.Errorf("service %s exists and is not controlled by this RayService", want.Name)
	case have.Labels[rayv1.KubernetesCreatedByLabelKey] == rayv1.ComponentName &&
		apiequality.Semantic.DeepEqual(have.Spec.Selector, want.Spec.Selector) && samePorts(have.Spec.Ports, want.Spec.Ports) &&
		(want.Spec.Type == "" || have.Spec.Type == want.Spec.Type):
		return nil
	}
	s.log.V(2).Info("Applying Service", "Service", klog.KObj(want), "selector", want.Spec.Selector)
	if err := reconcilekit.Apply(ctx, r.client, FieldManager, want); err != nil {
		s.events.Add(corev1.EventTypeWarning, EventFailedToUpdateService, eventActionUpdate, "Failed to apply Service %s: %v", want.Name, err)
		return fmt.Errorf("applying Service %s: %w", want.Name, err)
	}
	if have == nil {
		s.events.Add(corev1.EventTypeNormal, EventCreatedService, eventActionCreate, "Created Service %s selecting RayCluster %s", want.Name, want.Spec.Selector[rayv1.RayClusterLabelKey])
	} else {
		s.events.Add(corev1.EventTypeNormal, EventUpdatedService, eventActionUpdate, "Updated Service %s to select RayCluster %s", want.Name, want.Spec.Selector[rayv1.RayClusterLabelKey])
	}
	return nil
}

func samePorts(a, b []corev1.ServicePort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Port != b[i].Port || a[i].TargetPort != b[i].TargetPort {
			return false
		}
	}
	return true
}

// serveServiceName is the serve Service: spec.serveService's name, or "<rayservice>-serve-svc".
func serveServiceName(rs *rayv1.RayService) string {
	if rs.Spec.ServeService != nil && rs.Spec.ServeService.Name != "" {
		return rs.Spec.ServeService.Name
	}
	return rs.Name + "-serve-svc"
}

// buildServeService builds the serve Service: spec.serveService as the starting point (its name
// is kept; namespace and selector are forced), selecting the cluster's pods labelled
// ray.io/serve=true, on the head's Serve ports ("serve" or "serve-*", 8000 when the head declares
// no port at all).
func buildServeService(rs *rayv1.RayService, rc *rayv1.RayCluster) (*corev1.Service, error) {
	svc := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}}
	if user := rs.Spec.ServeService; user != nil {
		svc.Labels = maps.Clone(user.Labels)
		svc.Annotations = maps.Clone(user.Annotations)
		svc.Spec = *user.Spec.DeepCopy()
	}
	svc.Name = serveServiceName(rs)
	svc.Namespace = rs.Namespace
	svc.OwnerReferences = []metav1.OwnerReference{ownerReference(rs)}
	svc.Labels = resources.CreatedByOperator(svc.Labels)
	svc.Labels[rayv1.RayOriginatedFromCRNameLabelKey] = rs.Name
	svc.Labels[rayv1.RayOriginatedFromCRDLabelKey] = string(rayv1.RayServiceCRD)
	svc.Labels[rayv1.RayClusterServingServiceLabelKey] = rs.Name + "-serve"
	svc.Spec.Selector = map[string]string{
		rayv1.RayClusterLabelKey:               rc.Name,
		rayv1.RayClusterServingServiceLabelKey: "true",
	}
	if len(svc.Spec.Ports) == 0 {
		svc.Spec.Ports = servePorts(rc)
		if len(svc.Spec.Ports) == 0 {
			return nil, fmt.Errorf("the head container of RayCluster %s declares no port named %q or %q-*", rc.Name, resources.ServePortName, resources.ServePortName)
		}
	}
	if svc.Spec.Type == "" {
		svc.Spec.Type = rc.Spec.HeadGroupSpec.ServiceType
	}
	return svc, nil
}

// servePorts are the head container's ports named "serve" or "serve-*", or 8000 when it declares
// no port at all.
func servePorts(rc *rayv1.RayCluster) []corev1.ServicePort {
	ctrs := rc.Spec.HeadGroupSpec.Template.Spec.Containers
	if len(ctrs) == 0 {
		return nil
	}
	if len(ctrs[0].Ports) == 0 {
		return []corev1.ServicePort{{Name: resources.ServePortName, Port: resources.DefaultServePort, TargetPort: intstr.FromInt32(resources.DefaultServePort)}}
	}
	var out []corev1.ServicePort
	for _, p := range ctrs[0].Ports {
		if p.Name == resources.ServePortName || strings.HasPrefix(p.Name, resources.ServePortName+"-") {
			out = append(out, corev1.ServicePort{Name: p.Name, Port: p.ContainerPort, TargetPort: intstr.FromInt32(p.ContainerPort)})
		}
	}
	return out
}

// servePort is the port a pod's proxy listens on: its Ray container's port named "serve", or 8000.
func servePort(spec *corev1.PodSpec) int32 {
	if len(spec.Containers) > 0 {
		for _, p := range spec.Containers[0].Ports {
			if p.Name == resources.ServePortName {
				return p.ContainerPort
			}
		}
	}
	return resources.DefaultServePort
}

// countServeEndpoints counts the distinct ready pods behind the serve Service, from its
// EndpointSlices (as KubeRay).
func (r *Reconciler) countServeEndpoints(ctx context.Context, s *scope) (bool, error) {
	var list discoveryv1.EndpointSliceList
	if err := r.client.List(ctx, &list, client.InNamespace(s.rs.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: serveServiceName(s.rs)}); err != nil {
		return false, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	s.numEndpoints = countReadyEndpoints(list.Items)
	s.endpointsKnown = true
	return false, nil
}

// countReadyEndpoints counts distinct ready endpoints, identified by their target pod (or their
// first address when they have no target).
func countReadyEndpoints(slices []discoveryv1.EndpointSlice) int32 {
	seen := map[string]bool{}
	for _, es := range slices {
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			key := ""
			switch {
			case ep.TargetRef != nil && ep.TargetRef.UID != "":
				key = string(ep.TargetRef.UID)
			case ep.TargetRef != nil:
				key = ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
			case len(ep.Addresses) > 0:
				key = ep.Addresses[0]
			default:
				continue
			}
			seen[key] = true
		}
	}
	return int32(len(seen))
}
