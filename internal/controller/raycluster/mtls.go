package raycluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/mtls"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/operator/features"
)

// Event reasons of the mTLS phase (KubeRay's strings).
const (
	EventMTLSPKIReady                = "MTLSPKIReady"
	EventMTLSCertsNotReady           = "MTLSCertsNotReady"
	EventMTLSCertificatesUpdated     = "MTLSCertificatesUpdated"
	EventMTLSCertificateExpiringSoon = "MTLSCertificateExpiringSoon"
	EventMTLSFailedToReconcile       = "MTLSFailedToReconcile"
)

// ReasonCertManagerNotInstalled is the ReplicaFailure reason of a cluster asking for mTLS on an
// API server without cert-manager's API.
const ReasonCertManagerNotInstalled = "CertManagerNotInstalled"

// certExpiryWarning is how close to its expiry a certificate is reported: Ray reads certificates
// once at start, so pods must be restarted after cert-manager renews one.
const certExpiryWarning = 24 * time.Hour

// certManagerRecheck is how long a cluster that needs cert-manager waits before looking for its
// API again.
const certManagerRecheck = 30 * time.Second

const (
	certManagerMissingMessage = "spec.tlsOptions.enabled needs cert-manager, but the API server does not serve cert-manager.io/v1 Issuers and Certificates; install cert-manager (no pod is created until then)"
	certsPendingPrefix        = "waiting for cert-manager to issue the mTLS certificates"
)

// reconcileMTLS keeps the cluster's cert-manager chain (RayClusterMTLS gate, spec.tlsOptions) in
// line: self-signed Issuer, CA Certificate, CA Issuer, and the head's and workers' Certificates
// whose IP SANs follow the pods. The first pods are created only once both leaf certificates
// are issued at their current spec; later pods wait in their wait-for-tls-ip-san init container
// until the re-issued certificate lists them. The Secrets cert-manager writes are made
// dependents of their Certificates, so that garbage collection removes them with the cluster.
func (r *Reconciler) reconcileMTLS(ctx context.Context, s *scope) error {
	c := s.cluster
	if !r.cfg.Enabled(features.RayClusterMTLS) || !resources.TLSEnabled(c) {
		return nil
	}
	installed, err := r.certManagerInstalled()
	if err != nil {
		return err
	}
	if !installed {
		s.blockPods(certManagerMissingMessage)
		// cert-manager's kinds cannot be watched before its CRDs exist: look again later.
		s.wakeAt(s.now.Add(certManagerRecheck))
		if !alreadyReported(c, ReasonCertManagerNotInstalled, certManagerMissingMessage) {
			s.events.Add(corev1.EventTypeWarning, EventMTLSFailedToReconcile, "Reconcile", "%s", certManagerMissingMessage)
		}
		s.fail(ReasonCertManagerNotInstalled, errors.New(certManagerMissingMessage))
		return nil
	}

	chain := mtls.BuildChain(c, podIPsByRole(s.pods), r.cfg.Resources)
	var updated []string
	for _, desired := range chain.Objects() {
		changed, err := r.applyMTLSObject(ctx, s, desired)
		if err != nil {
			s.events.Add(corev1.EventTypeWarning, EventMTLSFailedToReconcile, "Reconcile", "Failed to reconcile mTLS %s %s: %v", desired.GetKind(), desired.GetName(), err)
			return fmt.Errorf("mTLS %s %s: %w", desired.GetKind(), desired.GetName(), err)
		}
		if changed {
			updated = append(updated, fmt.Sprintf("%s (IPs: %s)", desired.GetName(), strings.Join(mtls.IPAddresses(desired), ", ")))
		}
	}
	if len(updated) > 0 {
		s.events.Add(corev1.EventTypeNormal, EventMTLSCertificatesUpdated, "Update", "Updated the SANs of certificates %s", strings.Join(updated, "; "))
	}

	var pending []string
	for _, cert := range []*unstructured.Unstructured{chain.CACertificate, chain.HeadCertificate, chain.WorkerCertificate} {
		ready, err := r.certificateIssued(ctx, s, cert)
		if err != nil {
			return err
		}
		if !ready {
			pending = append(pending, cert.GetName())
		}
	}
	waiting := c.Status.Reason != "" && strings.HasPrefix(c.Status.Reason, certsPendingPrefix)
	if len(pending) > 0 {
		// The owned Certificates' status changes wake the cluster through the watch.
		if len(s.allPods) == 0 {
			msg := fmt.Sprintf("%s %s", certsPendingPrefix, strings.Join(pending, ", "))
			s.blockPods(msg)
			if !waiting {
				s.events.Add(corev1.EventTypeNormal, EventMTLSCertsNotReady, "Reconcile", "Waiting for cert-manager to issue mTLS certificates %s", strings.Join(pending, ", "))
			}
		}
		return nil
	}
	if waiting && len(s.allPods) == 0 {
		s.events.Add(corev1.EventTypeNormal, EventMTLSPKIReady, "Reconcile", "mTLS PKI is ready: CA, head, and worker certificates issued")
	}
	return nil
}

// watchCertificates adds a watch on the cluster's cert-manager Certificates, so that an issued
// certificate is acted upon at once. Without cert-manager's API at start-up there is nothing to
// watch (a watch would fail the manager): clusters asking for mTLS are then looked at again
// periodically and report the missing API.
func (r *Reconciler) watchCertificates(mgr ctrl.Manager, b *builder.Builder) *builder.Builder {
	if _, err := mgr.GetRESTMapper().RESTMapping(mtls.CertificateKind.GroupKind(), mtls.CertificateKind.Version); err != nil {
		mgr.GetLogger().Info("Not watching cert-manager Certificates: the API server does not serve them", "error", err.Error())
		return b
	}
	cert := &unstructured.Unstructured{}
	cert.SetGroupVersionKind(mtls.CertificateKind)
	return b.Owns(cert)
}

// certManagerInstalled reports whether the API server serves cert-manager's Certificates. The
// answer is asked again on every call: cert-manager may be installed after the operator started.
func (r *Reconciler) certManagerInstalled() (bool, error) {
	_, err := r.client.RESTMapper().RESTMapping(mtls.CertificateKind.GroupKind(), mtls.CertificateKind.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	}
	return false, fmt.Errorf("looking up the cert-manager API: %w", err)
}

// applyMTLSObject creates desired when missing, and applies a leaf certificate whose SANs or
// labels drifted. The issuers and the CA are never rewritten: their spec never changes, and a
// rewrite could make cert-manager issue a new CA. It reports whether an existing certificate was
// changed.
func (r *Reconciler) applyMTLSObject(ctx context.Context, s *scope, desired *unstructured.Unstructured) (bool, error) {
	observed := &unstructured.Unstructured{}
	observed.SetGroupVersionKind(desired.GroupVersionKind())
	err := r.client.Get(ctx, client.ObjectKeyFromObject(desired), observed)
	switch {
	case apierrors.IsNotFound(err):
		return false, r.applyUnstructured(ctx, desired)
	case err != nil:
		return false, fmt.Errorf("getting: %w", err)
	}
	if !metav1.IsControlledBy(observed, s.cluster) {
		return false, fmt.Errorf("%s exists and is not controlled by this RayCluster; rename or delete it", desired.GetName())
	}
	leaf := desired.GetKind() == mtls.CertificateKind.Kind && desired.GetName() != mtls.CACertificateName(s.cluster.Name)
	if !leaf || (!mtls.SANsDiffer(observed, desired) && labelsCover(observed.GetLabels(), desired.GetLabels())) {
		return false, nil
	}
	return true, r.applyUnstructured(ctx, desired)
}

func (r *Reconciler) applyUnstructured(ctx context.Context, u *unstructured.Unstructured) error {
	return r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(FieldManager), client.ForceOwnership)
}

func labelsCover(observed, desired map[string]string) bool {
	for k, v := range desired {
		if observed[k] != v {
			return false
		}
	}
	return true
}

// certificateIssued reports whether cert is issued at its current spec and its Secret exists,
// and makes that Secret a dependent of the Certificate. It warns about a certificate that
// expires within a day.
func (r *Reconciler) certificateIssued(ctx context.Context, s *scope, desired *unstructured.Unstructured) (bool, error) {
	cert := &unstructured.Unstructured{}
	cert.SetGroupVersionKind(desired.GroupVersionKind())
	if err := r.client.Get(ctx, client.ObjectKeyFromObject(desired), cert); err != nil {
		return false, fmt.Errorf("getting certificate %s: %w", desired.GetName(), err)
	}
	if na := mtls.NotAfter(cert); !na.IsZero() && na.Sub(s.now) < certExpiryWarning {
		s.events.Add(corev1.EventTypeWarning, EventMTLSCertificateExpiringSoon, "Reconcile",
			"TLS certificate %s expires at %s; Ray does not reload certificates, so its pods need a restart after cert-manager renews it", cert.GetName(), na.UTC().Format(time.RFC3339))
	}
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	secret := secretMetadata()
	// cert-manager's Secrets carry none of the operator's labels: read them uncached.
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: cert.GetNamespace(), Name: secretName}, secret)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("getting secret %s: %w", secretName, err)
	}
	if err := r.ownSecret(ctx, cert, secret); err != nil {
		return false, err
	}
	return mtls.Ready(cert), nil
}

// ownSecret adds an owner reference to cert on its Secret unless there is one.
func (r *Reconciler) ownSecret(ctx context.Context, cert *unstructured.Unstructured, secret *metav1.PartialObjectMetadata) error {
	for _, o := range secret.OwnerReferences {
		if o.UID == cert.GetUID() {
			return nil
		}
	}
	before := secret.DeepCopy()
	secret.OwnerReferences = append(secret.OwnerReferences, metav1.OwnerReference{
		APIVersion: mtls.GroupVersion.String(), Kind: mtls.CertificateKind.Kind,
		Name: cert.GetName(), UID: cert.GetUID(), BlockOwnerDeletion: ptr.To(true),
	})
	if err := r.client.Patch(ctx, secret, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding the owner reference of certificate %s to secret %s: %w", cert.GetName(), secret.Name, err)
	}
	return nil
}

// podIPsByRole lists the IPs of the running (not finished) head and worker pods.
func podIPsByRole(pods []corev1.Pod) mtls.PodIPs {
	var ips mtls.PodIPs
	for i := range pods {
		p := &pods[i]
		if p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		switch rayv1.RayNodeType(p.Labels[rayv1.RayNodeTypeLabelKey]) {
		case rayv1.HeadNode:
			ips.Head = append(ips.Head, p.Status.PodIP)
		case rayv1.WorkerNode:
			ips.Workers = append(ips.Workers, p.Status.PodIP)
		}
	}
	return ips
}
