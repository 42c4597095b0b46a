package crds

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Nothing is accepted and silently ignored: every property path under spec of every CRD in
// config/crd/bases must be listed in its kind's field table, which says where the field takes
// effect. A new field without an entry fails TestEverySpecFieldTakesEffect.

// effect says where a spec field takes effect.
type effect string

const (
	// built: a pure builder puts it into a child object (pods, Services, Ingress,
	// NetworkPolicies, the submitter Job, the RayCluster a RayJob or RayService creates).
	built effect = "built into a child object"
	// controlled: a controller step reads it to decide what to do.
	controlled effect = "read by a controller step"
	// autoscaled: the Ray autoscaler reads it from the RayCluster, as with KubeRay, whose
	// operator does not read it either.
	autoscaled effect = "read by the Ray autoscaler from the RayCluster"
	// reported: this build does not implement it; the controller refuses the object with a
	// condition and a Warning event naming the field (or, where noted, runs a documented
	// substitute and says so in a Warning event).
	reported effect = "reported as unsupported by a condition or Warning event"
	// ignored: accepted and ignored as KubeRay ignores it; use.where must be text of the README
	// row that says so.
	ignored effect = "accepted and ignored like KubeRay (README row)"
)

// use is one entry of a field table.
type use struct {
	effect effect
	// where names the builder, controller step, condition or README row.
	where string
	// subtree makes the entry cover every path below it: a Kubernetes type passed through whole
	// (a pod template, a Service, NetworkPolicy rules).
	subtree bool
}

// fieldTable maps property paths below spec (".a.b", "[]" for list items, "{}" for map values,
// as flatten writes them) to their use. embeds hands the paths below a prefix to another kind's
// table (RayJob's rayClusterSpec is a RayClusterSpec).
type fieldTable struct {
	entries map[string]use
	embeds  map[string]*fieldTable
}

func one(e effect, where string) use  { return use{effect: e, where: where} }
func tree(e effect, where string) use { return use{effect: e, where: where, subtree: true} }

// fieldTables are the tables by CRD file name. Every file in config/crd/bases needs one.
//
// RayCronJob (ray.io_raycronjobs.yaml, being added on another branch) has its table ready in
// cronJobFields, written from KubeRay's schema: whoever merges it checks that each entry is true
// of our controller.
func fieldTables() map[string]*fieldTable {
	cluster := clusterFields()
	job := jobFields(cluster)
	return map[string]*fieldTable{
		"ray.io_rayclusters.yaml": cluster,
		"ray.io_rayjobs.yaml":     job,
		"ray.io_rayservices.yaml": serviceFields(cluster),
		"ray.io_raycronjobs.yaml": cronJobFields(job),
	}
}

func clusterFields() *fieldTable {
	const (
		pods       = "resources.BuildHeadPod / BuildWorkerPod"
		autoscaler = "resources: the autoscaler sidecar of the head pod"
		gcs        = "resources: GCS fault-tolerance env, flags and rocksdb volume"
		ingress    = "resources.BuildIngress"
		headSvc    = "resources.BuildHeadService"
		netpol     = "resources.BuildNetworkPolicies (RayClusterNetworkPolicy gate)"
		scaling    = "raycluster reconcilePods: per-group scaling"
		specValid  = "raycluster validateCluster: RayClusterSpecValid=False and InvalidRayClusterSpec event"
	)
	return &fieldTable{entries: map[string]use{
		".authOptions":                    one(built, "resources: RAY_AUTH_MODE and token env of every Ray container"),
		".authOptions.enableK8sTokenAuth": one(built, "resources: projected service-account token and auth env"),
		".authOptions.mode":               one(built, "resources: RAY_AUTH_MODE"),
		".authOptions.secretName":         one(controlled, "raycluster reconcileAuthSecret: the user's Secret must exist"),

		".autoscalerOptions":                    one(built, autoscaler),
		".autoscalerOptions.args":               one(built, autoscaler),
		".autoscalerOptions.args[]":             one(built, autoscaler),
		".autoscalerOptions.command":            one(built, autoscaler),
		".autoscalerOptions.command[]":          one(built, autoscaler),
		".autoscalerOptions.env":                tree(built, autoscaler),
		".autoscalerOptions.envFrom":            tree(built, autoscaler),
		".autoscalerOptions.image":              one(built, autoscaler),
		".autoscalerOptions.imagePullPolicy":    one(built, autoscaler),
		".autoscalerOptions.resources":          tree(built, autoscaler),
		".autoscalerOptions.securityContext":    tree(built, autoscaler),
		".autoscalerOptions.volumeMounts":       tree(built, autoscaler),
		".autoscalerOptions.version":            one(built, "resources: autoscaler v2 env of the head"),
		".autoscalerOptions.idleTimeoutSeconds": one(autoscaled, "the autoscaler's idle timeout"),
		".autoscalerOptions.upscalingMode":      one(autoscaled, "the autoscaler's upscaling speed"),
		".enableInTreeAutoscaling":              one(built, autoscaler),

		".gcsFaultToleranceOptions":                          one(built, gcs),
		".gcsFaultToleranceOptions.backend":                  one(built, gcs),
		".gcsFaultToleranceOptions.externalStorageNamespace": one(built, gcs),
		".gcsFaultToleranceOptions.redisAddress":             one(built, gcs),
		".gcsFaultToleranceOptions.redisPassword":            tree(built, gcs),
		".gcsFaultToleranceOptions.redisUsername":            tree(built, gcs),
		".gcsFaultToleranceOptions.storage":                  one(built, "resources.BuildGCSStoragePVC"),
		".gcsFaultToleranceOptions.storage.accessModes":      one(built, "resources.BuildGCSStoragePVC"),
		".gcsFaultToleranceOptions.storage.accessModes[]":    one(built, "resources.BuildGCSStoragePVC"),
		".gcsFaultToleranceOptions.storage.claimName":        one(built, "resources: the head's gcs-storage volume"),
		".gcsFaultToleranceOptions.storage.deletionPolicy":   one(controlled, "raycluster reconcileGCSStorage: the claim's owner reference"),
		".gcsFaultToleranceOptions.storage.size":             one(built, "resources.BuildGCSStoragePVC"),
		".gcsFaultToleranceOptions.storage.storageClassName": one(built, "resources.BuildGCSStoragePVC"),
		".gcsFaultToleranceOptions.storage.subPath":          one(built, gcs),

		".headGroupSpec":                                      one(built, pods),
		".headGroupSpec.enableIngress":                        one(built, ingress),
		".headGroupSpec.headService":                          tree(built, headSvc),
		".headGroupSpec.ingressOptions":                       one(built, ingress),
		".headGroupSpec.ingressOptions.host":                  one(built, ingress),
		".headGroupSpec.ingressOptions.path":                  one(built, ingress),
		".headGroupSpec.ingressOptions.pathType":              one(built, ingress),
		".headGroupSpec.ingressOptions.tls":                   tree(built, ingress),
		".headGroupSpec.labels":                               one(built, pods+": --labels and pod labels"),
		".headGroupSpec.labels{}":                             one(built, pods),
		".headGroupSpec.rayStartParams":                       one(built, pods+": the ray start command"),
		".headGroupSpec.rayStartParams{}":                     one(built, pods),
		".headGroupSpec.resources":                            one(built, pods+": ray start resource flags"),
		".headGroupSpec.resources{}":                          one(built, pods),
		".headGroupSpec.serviceType":                          one(built, headSvc),
		".headGroupSpec.template":                             tree(built, pods),
		".headServiceAnnotations":                             one(built, headSvc),
		".headServiceAnnotations{}":                           one(built, headSvc),
		".historyServerOptions":                               tree(reported, specValid+" (RayClusterHistoryServer gate off, or the collector this build cannot run)"),
		".managedBy":                                          one(controlled, "raycluster Reconcile: skips clusters another controller manages"),
		".networkPolicy":                                      one(built, netpol),
		".networkPolicy.head":                                 one(built, netpol),
		".networkPolicy.head.egressRules":                     tree(built, netpol),
		".networkPolicy.head.ingressRules":                    tree(built, netpol),
		".networkPolicy.mode":                                 one(built, netpol),
		".networkPolicy.worker":                               one(built, netpol),
		".networkPolicy.worker.egressRules":                   tree(built, netpol),
		".networkPolicy.worker.ingressRules":                  tree(built, netpol),
		".networkPolicy.workerGroups":                         one(built, netpol),
		".networkPolicy.workerGroups[]":                       one(built, netpol),
		".networkPolicy.workerGroups[].groupName":             one(built, netpol),
		".networkPolicy.workerGroups[].egressRules":           tree(built, netpol),
		".networkPolicy.workerGroups[].ingressRules":          tree(built, netpol),
		".rayVersion":                                         one(built, pods+": probes, auth and usage-stats env depend on it"),
		".suspend":                                            one(controlled, "raycluster reconcilePods: suspension"),
		".tlsOptions":                                         one(controlled, specValid+" without the RayClusterMTLS gate; raycluster reconcileMTLS with it"),
		".tlsOptions.enabled":                                 one(built, "mtls.BuildChain (cert-manager Issuers and Certificates) and resources: the ray-tls volume, TLS env and wait-for-tls-ip-san of every pod"),
		".upgradeStrategy":                                    one(controlled, "raycluster reconcilePods: Recreate and RollingUpdate"),
		".upgradeStrategy.type":                               one(controlled, "raycluster reconcilePods: Recreate and RollingUpdate"),
		".workerGroupSpecs":                                   one(built, pods),
		".workerGroupSpecs[]":                                 one(built, pods),
		".workerGroupSpecs[].groupName":                       one(built, pods+": ray.io/group label and pod names"),
		".workerGroupSpecs[].idleTimeoutSeconds":              one(autoscaled, "autoscaler v2's per-group idle timeout (validateCluster refuses it without v2)"),
		".workerGroupSpecs[].labels":                          one(built, pods),
		".workerGroupSpecs[].labels{}":                        one(built, pods),
		".workerGroupSpecs[].maxReplicas":                     one(controlled, scaling),
		".workerGroupSpecs[].minReplicas":                     one(controlled, scaling),
		".workerGroupSpecs[].numOfHosts":                      one(controlled, scaling+" (multi-host replicas)"),
		".workerGroupSpecs[].priority":                        one(autoscaled, "autoscaler v2's group preference (validateCluster refuses it without v2 and Ray 2.56)"),
		".workerGroupSpecs[].rayStartParams":                  one(built, pods),
		".workerGroupSpecs[].rayStartParams{}":                one(built, pods),
		".workerGroupSpecs[].replicas":                        one(controlled, scaling),
		".workerGroupSpecs[].resources":                       one(built, pods),
		".workerGroupSpecs[].resources{}":                     one(built, pods),
		".workerGroupSpecs[].scaleStrategy":                   one(controlled, scaling),
		".workerGroupSpecs[].scaleStrategy.workersToDelete":   one(controlled, scaling),
		".workerGroupSpecs[].scaleStrategy.workersToDelete[]": one(controlled, scaling),
		".workerGroupSpecs[].suspend":                         one(controlled, scaling+" (RayJob DeleteWorkers policy)"),
		".workerGroupSpecs[].template":                        tree(built, pods),
	}}
}

func jobFields(cluster *fieldTable) *fieldTable {
	const (
		deletion  = "rayjob: deletion rules and TTL after the job finished"
		submit    = "rayjob: the job submission (submitter Job, sidecar or HTTP)"
		deadlines = "rayjob: deadlines of the state machine"
	)
	return &fieldTable{
		embeds: map[string]*fieldTable{".rayClusterSpec": cluster},
		entries: map[string]use{
			".activeDeadlineSeconds":        one(controlled, deadlines),
			".backoffLimit":                 one(controlled, "rayjob: retries with a new cluster"),
			".clusterSelector":              one(controlled, "rayjob: runs on an existing cluster"),
			".clusterSelector{}":            one(controlled, "rayjob: runs on an existing cluster"),
			".deletionStrategy":             tree(controlled, deletion),
			".entrypoint":                   one(built, submit),
			".entrypointNumCpus":            one(built, submit),
			".entrypointNumGpus":            one(built, submit),
			".entrypointResources":          one(built, submit),
			".jobId":                        one(controlled, "rayjob: the submission id"),
			".managedBy":                    one(controlled, "rayjob: skips jobs another controller manages"),
			".metadata":                     one(built, submit),
			".metadata{}":                   one(built, submit),
			".preRunningDeadlineSeconds":    one(controlled, deadlines),
			".rayClusterSpec":               one(built, "rayjob: the RayCluster it creates (its fields take effect there)"),
			".runtimeEnvYAML":               one(built, submit),
			".shutdownAfterJobFinishes":     one(controlled, deletion),
			".submissionMode":               one(controlled, submit),
			".submitterConfig":              one(built, "rayjob: the submitter Job"),
			".submitterConfig.backoffLimit": one(built, "rayjob: the submitter Job"),
			".submitterPodTemplate":         tree(built, "rayjob: the submitter Job"),
			".suspend":                      one(controlled, "rayjob: suspension"),
			".ttlSecondsAfterFinished":      one(controlled, deletion),
		},
	}
}

func serviceFields(cluster *fieldTable) *fieldTable {
	const (
		upgrade     = "rayservice: cluster upgrades"
		incremental = "rayservice: NewClusterWithIncrementalUpgrade runs as NewCluster with an IncrementalUpgradeNotSupported Warning event"
	)
	return &fieldTable{
		embeds: map[string]*fieldTable{".rayClusterConfig": cluster},
		entries: map[string]use{
			".deploymentUnhealthySecondThreshold":    one(ignored, "`deploymentUnhealthySecondThreshold`"),
			".excludeHeadPodFromServeSvc":            one(controlled, "rayservice: serve Service membership"),
			".managedBy":                             one(controlled, "rayservice: skips services another controller manages"),
			".rayClusterConfig":                      one(built, "rayservice: the RayClusters it creates (their fields take effect there)"),
			".rayClusterDeletionDelaySeconds":        one(controlled, upgrade),
			".serveConfigV2":                         one(controlled, "rayservice: the Serve config sent to the dashboard"),
			".serveService":                          tree(built, "rayservice: the serve Service"),
			".serviceUnhealthySecondThreshold":       one(ignored, "`serviceUnhealthySecondThreshold`"),
			".suspend":                               one(controlled, "rayservice: suspension"),
			".upgradeStrategy":                       one(controlled, upgrade),
			".upgradeStrategy.type":                  one(controlled, upgrade),
			".upgradeStrategy.clusterUpgradeOptions": tree(reported, incremental),
		},
	}
}

// cronJobFields is RayCronJob's table, for when its CRD lands (see fieldTables).
func cronJobFields(job *fieldTable) *fieldTable {
	return &fieldTable{
		embeds: map[string]*fieldTable{".jobTemplate": job},
		entries: map[string]use{
			".jobTemplate": one(built, "raycronjob: the RayJobs it creates (their fields take effect there)"),
			".schedule":    one(controlled, "raycronjob: schedule"),
			".suspend":     one(controlled, "raycronjob: no new RayJobs while suspended"),
			".timeZone":    one(controlled, "raycronjob: schedule"),
		},
	}
}

// lookup finds the entry covering path: its own, a subtree entry of an ancestor, or, below an
// embedding prefix, the embedded table's. It returns the table and key it used.
func (t *fieldTable) lookup(path string) (*fieldTable, string, bool) {
	for prefix, inner := range t.embeds {
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "" && strings.ContainsAny(rest[:1], ".[{") {
			return inner.lookup(rest)
		}
	}
	if _, ok := t.entries[path]; ok {
		return t, path, true
	}
	for p := parent(path); p != ""; p = parent(p) {
		if u, ok := t.entries[p]; ok && u.subtree {
			return t, p, true
		}
	}
	return nil, "", false
}

// parent strips the last segment of a flattened path (".a.b" → ".a", ".a[]" → ".a", ".a{}" → ".a").
func parent(path string) string {
	if p, ok := strings.CutSuffix(path, "[]"); ok {
		return p
	}
	if p, ok := strings.CutSuffix(path, "{}"); ok {
		return p
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

// checkTable returns the spec paths t has no entry for, and t's own entries no path used.
func checkTable(t *fieldTable, paths []string) (unlisted, stale []string) {
	used := map[string]bool{}
	for _, p := range paths {
		table, key, ok := t.lookup(p)
		if !ok {
			unlisted = append(unlisted, p)
			continue
		}
		if table == t {
			used[key] = true
		}
	}
	for key := range t.entries {
		if !used[key] {
			stale = append(stale, key)
		}
	}
	slices.Sort(unlisted)
	slices.Sort(stale)
	return unlisted, stale
}

func specPaths(t *testing.T, file string) []string {
	t.Helper()
	crd := loadCRD(t, file)
	v := version(crd, "v1")
	if v == nil || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		t.Fatalf("%s has no v1 schema", file)
	}
	spec, ok := v.Schema.OpenAPIV3Schema.Properties["spec"]
	if !ok {
		t.Fatalf("%s has no spec", file)
	}
	var out []string
	for p := range flatten(&spec) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func TestEverySpecFieldTakesEffect(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tables := fieldTables()
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			table, ok := tables[name]
			if !ok {
				t.Fatalf("%s has no field table: add one to fieldTables in this file saying where each spec field takes effect", name)
			}
			unlisted, stale := checkTable(table, specPaths(t, file))
			for _, p := range unlisted {
				t.Errorf("spec%s has no entry in the field table of %s: say where it takes effect (built, controlled, autoscaled), or refuse or report it (reported), or document it as ignored like KubeRay in a README row (ignored)", p, name)
			}
			for _, key := range stale {
				t.Errorf("the field table of %s lists spec%s, which the schema no longer has", name, key)
			}
			for _, key := range slices.Sorted(maps.Keys(table.entries)) {
				u := table.entries[key]
				if u.where == "" {
					t.Errorf("spec%s: the entry does not say where", key)
				}
				if u.effect == ignored && !strings.Contains(string(readme), u.where) {
					t.Errorf("spec%s is ignored but README.md has no row containing %q", key, u.where)
				}
			}
		})
	}
}

func TestFieldTableCheckCatchesNewAndStaleFields(t *testing.T) {
	table := &fieldTable{
		embeds: map[string]*fieldTable{".cluster": {entries: map[string]use{".a": one(built, "x")}}},
		entries: map[string]use{
			".cluster":  one(built, "x"),
			".template": tree(built, "x"),
			".gone":     one(controlled, "x"),
		},
	}
	paths := []string{".cluster", ".cluster.a", ".cluster.b", ".template", ".template.spec.containers[].name", ".newField", ".clusterish"}
	unlisted, stale := checkTable(table, paths)
	if want := []string{".cluster.b", ".clusterish", ".newField"}; !slices.Equal(unlisted, want) {
		t.Errorf("unlisted = %v, want %v", unlisted, want)
	}
	if want := []string{".gone"}; !slices.Equal(stale, want) {
		t.Errorf("stale = %v, want %v", stale, want)
	}
}

// The RayCronJob table must follow KubeRay's schema, which ours copies.
func TestCronJobTableCoversKubeRaySchema(t *testing.T) {
	dir := sharedDirOrSkip(t)
	file := filepath.Join(dir, "kuberay", "crds", "ray.io_raycronjobs.yaml")
	if _, err := os.Stat(file); err != nil {
		t.Skipf("KubeRay's RayCronJob CRD not found: %v", err)
	}
	table := fieldTables()["ray.io_raycronjobs.yaml"]
	crd := loadCRD(t, file)
	v := version(crd, "v1")
	spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
	var paths []string
	for p := range flatten(&spec) {
		if p != "" {
			paths = append(paths, p)
		}
	}
	unlisted, stale := checkTable(table, paths)
	// KubeRay's RayJobSpec may have fields our RayJob table does not know (and vice versa);
	// only RayCronJob's own fields are checked here.
	for _, p := range unlisted {
		if !strings.HasPrefix(p, ".jobTemplate.") {
			t.Errorf("KubeRay's RayCronJob spec%s has no entry", p)
		}
	}
	if len(stale) > 0 {
		t.Errorf("RayCronJob entries not in KubeRay's schema: %v", stale)
	}
}
