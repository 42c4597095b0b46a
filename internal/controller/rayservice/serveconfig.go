package rayservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// serveConfigJSON converts serveConfigV2 (YAML) to the JSON body of PUT /api/serve/applications/.
// An empty config is nil: there is nothing to deploy.
func serveConfigJSON(y string) (json.RawMessage, error) {
	if strings.TrimSpace(y) == "" {
		return nil, nil
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		return nil, fmt.Errorf("not a YAML mapping: %w", err)
	}
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("converting to JSON: %w", err)
	}
	return b, nil
}

// configHash identifies a converted config (map keys are sorted by encoding/json, so formatting
// and key order of the YAML do not matter).
func configHash(b json.RawMessage) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// numApplications counts the applications a config declares.
func numApplications(b json.RawMessage) int {
	var c struct {
		Applications []json.RawMessage `json:"applications"`
	}
	if json.Unmarshal(b, &c) != nil {
		return 0
	}
	return len(c.Applications)
}

// serveCache remembers, per RayService and cluster, which config was last submitted to which head
// pod, and whether the dashboard rejected it. It only saves PUTs: when it is empty (operator
// restart) the config is submitted once more, which Serve treats as a no-op.
type serveCache struct {
	mu sync.Mutex
	m  map[types.NamespacedName]map[string]cacheEntry
}

type cacheEntry struct {
	clusterUID  types.UID
	configHash  string
	headUID     types.UID
	rejected    string // the dashboard's 400 message
	submittedAt time.Time
}

func newServeCache() *serveCache {
	return &serveCache{m: map[types.NamespacedName]map[string]cacheEntry{}}
}

func (c *serveCache) get(rs types.NamespacedName, cluster string) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[rs][cluster]
	return e, ok
}

func (c *serveCache) put(rs types.NamespacedName, cluster string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[rs] == nil {
		c.m[rs] = map[string]cacheEntry{}
	}
	c.m[rs][cluster] = e
}

// retain drops the entries of clusters that are neither active nor pending.
func (c *serveCache) retain(rs types.NamespacedName, keep ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.m[rs] {
		found := false
		for _, k := range keep {
			found = found || (k != "" && k == name)
		}
		if !found {
			delete(c.m[rs], name)
		}
	}
}

func (c *serveCache) forgetService(rs types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, rs)
}

// needsSubmit decides whether to PUT the config to a cluster: when nothing was submitted to this
// cluster's current head pod, when the config changed, or when the head reports no application
// although the config has some (it lost them: restarted without GCS fault tolerance). A config the
// dashboard rejected is not sent again to the same head: the rejection is reported instead of
// retried.
func needsSubmit(e cacheEntry, cached bool, clusterUID types.UID, hash string, headUID types.UID, reported, wanted int) bool {
	if !cached || e.clusterUID != clusterUID || e.configHash != hash || e.headUID != headUID {
		return true
	}
	if e.rejected != "" {
		return false
	}
	return reported == 0 && wanted > 0
}

// reconcileServe submits serveConfigV2 where it is due and reads the applications back: to the
// pending cluster, and to the active one only when no upgrade is under way (during an upgrade the
// active cluster keeps serving what it has, as in KubeRay).
func (r *Reconciler) reconcileServe(ctx context.Context, s *scope) (bool, error) {
	key := client.ObjectKeyFromObject(s.rs)
	r.cache.retain(key, s.activeName, s.pendingName)
	cfg, err := serveConfigJSON(s.rs.Spec.ServeConfigV2)
	if err != nil {
		return false, err // validated before; unreachable
	}
	var errs []error
	if s.pending != nil {
		errs = append(errs, r.serveCluster(ctx, s, s.pending, cfg, true))
	}
	if s.active != nil {
		errs = append(errs, r.serveCluster(ctx, s, s.active, cfg, s.pendingName == ""))
	}
	return false, errors.Join(errs...)
}

// serveCluster talks to one cluster's dashboard once its head pod is ready.
func (r *Reconciler) serveCluster(ctx context.Context, s *scope, rc *rayv1.RayCluster, cfg json.RawMessage, submit bool) error {
	cs := s.serveOf(rc.Name)
	head, err := r.headPod(ctx, rc)
	if err != nil {
		return err
	}
	if head == nil || !resources.PodRunningAndReady(head) {
		return nil // the head pod's events bring the RayService back
	}
	cs.headReady = true
	dc, err := r.Resolver.DashboardClient(ctx, rc)
	if err != nil {
		return fmt.Errorf("reaching the dashboard of RayCluster %s: %w", rc.Name, err)
	}
	details, err := dc.GetServeApplications(ctx)
	if err != nil {
		return fmt.Errorf("reading the Serve applications of RayCluster %s: %w", rc.Name, err)
	}
	key := client.ObjectKeyFromObject(s.rs)
	hash := configHash(cfg)
	entry, cached := r.cache.get(key, rc.Name)
	if submit && cfg != nil && needsSubmit(entry, cached, rc.UID, hash, head.UID, len(details.Applications), numApplications(cfg)) {
		entry = cacheEntry{clusterUID: rc.UID, configHash: hash, headUID: head.UID, submittedAt: s.now}
		s.log.V(2).Info("Submitting the Serve config", "RayCluster", rc.Name, "configHash", hash)
		err := dc.DeployServeApplications(ctx, cfg)
		var he *dashboard.HTTPError
		switch {
		case errors.As(err, &he) && he.StatusCode == http.StatusBadRequest:
			entry.rejected = strings.TrimSpace(he.Body)
			r.cache.put(key, rc.Name, entry)
			s.events.Add(corev1.EventTypeWarning, EventFailedToUpdateServeApplications, eventActionDeploy,
				"The dashboard of RayCluster %s rejected serveConfigV2: %s", rc.Name, entry.rejected)
		case err != nil:
			s.events.Add(corev1.EventTypeWarning, EventFailedToUpdateServeApplications, eventActionDeploy,
				"Failed to submit serveConfigV2 to RayCluster %s: %v", rc.Name, err)
			return fmt.Errorf("submitting the Serve config to RayCluster %s: %w", rc.Name, err)
		default:
			r.cache.put(key, rc.Name, entry)
			s.events.Add(corev1.EventTypeNormal, EventUpdatedServeApplications, eventActionDeploy,
				"Submitted serveConfigV2 to RayCluster %s", rc.Name)
			if details, err = dc.GetServeApplications(ctx); err != nil {
				return fmt.Errorf("reading the Serve applications of RayCluster %s: %w", rc.Name, err)
			}
		}
		cached = true
	}
	if submit && cached && entry.configHash == hash && entry.headUID == head.UID {
		cs.rejected = entry.rejected
		cs.accepted = entry.rejected == ""
	}
	cs.known = true
	cs.apps = appStatuses(details)
	switch {
	case appsRunning(cs.apps):
		s.requeueIn(r.cfg.ServeRecheckInterval)
	case cs.rejected != "":
		// Nothing changes until the spec (or the head) does; both are watched.
	default:
		waited := time.Duration(0)
		if cached && !entry.submittedAt.IsZero() {
			waited = s.now.Sub(entry.submittedAt)
		}
		s.requeueIn(serveBackoff(waited, r.cfg.ServeMinBackoff, r.cfg.ServeMaxBackoff))
	}
	return nil
}

// appStatuses converts the dashboard's applications to status (the unnamed one is "default").
func appStatuses(d *dashboard.ServeInstanceDetails) map[string]rayv1.AppStatus {
	if d == nil || len(d.Applications) == 0 {
		return nil
	}
	out := make(map[string]rayv1.AppStatus, len(d.Applications))
	for name, a := range d.Applications {
		if name == "" {
			name = rayv1.DefaultServeAppName
		}
		st := rayv1.AppStatus{Status: string(a.Status), Message: a.Message}
		if len(a.Deployments) > 0 {
			st.Deployments = make(map[string]rayv1.ServeDeploymentStatus, len(a.Deployments))
			for dn, dep := range a.Deployments {
				st.Deployments[dn] = rayv1.ServeDeploymentStatus{Status: string(dep.Status), Message: dep.Message}
			}
		}
		out[name] = st
	}
	return out
}

// headPod is the newest head pod controlled by the cluster that is not being deleted.
func (r *Reconciler) headPod(ctx context.Context, rc *rayv1.RayCluster) (*corev1.Pod, error) {
	var list corev1.PodList
	if err := r.client.List(ctx, &list, client.InNamespace(rc.Namespace), client.MatchingLabels{
		rayv1.RayClusterLabelKey:  rc.Name,
		rayv1.RayNodeTypeLabelKey: string(rayv1.HeadNode),
	}); err != nil {
		return nil, fmt.Errorf("listing head pods of RayCluster %s: %w", rc.Name, err)
	}
	return resources.NewestHeadPod(rc, list.Items), nil
}

// clusterPods lists the pods controlled by the cluster (by its UID).
func (r *Reconciler) clusterPods(ctx context.Context, rc *rayv1.RayCluster) ([]*corev1.Pod, error) {
	var list corev1.PodList
	if err := r.client.List(ctx, &list, client.InNamespace(rc.Namespace), client.MatchingLabels{rayv1.RayClusterLabelKey: rc.Name}); err != nil {
		return nil, fmt.Errorf("listing pods of RayCluster %s: %w", rc.Name, err)
	}
	out := make([]*corev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], rc) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}
