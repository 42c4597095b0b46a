package raycluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Event reasons of the service phases.
const (
	EventCreatedService        = "CreatedService"
	EventFailedToCreateService = "FailedToCreateService"
)

// servicesGroup is the one expectation group of a cluster's Services (Reconciler.serviceExp).
const servicesGroup = "services"

// Services are created once and never updated, as in KubeRay: a head Service's type and cluster
// IP cannot change in place, and users may edit annotations (e.g. for load balancers) that an
// update would fight with.

// reconcileHeadService plans the create of the head Service unless the cluster already controls
// one.
func (r *Reconciler) reconcileHeadService(_ context.Context, s *scope) error {
	if headService(s.services) != nil {
		return nil
	}
	return r.createService(s, "head", resources.BuildHeadService(s.cluster, r.cfg.Resources))
}

// reconcileHeadlessWorkerService plans the create of "<cluster>-headless" when a group needs it.
func (r *Reconciler) reconcileHeadlessWorkerService(_ context.Context, s *scope) error {
	svc := resources.BuildHeadlessWorkerService(s.cluster)
	if svc == nil || serviceNamed(s.services, svc.Name) != nil {
		return nil
	}
	return r.createService(s, "headless worker", svc)
}

// reconcileServeService plans the create of "<cluster>-serve-svc" for a standalone cluster annotated with
// ray.io/enable-serve-service=true.
func (r *Reconciler) reconcileServeService(_ context.Context, s *scope) error {
	if s.cluster.Annotations[rayv1.EnableServeServiceAnnotationKey] != "true" {
		return nil
	}
	svc, err := resources.BuildServeService(s.cluster)
	if err != nil {
		return fmt.Errorf("building serve service: %w", err)
	}
	if svc == nil || serviceNamed(s.services, svc.Name) != nil {
		return nil
	}
	return r.createService(s, "serve", svc)
}

// createService plans the create of svc (issueCreates sends it with the reconcile's other
// creates). A Service of that name that already exists is adopted when the cluster controls it.
func (r *Reconciler) createService(s *scope, kind string, svc *corev1.Service) error {
	if svc == nil {
		return fmt.Errorf("the %s service builder returned nothing", kind)
	}
	if s.servicesPending {
		return nil
	}
	if err := ensureControllerRef(s.cluster, svc, r.client); err != nil {
		return err
	}
	s.creates.plan(svc, func(ctx context.Context, err error) error {
		if apierrors.IsAlreadyExists(err) {
			return r.adoptService(ctx, s, svc)
		}
		if err != nil {
			s.events.Add(corev1.EventTypeWarning, EventFailedToCreateService, "Create", "Failed to create %s service %s: %v", kind, svc.Name, err)
			return fmt.Errorf("creating %s service %s: %w", kind, svc.Name, err)
		}
		r.serviceExp.expectCreate(s.key, servicesGroup, svc.Name, s.now)
		s.events.Add(corev1.EventTypeNormal, EventCreatedService, "Create", "Created %s service %s", kind, svc.Name)
		return nil
	})
	return nil
}

// adoptService handles a Service that exists but is not among the cluster's cached children. The
// cache holds only Services labelled app.kubernetes.io/created-by=kuberay-operator, and builds
// before that label was on every Service created headless worker and serve Services without it:
// such a Service, controlled by this cluster, gets the label (one patch, once) so that the cache
// sees it from then on. A Service of that name controlled by anything else is an error.
func (r *Reconciler) adoptService(ctx context.Context, s *scope, want *corev1.Service) error {
	have := &metav1.PartialObjectMetadata{}
	have.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
	if err := r.reader.Get(ctx, client.ObjectKeyFromObject(want), have); err != nil {
		return fmt.Errorf("service %s already exists, and reading it failed: %w", want.Name, err)
	}
	if !metav1.IsControlledBy(have, s.cluster) {
		return fmt.Errorf("service %s already exists and is not controlled by this RayCluster", want.Name)
	}
	if have.Labels[rayv1.KubernetesCreatedByLabelKey] == rayv1.ComponentName {
		// Ours and labelled: the cache has not caught up with it yet.
		return nil
	}
	before := have.DeepCopy()
	have.Labels = resources.CreatedByOperator(have.Labels)
	if err := r.client.Patch(ctx, have, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("labelling Service %s created by an earlier operator version: %w", want.Name, err)
	}
	ctrl.LoggerFrom(ctx).Info("Labelled a Service created by an earlier operator version", "Service", want.Name, "label", rayv1.KubernetesCreatedByLabelKey)
	return nil
}

// headService is the cluster's head Service: the controlled Service labelled node-type=head.
func headService(svcs []corev1.Service) *corev1.Service {
	for i := range svcs {
		if svcs[i].Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.HeadNode) {
			return &svcs[i]
		}
	}
	return nil
}

func serviceNamed(svcs []corev1.Service, name string) *corev1.Service {
	for i := range svcs {
		if svcs[i].Name == name {
			return &svcs[i]
		}
	}
	return nil
}
