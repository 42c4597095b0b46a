// Package mtls builds the cert-manager objects that give one RayCluster its own certificate
// authority and the head's and workers' certificates (spec.tlsOptions, RayClusterMTLS gate), the
// chain KubeRay creates: a self-signed Issuer signs a CA Certificate, a CA Issuer backed by that
// CA's Secret signs a head and a worker Certificate whose IP SANs follow the pods. Builders are
// pure: no client, no clock. cert-manager's Go module is not a dependency, so the objects are
// unstructured, built from cert-manager's documented cert-manager.io/v1 schema.
package mtls
