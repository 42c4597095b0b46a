package raycluster

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

// Event reasons of the auth Secret phase.
const (
	EventCreatedSecret         = "CreatedSecret"
	EventFailedToCreateSecret  = "FailedToCreateSecret"
	EventAuthSecretNotFound    = "AuthSecretNotFound"
	authTokenBytes             = 32
	authSecretNotFoundTemplate = "Secret %s named by spec.authOptions.secretName does not exist (it must hold the token under key auth_token); no pod is created until it does"
)

// reconcileAuthSecret makes sure the Secret the pods read RAY_AUTH_TOKEN from exists. Without
// authOptions.secretName the operator creates "<cluster>" once, with a random token, owned by
// the cluster, and never rotates it (running pods read it at start). A Secret the user names is
// only checked: while it is missing no pod is created (it could not start), ReplicaFailure and a
// Warning event say which Secret is missing, and a watch on that one name wakes the cluster when
// the Secret is created. Secrets are read by metadata only: the operator never caches their data.
func (r *Reconciler) reconcileAuthSecret(ctx context.Context, s *scope) error {
	c := s.cluster
	if !resources.UsesAuthTokenSecret(c) || !userAuthSecret(c) {
		r.stopAwaitingSecret(s)
	}
	if !resources.UsesAuthTokenSecret(c) {
		return nil
	}
	if !userAuthSecret(c) {
		// createOnce leaves an existing Secret alone: the token is never rotated.
		token, err := newAuthToken(r.random)
		if err != nil {
			return err
		}
		return r.createOnce(ctx, s, resources.BuildAuthSecret(c, token), secretMetadata(), EventCreatedSecret, EventFailedToCreateSecret)
	}
	name := resources.AuthSecretName(c)
	observed := secretMetadata()
	// The user's Secret carries none of the operator's labels, so the manager's cache does not
	// hold it: read it directly.
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, observed)
	if err == nil {
		r.stopAwaitingSecret(s)
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting auth secret %s: %w", name, err)
	}
	// Not an error: retrying at once cannot help. The Secret is outside the cache, so a narrow
	// watch on its name brings the cluster back when it is created.
	msg := fmt.Sprintf(authSecretNotFoundTemplate, name)
	s.blockPods(msg)
	if r.secretWaits != nil {
		r.secretWaits.Await(s.key, client.ObjectKey{Namespace: c.Namespace, Name: name})
	}
	if !alreadyReported(c, rayv1.AuthSecretNotFound, msg) {
		s.events.Add(corev1.EventTypeWarning, EventAuthSecretNotFound, "Reconcile", "%s", msg)
	}
	s.fail(rayv1.AuthSecretNotFound, errors.New(msg))
	return nil
}

// stopAwaitingSecret ends the watch for a user's Secret the cluster waited for, if any.
func (r *Reconciler) stopAwaitingSecret(s *scope) {
	if r.secretWaits != nil {
		r.secretWaits.Forget(s.key)
	}
}

// alreadyReported reports whether the status read at the start of the reconcile already carries
// this ReplicaFailure, so the Warning event is emitted when the problem appears, not on every
// reconcile.
func alreadyReported(c *rayv1.RayCluster, reason, msg string) bool {
	cond := meta.FindStatusCondition(c.Status.Conditions, string(rayv1.RayClusterReplicaFailure))
	return cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == reason && cond.Message == msg
}

// userAuthSecret reports whether the user names the auth Secret (authOptions.secretName).
func userAuthSecret(c *rayv1.RayCluster) bool {
	o := c.Spec.AuthOptions
	return o != nil && o.SecretName != nil && *o.SecretName != ""
}

// newAuthToken returns 32 random bytes from rand, hex-encoded.
func newAuthToken(rand io.Reader) (string, error) {
	b := make([]byte, authTokenBytes)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", fmt.Errorf("generating auth token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// secretMetadata is an empty metadata-only Secret, for reads that must not cache Secret data.
func secretMetadata() *metav1.PartialObjectMetadata { return coreMetadata("Secret") }

// coreMetadata is an empty metadata-only object of a core/v1 kind. Reading children this way
// makes the manager cache only their metadata.
func coreMetadata(kind string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(kind))
	return m
}
