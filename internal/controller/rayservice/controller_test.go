package rayservice

import (
	"context"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/dashboard"
	. "github.com/rayk8s/rayk8s/internal/testsupport/matchers"
)

// createReady creates a RayService and waits until it serves.
func createReady(rs *rayv1.RayService) *rayv1.RayService {
	GinkgoHelper()
	create(rs)
	return waitReady(rs.Namespace, rs.Name)
}

func selectedCluster(ns, svc string) string {
	GinkgoHelper()
	return service(ns, svc).Spec.Selector[rayv1.RayClusterLabelKey]
}

// haveAppStatus matches head applications (as headApps returns them) whose app has the status.
func haveAppStatus(app, status string) OmegaMatcher {
	return HaveKeyWithValue(app, HaveField("Status", dashboard.ApplicationStatus(status)))
}

var _ = Describe("RayService controller", func() {
	It("becomes ready on a new cluster", func() {
		ns := newNamespace()
		rs := createReady(newRayService(ns, "svc", "app1"))
		active := rs.Status.ActiveServiceStatus.RayClusterName
		Expect(active).To(MatchRegexp(`^svc-.{5}$`), "active cluster is not named <rayservice>-<5 random>")
		Expect(clustersOf(ns)).To(Equal([]string{active}), "RayClusters, want only the active one")
		Expect(rs.Status.ServiceStatus).To(Equal(rayv1.Running), "serviceStatus")
		Expect(rs.Status.NumServeEndpoints).To(BeEquivalentTo(1), "numServeEndpoints")
		a := rs.Status.ActiveServiceStatus.Applications["app1"]
		Expect(a.Status).To(Equal(rayv1.ApplicationStatusRunning), "app1 = %+v", a)
		Expect(a.Deployments["echo"].Status).To(Equal(rayv1.DeploymentStatusHealthy), "app1 = %+v", a)
		Expect(rs).To(HaveCondition(rayv1.UpgradeInProgress, metav1.ConditionFalse, string(rayv1.NoPendingCluster)))
		Expect(rs).To(HaveCondition(rayv1.ServeConfigValid, metav1.ConditionTrue, ""))
		for _, svc := range []string{"svc-head-svc", "svc-serve-svc"} {
			Expect(selectedCluster(ns, svc)).To(Equal(active), "%s selects", svc)
		}
		rc := &rayv1.RayCluster{}
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: active}, rc)).To(Succeed())
		Expect(rc.Annotations).To(HaveKeyWithValue(rayv1.HashWithoutReplicasAndWorkersToDeleteKey, goalHash(&rs.Spec.RayClusterSpec)), "RayCluster annotations")
		Expect(rc.Labels).To(HaveKeyWithValue(rayv1.RayOriginatedFromCRDLabelKey, "RayService"), "RayCluster labels")
		Expect(rc).To(BeControlledBy(rs))
		pod, err := headPodOf(context.Background(), rc)
		Expect(err).NotTo(HaveOccurred())
		Expect(pod).NotTo(BeNil(), "head pod")
		Expect(pod.Labels).To(HaveKeyWithValue(rayv1.RayClusterServingServiceLabelKey, "true"), "head pod labels")
		Eventually(eventsOf(ns, "svc")).Should(HaveEvent("", EventCreatedRayCluster, active), "events")
		Eventually(eventsOf(ns, "svc")).Should(HaveEvent("", EventUpdatedServeApplications, active), "events")
	})

	It("applies a serve config change in place", func() {
		ns := newNamespace()
		rs := createReady(newRayService(ns, "svc", "app1"))
		active := rs.Status.ActiveServiceStatus.RayClusterName
		updateRS(ns, "svc", func(rs *rayv1.RayService) { rs.Spec.ServeConfigV2 = serveConfig("app1", "app2") })
		waitRS(ns, "svc", "app2 running on the active cluster", WithTransform(func(rs *rayv1.RayService) string {
			if rs.Status.PendingServiceStatus.RayClusterName != "" || rs.Status.ActiveServiceStatus.RayClusterName != active {
				StopTrying("the serve config change started an upgrade: " + describe(rs)).Now()
			}
			return rs.Status.ActiveServiceStatus.Applications["app2"].Status
		}, Equal(rayv1.ApplicationStatusRunning)))
		Expect(clustersOf(ns)).To(HaveLen(1), "RayClusters, want only %s", active)
		Expect(headApps(ns, active)).To(haveAppStatus("app2", "RUNNING"), "the head's applications")
	})

	It("switches traffic to a new cluster only once its applications run", func() {
		ns := newNamespace()
		rs := newRayService(ns, "svc", "app1")
		rs.Spec.RayClusterDeletionDelaySeconds = ptr.To[int32](3)
		rs = createReady(rs)
		old := rs.Status.ActiveServiceStatus.RayClusterName

		// A cluster change together with a config whose replicas cannot start: only the pending
		// cluster gets the config, and traffic must not move while its application is not RUNNING.
		broken := serveConfig("app1") + "      fail_constructor: boom\n"
		updateRS(ns, "svc", func(rs *rayv1.RayService) {
			rs.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Env[0].Value = "2"
			rs.Spec.ServeConfigV2 = broken
		})
		cur := waitRS(ns, "svc", "a pending cluster with a failing application", And(
			HaveField("Status.PendingServiceStatus.RayClusterName", Not(BeEmpty())),
			HaveField("Status.PendingServiceStatus.Applications", HaveKeyWithValue("app1",
				HaveField("Status", And(Not(BeEmpty()), Not(Equal(rayv1.ApplicationStatusRunning))))))))
		pending := cur.Status.PendingServiceStatus.RayClusterName
		Expect(getRS(ns, "svc")).To(HaveCondition(rayv1.UpgradeInProgress, metav1.ConditionTrue, string(rayv1.BothActivePendingClustersExist)))
		Consistently(func(g Gomega) {
			rs := getRS(ns, "svc")
			g.Expect(selectedCluster(ns, "svc-serve-svc")).To(Equal(old), describe(rs))
			g.Expect(rs.Status.ActiveServiceStatus.RayClusterName).To(Equal(old), describe(rs))
			g.Expect(rs).To(HaveCondition(rayv1.RayServiceReady, metav1.ConditionTrue, ""), describe(rs))
		}).WithTimeout(4*time.Second).Should(Succeed(), "traffic on the old cluster")
		Expect(headApps(ns, old)).To(haveAppStatus("app1", "RUNNING"), "the active cluster's application changed during the upgrade")

		// Fix the config: the pending cluster gets it, runs it, and takes the traffic.
		updateRS(ns, "svc", func(rs *rayv1.RayService) { rs.Spec.ServeConfigV2 = serveConfig("app1") })
		waitRS(ns, "svc", "switch to the pending cluster", And(
			HaveField("Status.ActiveServiceStatus.RayClusterName", pending),
			HaveField("Status.PendingServiceStatus.RayClusterName", BeEmpty())))
		for _, svc := range []string{"svc-head-svc", "svc-serve-svc"} {
			Expect(selectedCluster(ns, svc)).To(Equal(pending), "%s selects after the switch", svc)
		}
		Expect(headApps(ns, pending)).To(haveAppStatus("app1", "RUNNING"), "switched to a cluster whose application is not running")
		// The old cluster drains for rayClusterDeletionDelaySeconds, then goes.
		Expect(clustersOf(ns)).To(HaveLen(2), "RayClusters right after the switch, want the old one kept for the delay")
		Eventually(func() []string { return clustersOf(ns) }).Should(Equal([]string{pending}), "old cluster deleted")
		// The controller deletes a superseded cluster once rayClusterDeletionDelaySeconds have passed
		// since the superseded-at time it stamped on it, and its event says how long that was.
		var deleted []eventsv1.Event
		Eventually(func() ([]eventsv1.Event, error) {
			var err error
			deleted, err = eventsOf(ns, "svc")()
			return deleted, err
		}).Should(HaveEvent("", EventDeletedRayCluster, "RayCluster "+old+" "), "deletion event")
		var note string
		for _, e := range deleted {
			if e.Reason == EventDeletedRayCluster && strings.Contains(e.Note, "RayCluster "+old+" ") {
				note = e.Note
				break
			}
		}
		m := regexp.MustCompile(`\(superseded (\S+) ago\)`).FindStringSubmatch(note)
		Expect(m).NotTo(BeNil(), "deletion event %q does not say when the cluster was superseded", note)
		delay := time.Duration(*rs.Spec.RayClusterDeletionDelaySeconds) * time.Second
		kept, err := time.ParseDuration(m[1])
		Expect(err).NotTo(HaveOccurred(), "deletion event %q", note)
		Expect(kept).To(BeNumerically(">=", delay), "deletion event %q: how long the old cluster was kept, want at least the deletion delay", note)
		waitReady(ns, "svc")
	})

	It("reports an invalid serve config without touching traffic", func() {
		ns := newNamespace()
		rs := createReady(newRayService(ns, "svc", "app1"))
		active := rs.Status.ActiveServiceStatus.RayClusterName
		updateRS(ns, "svc", func(rs *rayv1.RayService) {
			rs.Spec.ServeConfigV2 = strings.Replace(serveConfig("app1"), "route_prefix: /app1", "route_prefix: bad", 1)
		})
		waitRS(ns, "svc", "ServeConfigValid=False with the dashboard's message", And(
			HaveCondition(rayv1.ServeConfigValid, metav1.ConditionFalse, rayv1.InvalidServeConfig),
			WithTransform(conditionMessage(rayv1.ServeConfigValid), ContainSubstring("route_prefix must start with '/'"))))
		Consistently(func(g Gomega) {
			rs := getRS(ns, "svc")
			g.Expect(rs).To(HaveCondition(rayv1.RayServiceReady, metav1.ConditionTrue, ""), describe(rs))
			g.Expect(rs.Status.ActiveServiceStatus.RayClusterName).To(Equal(active), describe(rs))
			g.Expect(rs.Status.PendingServiceStatus.RayClusterName).To(BeEmpty(), describe(rs))
			g.Expect(selectedCluster(ns, "svc-serve-svc")).To(Equal(active), describe(rs))
		}).WithTimeout(2*time.Second).Should(Succeed(), "traffic untouched")
		apps := headApps(ns, active)
		Expect(apps).To(haveAppStatus("app1", "RUNNING"), "the head's applications")
		Expect(apps["app1"].RoutePrefix).To(HaveValue(Equal("/app1")), "the head's app1 route prefix")
		// One rejection, not a retry loop.
		events, err := eventsOf(ns, "svc")()
		Expect(err).NotTo(HaveOccurred())
		var rejections []eventsv1.Event
		for _, e := range events {
			if e.Reason == EventFailedToUpdateServeApplications {
				rejections = append(rejections, e)
			}
		}
		Expect(rejections).To(HaveLen(1), "%s events", EventFailedToUpdateServeApplications)
		Expect(rejections[0].Series).To(Or(BeNil(), HaveField("Count", BeNumerically("<=", 1))), "the rejected config was submitted more than once")
		updateRS(ns, "svc", func(rs *rayv1.RayService) { rs.Spec.ServeConfigV2 = serveConfig("app1", "app3") })
		waitRS(ns, "svc", "ServeConfigValid=True again", And(
			HaveCondition(rayv1.ServeConfigValid, metav1.ConditionTrue, ""),
			HaveField("Status.ActiveServiceStatus.Applications", HaveKeyWithValue("app3", HaveField("Status", rayv1.ApplicationStatusRunning)))))
	})

	It("re-sends the serve config after a head restart", func() {
		ns := newNamespace()
		rs := createReady(newRayService(ns, "svc", "app1"))
		active := rs.Status.ActiveServiceStatus.RayClusterName
		rc := &rayv1.RayCluster{}
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: active}, rc)).To(Succeed())
		oldPod, err := headPodOf(context.Background(), rc)
		Expect(err).NotTo(HaveOccurred())
		Expect(oldPod).NotTo(BeNil(), "head pod")
		// The head pod restarts: a fresh head without any application, and a new pod.
		rc.Annotations[holdAnnotation] = "true"
		Expect(k8s.Update(context.Background(), rc)).To(Succeed())
		_, err = heads.restart(ns, active)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Delete(context.Background(), oldPod)).To(Succeed())
		releaseHold(client.ObjectKeyFromObject(rc))
		Eventually(func() map[string]dashboard.ApplicationDetails { return headApps(ns, active) }).
			Should(haveAppStatus("app1", "RUNNING"), "the config re-sent to the new head")
		rs = waitReady(ns, "svc")
		Expect(rs.Status.ActiveServiceStatus.RayClusterName).To(Equal(active), "the head restart changed the active cluster: %s", describe(rs))
		Expect(clustersOf(ns)).To(HaveLen(1), "RayClusters, want only %s", active)
	})

	It("ignores cluster changes with upgradeStrategy None", func() {
		ns := newNamespace()
		rs := newRayService(ns, "svc", "app1")
		rs.Spec.UpgradeStrategy = &rayv1.RayServiceUpgradeStrategy{Type: ptr.To(rayv1.RayServiceUpgradeNone)}
		rs = createReady(rs)
		active := rs.Status.ActiveServiceStatus.RayClusterName
		updateRS(ns, "svc", func(rs *rayv1.RayService) {
			rs.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Env[0].Value = "2"
			rs.Spec.ServeConfigV2 = serveConfig("app1", "app2")
		})
		waitRS(ns, "svc", "the serve config applied in place", HaveField("Status.ActiveServiceStatus.Applications",
			HaveKeyWithValue("app2", HaveField("Status", rayv1.ApplicationStatusRunning))))
		Consistently(func(g Gomega) {
			rs := getRS(ns, "svc")
			g.Expect(clustersOf(ns)).To(HaveLen(1), describe(rs))
			g.Expect(rs.Status.PendingServiceStatus.RayClusterName).To(BeEmpty(), describe(rs))
			g.Expect(rs.Status.ActiveServiceStatus.RayClusterName).To(Equal(active), describe(rs))
		}).WithTimeout(2*time.Second).Should(Succeed(), "no new cluster")
	})

	It("completes an upgrade across an operator restart", func() {
		ns := newNamespace()
		rs := createReady(newRayService(ns, "svc", "app1"))
		old := rs.Status.ActiveServiceStatus.RayClusterName
		// New clusters inherit the RayService's annotations: hold their heads.
		updateRS(ns, "svc", func(rs *rayv1.RayService) {
			metav1.SetMetaDataAnnotation(&rs.ObjectMeta, holdAnnotation, "true")
			rs.Spec.RayClusterSpec.HeadGroupSpec.Template.Spec.Containers[0].Env[0].Value = "2"
		})
		var pending string
		Eventually(func(g Gomega) {
			rs := getRS(ns, "svc")
			pending = rs.Status.PendingServiceStatus.RayClusterName
			g.Expect(pending).NotTo(BeEmpty(), describe(rs))
			g.Expect(clustersOf(ns)).To(HaveLen(2), describe(rs))
		}).Should(Succeed(), "pending cluster created")

		op.stop()
		restarted, err := startOperator()
		Expect(err).NotTo(HaveOccurred())
		op = restarted

		releaseHold(client.ObjectKey{Namespace: ns, Name: pending})
		Eventually(func(g Gomega) {
			rs := getRS(ns, "svc")
			got := clustersOf(ns)
			g.Expect(rs.Status.ActiveServiceStatus.RayClusterName).To(Equal(pending), describe(rs))
			g.Expect(rs.Status.PendingServiceStatus.RayClusterName).To(BeEmpty(), describe(rs))
			g.Expect(got).To(Equal([]string{pending}), "clusters")
		}).Should(Succeed(), "the upgrade completes after the restart")
		Expect(pending).NotTo(Equal(old), "no new cluster")
		waitReady(ns, "svc")
	})

	It("suspends and resumes", func() {
		ns := newNamespace()
		createReady(newRayService(ns, "svc", "app1"))
		updateRS(ns, "svc", func(rs *rayv1.RayService) { rs.Spec.Suspend = true })
		Eventually(func(g Gomega) {
			rs := getRS(ns, "svc")
			g.Expect(rs).To(HaveCondition(rayv1.RayServiceSuspended, metav1.ConditionTrue, ""), describe(rs))
			g.Expect(clustersOf(ns)).To(BeEmpty(), describe(rs))
			g.Expect(rs.Status.ActiveServiceStatus.RayClusterName).To(BeEmpty(), describe(rs))
			g.Expect(rs.Status.NumServeEndpoints).To(BeZero(), describe(rs))
		}).Should(Succeed(), "suspended")
		var svcs corev1.ServiceList
		Expect(k8s.List(context.Background(), &svcs, client.InNamespace(ns))).To(Succeed())
		for _, s := range svcs.Items {
			Expect(s.DeletionTimestamp).NotTo(BeNil(), "Service %s survived the suspension", s.Name)
		}
		updateRS(ns, "svc", func(rs *rayv1.RayService) { rs.Spec.Suspend = false })
		rs := waitReady(ns, "svc")
		Expect(rs).To(HaveCondition(rayv1.RayServiceSuspended, metav1.ConditionFalse, string(rayv1.RayServiceResumed)))
	})
})

// releaseHold removes the hold annotation from the RayCluster, retrying on conflicts.
func releaseHold(key client.ObjectKey) {
	GinkgoHelper()
	Eventually(func() error {
		rc := &rayv1.RayCluster{}
		if err := k8s.Get(context.Background(), key, rc); err != nil {
			return err
		}
		delete(rc.Annotations, holdAnnotation)
		return k8s.Update(context.Background(), rc)
	}).Should(Succeed(), "release the hold on %s", key)
}

// conditionMessage returns a function reading a condition's message ("" when it is missing), for
// WithTransform.
func conditionMessage(t rayv1.RayServiceConditionType) func(*rayv1.RayService) string {
	return func(rs *rayv1.RayService) string {
		for _, c := range rs.Status.Conditions {
			if c.Type == string(t) {
				return c.Message
			}
		}
		return ""
	}
}
