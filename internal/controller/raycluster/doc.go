// Package raycluster reconciles ray.io/v1 RayClusters: it creates the head and worker pods, the
// head, headless-worker and serve Services, the dashboard Ingress, the autoscaler RBAC objects,
// the auth-token Secret, the rocksdb GCS storage claim and the NetworkPolicies (all built by the
// pure functions of the resources sub-package), the cert-manager chain of mTLS (built by the mtls
// package) and the Workload and PodGroup of Kubernetes workload-aware scheduling (kuberneteswas), scales worker groups, replaces failed pods,
// suspends and resumes, rolls out template changes when asked to, cleans up Redis for GCS fault
// tolerance on deletion, and reports an honest status.
//
// Reconcile is a thin shell (controller.go): get the cluster, skip it when another controller
// manages it, validate what CEL could not, run a list of named phases that only record facts in
// a scope, compute the status from those facts in one place (status.go) and write it once with a
// merge patch, then emit the events the phases queued.
//
// +kubebuilder:rbac:groups=ray.io,resources=rayclusters,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ray.io,resources=rayclusters/status,verbs=get;patch
// +kubebuilder:rbac:groups=ray.io,resources=rayclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=get
// +kubebuilder:rbac:groups="",resources=pods/resize,verbs=patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=issuers;certificates,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=scheduling.volcano.sh;scheduling.x-k8s.io,resources=podgroups,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=scheduling.k8s.io,resources=workloads;podgroups,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
package raycluster
