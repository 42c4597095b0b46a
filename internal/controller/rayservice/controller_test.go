package rayservice

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// createReady creates a RayService and waits until it serves.
func createReady(t *testing.T, rs *rayv1.RayService) *rayv1.RayService {
	t.Helper()
	create(t, rs)
	return waitReady(t, rs.Namespace, rs.Name)
}

func selectedCluster(t *testing.T, ns, svc string) string {
	t.Helper()
	return service(t, ns, svc).Spec.Selector[rayv1.RayClusterLabelKey]
}

func TestCreateBecomesReady(t *testing.T) {
	ns := newNamespace(t)
	rs := createReady(t, newRayService(ns, "svc", "app1"))
	active := rs.Status.ActiveServiceStatus.RayClusterName
	if !strings.HasPrefix(active, "svc-") || len(active) != len("svc-")+5 {
		t.Fatalf("active cluster %q is not named <rayservice>-<5 random>", active)
	}
	if got := clustersOf(t, ns); len(got) != 1 || got[0] != active {
		t.Fatalf("RayClusters = %v, want only %s", got, active)
	}
	if rs.Status.ServiceStatus != rayv1.Running || rs.Status.NumServeEndpoints != 1 {
		t.Fatalf("serviceStatus=%q numServeEndpoints=%d, want Running and 1", rs.Status.ServiceStatus, rs.Status.NumServeEndpoints)
	}
	if a := rs.Status.ActiveServiceStatus.Applications["app1"]; a.Status != rayv1.ApplicationStatusRunning || a.Deployments["echo"].Status != rayv1.DeploymentStatusHealthy {
		t.Fatalf("app1 = %+v, want RUNNING with echo HEALTHY", a)
	}
	if c := condition(rs, string(rayv1.UpgradeInProgress)); c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(rayv1.NoPendingCluster) {
		t.Fatalf("UpgradeInProgress = %+v", c)
	}
	if c := condition(rs, string(rayv1.ServeConfigValid)); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("ServeConfigValid = %+v", c)
	}
	for _, svc := range []string{"svc-head-svc", "svc-serve-svc"} {
		if got := selectedCluster(t, ns, svc); got != active {
			t.Fatalf("%s selects %q, want %q", svc, got, active)
		}
	}
	rc := &rayv1.RayCluster{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: active}, rc); err != nil {
		t.Fatal(err)
	}
	if rc.Annotations[rayv1.HashWithoutReplicasAndWorkersToDeleteKey] != goalHash(&rs.Spec.RayClusterSpec) ||
		rc.Labels[rayv1.RayOriginatedFromCRDLabelKey] != "RayService" || !metav1.IsControlledBy(rc, rs) {
		t.Fatalf("RayCluster metadata: labels=%v annotations=%v", rc.Labels, rc.Annotations)
	}
	pod, err := headPodOf(context.Background(), rc)
	if err != nil || pod == nil || pod.Labels[rayv1.RayClusterServingServiceLabelKey] != "true" {
		t.Fatalf("head pod %v labels: %v", err, pod)
	}
	eventually(t, "events", hasEvent(t, ns, "svc", EventCreatedRayCluster, active))
	eventually(t, "events", hasEvent(t, ns, "svc", EventUpdatedServeApplications, active))
}

func TestServeConfigChangeIsInPlace(t *testing.T) {
	ns := newNamespace(t)
	rs := createReady(t, newRayService(ns, "svc", "app1"))
	active := rs.Status.ActiveServiceStatus.RayClusterName
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) { rs.Spec.ServeConfigV2 = serveConfig("app1", "app2") })
	eventually(t, "app2 running on the active cluster", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		if rs.Status.PendingServiceStatus.RayClusterName != "" || rs.Status.ActiveServiceStatus.RayClusterName != active {
			t.Fatalf("the serve config change started an upgrade: %s", describe(rs))
		}
		return rs.Status.ActiveServiceStatus.Applications["app2"].Status == rayv1.ApplicationStatusRunning, describe(rs)
	})
	if got := clustersOf(t, ns); len(got) != 1 {
		t.Fatalf("RayClusters = %v, want only %s", got, active)
	}
	if apps := headApps(t, ns, active); apps["app2"].Status != "RUNNING" {
		t.Fatalf("the head runs %v", apps)
	}
}

func TestClusterChangeSwitchesOnlyWhenRunning(t *testing.T) {
	ns := newNamespace(t)
	rs := newRayService(ns, "svc", "app1")
	rs.Spec.RayClusterDeletionDelaySeconds = ptr.To[int32](3)
	rs = createReady(t, rs)
	old := rs.Status.ActiveServiceStatus.RayClusterName

	// A cluster change together with a config whose replicas cannot start: only the pending
	// cluster gets the config, and traffic must not move while its application is not RUNNING.
	broken := serveConfig("app1") + "      fail_constructor: boom\n"
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) {
		rs.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Env[0].Value = "2"
		rs.Spec.ServeConfigV2 = broken
	})
	var pending string
	eventually(t, "a pending cluster with a failing application", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		pending = rs.Status.PendingServiceStatus.RayClusterName
		st := rs.Status.PendingServiceStatus.Applications["app1"].Status
		return pending != "" && st != "" && st != rayv1.ApplicationStatusRunning, describe(rs)
	})
	if c := condition(getRS(t, ns, "svc"), string(rayv1.UpgradeInProgress)); c == nil || c.Status != metav1.ConditionTrue || c.Reason != string(rayv1.BothActivePendingClustersExist) {
		t.Fatalf("UpgradeInProgress = %+v", c)
	}
	consistently(t, "traffic on the old cluster", 4*time.Second, func() (bool, string) {
		rs := getRS(t, ns, "svc")
		ok := selectedCluster(t, ns, "svc-serve-svc") == old && rs.Status.ActiveServiceStatus.RayClusterName == old &&
			readyTrue(rs, rayv1.RayServiceReady)
		return ok, describe(rs)
	})
	if apps := headApps(t, ns, old); apps["app1"].Status != "RUNNING" {
		t.Fatalf("the active cluster's application changed during the upgrade: %v", apps)
	}

	// Fix the config: the pending cluster gets it, runs it, and takes the traffic.
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) { rs.Spec.ServeConfigV2 = serveConfig("app1") })
	eventually(t, "switch to the pending cluster", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		return rs.Status.ActiveServiceStatus.RayClusterName == pending && rs.Status.PendingServiceStatus.RayClusterName == "", describe(rs)
	})
	for _, svc := range []string{"svc-head-svc", "svc-serve-svc"} {
		if got := selectedCluster(t, ns, svc); got != pending {
			t.Fatalf("%s selects %q after the switch, want %q", svc, got, pending)
		}
	}
	if apps := headApps(t, ns, pending); apps["app1"].Status != "RUNNING" {
		t.Fatalf("switched to a cluster whose application is %v", apps)
	}
	// The old cluster drains for rayClusterDeletionDelaySeconds, then goes.
	if got := clustersOf(t, ns); len(got) != 2 {
		t.Fatalf("RayClusters right after the switch = %v, want the old one kept for the delay", got)
	}
	eventually(t, "old cluster deleted", func() (bool, string) {
		got := clustersOf(t, ns)
		return len(got) == 1 && got[0] == pending, strings.Join(got, ",")
	})
	// The controller deletes a superseded cluster once rayClusterDeletionDelaySeconds have passed
	// since the superseded-at time it stamped on it, and its event says how long that was.
	var note string
	eventually(t, "deletion event", func() (bool, string) {
		for _, e := range testenv.Events(t, k8s, ns, "RayService", "svc") {
			if e.Reason == EventDeletedRayCluster && strings.Contains(e.Note, "RayCluster "+old+" ") {
				note = e.Note
				return true, ""
			}
		}
		return false, "no " + EventDeletedRayCluster + " event for " + old
	})
	m := regexp.MustCompile(`\(superseded (\S+) ago\)`).FindStringSubmatch(note)
	if m == nil {
		t.Fatalf("deletion event %q does not say when the cluster was superseded", note)
	}
	delay := time.Duration(*rs.Spec.RayClusterDeletionDelaySeconds) * time.Second
	if kept, err := time.ParseDuration(m[1]); err != nil || kept < delay {
		t.Fatalf("deletion event %q: the old cluster was kept %s (%v), want at least the %s deletion delay", note, m[1], err, delay)
	}
	waitReady(t, ns, "svc")
}

func readyTrue(rs *rayv1.RayService, t rayv1.RayServiceConditionType) bool {
	return isTrue(rs.Status.Conditions, t)
}

func TestInvalidServeConfigIsReported(t *testing.T) {
	ns := newNamespace(t)
	rs := createReady(t, newRayService(ns, "svc", "app1"))
	active := rs.Status.ActiveServiceStatus.RayClusterName
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) {
		rs.Spec.ServeConfigV2 = strings.Replace(serveConfig("app1"), "route_prefix: /app1", "route_prefix: bad", 1)
	})
	eventually(t, "ServeConfigValid=False with the dashboard's message", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		c := condition(rs, string(rayv1.ServeConfigValid))
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == rayv1.InvalidServeConfig &&
			strings.Contains(c.Message, "route_prefix must start with '/'"), describe(rs)
	})
	consistently(t, "traffic untouched", 2*time.Second, func() (bool, string) {
		rs := getRS(t, ns, "svc")
		return readyTrue(rs, rayv1.RayServiceReady) && rs.Status.ActiveServiceStatus.RayClusterName == active &&
			rs.Status.PendingServiceStatus.RayClusterName == "" && selectedCluster(t, ns, "svc-serve-svc") == active, describe(rs)
	})
	if apps := headApps(t, ns, active); apps["app1"].Status != "RUNNING" || *apps["app1"].RoutePrefix != "/app1" {
		t.Fatalf("the head runs %v", apps)
	}
	// One rejection, not a retry loop.
	n := 0
	for _, e := range eventsFor(t, ns, "svc") {
		if e.Reason == EventFailedToUpdateServeApplications {
			n++
			if e.Series != nil && e.Series.Count > 1 {
				t.Fatalf("the rejected config was submitted %d times", e.Series.Count)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d %s events, want 1", n, EventFailedToUpdateServeApplications)
	}
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) { rs.Spec.ServeConfigV2 = serveConfig("app1", "app3") })
	eventually(t, "ServeConfigValid=True again", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		c := condition(rs, string(rayv1.ServeConfigValid))
		return c != nil && c.Status == metav1.ConditionTrue && rs.Status.ActiveServiceStatus.Applications["app3"].Status == rayv1.ApplicationStatusRunning, describe(rs)
	})
}

func TestHeadRestartResubmitsConfig(t *testing.T) {
	ns := newNamespace(t)
	rs := createReady(t, newRayService(ns, "svc", "app1"))
	active := rs.Status.ActiveServiceStatus.RayClusterName
	rc := &rayv1.RayCluster{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: active}, rc); err != nil {
		t.Fatal(err)
	}
	oldPod, err := headPodOf(context.Background(), rc)
	if err != nil || oldPod == nil {
		t.Fatalf("head pod: %v", err)
	}
	// The head pod restarts: a fresh head without any application, and a new pod.
	rc.Annotations[holdAnnotation] = "true"
	if err := k8s.Update(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	if _, err := heads.restart(ns, active); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(context.Background(), oldPod); err != nil {
		t.Fatal(err)
	}
	delete(rc.Annotations, holdAnnotation)
	eventually(t, "release the hold", func() (bool, string) {
		fresh := &rayv1.RayCluster{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rc), fresh); err != nil {
			return false, err.Error()
		}
		delete(fresh.Annotations, holdAnnotation)
		if err := k8s.Update(context.Background(), fresh); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	eventually(t, "the config re-sent to the new head", func() (bool, string) {
		apps := headApps(t, ns, active)
		return apps["app1"].Status == "RUNNING", "head apps: " + strings.Join(keys(apps), ",")
	})
	rs = waitReady(t, ns, "svc")
	if rs.Status.ActiveServiceStatus.RayClusterName != active {
		t.Fatalf("the head restart changed the active cluster: %s", describe(rs))
	}
	if got := clustersOf(t, ns); len(got) != 1 {
		t.Fatalf("RayClusters = %v, want only %s", got, active)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestUpgradeStrategyNoneIgnoresClusterChanges(t *testing.T) {
	ns := newNamespace(t)
	rs := newRayService(ns, "svc", "app1")
	rs.Spec.UpgradeStrategy = &rayv1.RayServiceUpgradeStrategy{Type: ptr.To(rayv1.RayServiceUpgradeNone)}
	rs = createReady(t, rs)
	active := rs.Status.ActiveServiceStatus.RayClusterName
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) {
		rs.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Env[0].Value = "2"
		rs.Spec.ServeConfigV2 = serveConfig("app1", "app2")
	})
	eventually(t, "the serve config applied in place", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		return rs.Status.ActiveServiceStatus.Applications["app2"].Status == rayv1.ApplicationStatusRunning, describe(rs)
	})
	consistently(t, "no new cluster", 2*time.Second, func() (bool, string) {
		rs := getRS(t, ns, "svc")
		got := clustersOf(t, ns)
		return len(got) == 1 && rs.Status.PendingServiceStatus.RayClusterName == "" && rs.Status.ActiveServiceStatus.RayClusterName == active, describe(rs)
	})
}

func TestOperatorRestartMidUpgrade(t *testing.T) {
	ns := newNamespace(t)
	rs := createReady(t, newRayService(ns, "svc", "app1"))
	old := rs.Status.ActiveServiceStatus.RayClusterName
	// New clusters inherit the RayService's annotations: hold their heads.
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) {
		metav1.SetMetaDataAnnotation(&rs.ObjectMeta, holdAnnotation, "true")
		rs.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Env[0].Value = "2"
	})
	var pending string
	eventually(t, "pending cluster created", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		pending = rs.Status.PendingServiceStatus.RayClusterName
		return pending != "" && len(clustersOf(t, ns)) == 2, describe(rs)
	})

	op.stop()
	restarted, err := startOperator()
	if err != nil {
		t.Fatal(err)
	}
	op = restarted

	eventually(t, "release the pending head", func() (bool, string) {
		rc := &rayv1.RayCluster{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: pending}, rc); err != nil {
			return false, err.Error()
		}
		delete(rc.Annotations, holdAnnotation)
		if err := k8s.Update(context.Background(), rc); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	eventually(t, "the upgrade completes after the restart", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		got := clustersOf(t, ns)
		return rs.Status.ActiveServiceStatus.RayClusterName == pending && rs.Status.PendingServiceStatus.RayClusterName == "" &&
			len(got) == 1 && got[0] == pending, describe(rs) + " clusters=" + strings.Join(got, ",")
	})
	if old == pending {
		t.Fatal("no new cluster")
	}
	waitReady(t, ns, "svc")
}

func TestSuspendAndResume(t *testing.T) {
	ns := newNamespace(t)
	createReady(t, newRayService(ns, "svc", "app1"))
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) { rs.Spec.Suspend = true })
	eventually(t, "suspended", func() (bool, string) {
		rs := getRS(t, ns, "svc")
		c := condition(rs, string(rayv1.RayServiceSuspended))
		return c != nil && c.Status == metav1.ConditionTrue && len(clustersOf(t, ns)) == 0 &&
			rs.Status.ActiveServiceStatus.RayClusterName == "" && rs.Status.NumServeEndpoints == 0, describe(rs)
	})
	var svcs corev1.ServiceList
	if err := k8s.List(context.Background(), &svcs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.Items {
		if s.DeletionTimestamp == nil {
			t.Fatalf("Service %s survived the suspension", s.Name)
		}
	}
	updateRS(t, ns, "svc", func(rs *rayv1.RayService) { rs.Spec.Suspend = false })
	rs := waitReady(t, ns, "svc")
	if c := condition(rs, string(rayv1.RayServiceSuspended)); c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(rayv1.RayServiceResumed) {
		t.Fatalf("Suspended = %+v", c)
	}
}
