package raycluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

func TestCreateClusterCreatesPodsAndServicesAndReportsStatus(t *testing.T) {
	ns := newNamespace(t)
	kubelet.hold(ns, true)
	c := makeCluster(ns, "demo").workers("small", 2, 0, 5).obj()
	create(t, c)
	key := client.ObjectKeyFromObject(c)

	eventually(t, "the head pod", countPods(t, ns, rayv1.HeadNode, "", 1))
	eventually(t, "2 worker pods", countPods(t, ns, rayv1.WorkerNode, "small", 2))
	eventually(t, "the head service", func() error {
		var svc corev1.Service
		return k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "demo-head-svc"}, &svc)
	})
	// Every pod is Pending: the cluster must not be reported ready (users' complaint #13).
	eventually(t, "Provisioned=False while pods are Pending", hasCondition(t, key, rayv1.RayClusterProvisioned, metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning))
	eventually(t, "HeadPodReady=False while the head is Pending", hasCondition(t, key, rayv1.HeadPodReady, metav1.ConditionFalse, ""))
	if st := getCluster(t, key).Status; st.State == rayv1.ClusterStateReady {
		t.Fatalf("state is ready while every pod is Pending: %+v", st)
	}

	kubelet.hold(ns, false)
	eventually(t, "state ready", stateIs(t, key, rayv1.ClusterStateReady))
	eventually(t, "Provisioned=True", hasCondition(t, key, rayv1.RayClusterProvisioned, metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime))
	eventually(t, "HeadPodReady=True", hasCondition(t, key, rayv1.HeadPodReady, metav1.ConditionTrue, rayv1.HeadPodRunningAndReady))
	st := getCluster(t, key).Status
	head := listPods(t, ns, rayv1.HeadNode, "")[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"readyWorkerReplicas", st.ReadyWorkerReplicas, int32(2)},
		{"availableWorkerReplicas", st.AvailableWorkerReplicas, int32(2)},
		{"desiredWorkerReplicas", st.DesiredWorkerReplicas, int32(2)},
		{"maxWorkerReplicas", st.MaxWorkerReplicas, int32(5)},
		{"desiredCPU", st.DesiredCPU.String(), "3"},
		{"desiredMemory", st.DesiredMemory.String(), "2Gi"},
		{"head.podName", st.Head.PodName, head.Name},
		{"head.podIP", st.Head.PodIP, head.Status.PodIP},
		{"head.serviceName", st.Head.ServiceName, "demo-head-svc"},
		{"head.serviceIP (headless: the pod IP)", st.Head.ServiceIP, head.Status.PodIP},
		{"observedGeneration", st.ObservedGeneration, getCluster(t, key).Generation},
		{"has a ready transition time", st.StateTransitionTimes[rayv1.ClusterStateReady] != nil, true},
		{"has endpoints", len(st.Endpoints) > 0, true},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("status %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, p := range append(listPods(t, ns, "", ""), corev1.Pod{}) {
		if p.Name == "" {
			continue
		}
		if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != c.UID && ref.UID != getCluster(t, key).UID {
			t.Errorf("pod %s is not controlled by the cluster: %+v", p.Name, p.OwnerReferences)
		}
	}
	eventually(t, "CreatedHeadPod event", hasEvent(t, key, corev1.EventTypeNormal, EventCreatedHeadPod, head.Name))
	eventually(t, "CreatedWorkerPod event", hasEvent(t, key, corev1.EventTypeNormal, EventCreatedWorkerPod, "small"))
	eventually(t, "Provisioned event", hasEvent(t, key, corev1.EventTypeNormal, string(rayv1.RayClusterProvisioned), ""))

	// A worker going back to not-ready withdraws "ready" (KubeRay keeps it forever).
	w := listPods(t, ns, rayv1.WorkerNode, "small")[0]
	setPodStatus(t, &w, func(s *corev1.PodStatus) {
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
	})
	eventually(t, "state no longer ready", func() error {
		if s := getCluster(t, key).Status; s.State == rayv1.ClusterStateReady || s.ReadyWorkerReplicas != 1 {
			return fmt.Errorf("state %q, ready workers %d", s.State, s.ReadyWorkerReplicas)
		}
		return nil
	})
	eventually(t, "Provisioned stays True", hasCondition(t, key, rayv1.RayClusterProvisioned, metav1.ConditionTrue, ""))
}

func TestScaleUpAndDown(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "scale").workers("small", 1, 0, 10).obj()
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "1 worker", countPods(t, ns, rayv1.WorkerNode, "small", 1))

	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](4) })
	eventually(t, "4 workers", countPods(t, ns, rayv1.WorkerNode, "small", 4))
	eventually(t, "ready with 4 workers", func() error {
		s := getCluster(t, key).Status
		if s.State != rayv1.ClusterStateReady || s.ReadyWorkerReplicas != 4 {
			return fmt.Errorf("state %q ready workers %d", s.State, s.ReadyWorkerReplicas)
		}
		return nil
	})
	idx := map[string]bool{}
	for _, p := range listPods(t, ns, rayv1.WorkerNode, "small") {
		idx[p.Labels[rayv1.RayWorkerReplicaIndexKey]] = true
	}
	if len(idx) != 4 || !idx["0"] || !idx["3"] {
		t.Errorf("replica indexes are %v, want 0..3", idx)
	}

	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](1) })
	eventually(t, "1 worker", countPods(t, ns, rayv1.WorkerNode, "small", 1))
	// Replicas above maxReplicas are clamped (CEL rejects replicas > max, so lower max instead).
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](0)
		c.Spec.WorkerGroupSpecs[0].MinReplicas = ptr.To[int32](2)
	})
	eventually(t, "minReplicas workers", countPods(t, ns, rayv1.WorkerNode, "small", 2))
	eventually(t, "status counts", func() error {
		s := getCluster(t, key).Status
		if s.DesiredWorkerReplicas != 2 || s.MinWorkerReplicas != 2 {
			return fmt.Errorf("desired %d min %d", s.DesiredWorkerReplicas, s.MinWorkerReplicas)
		}
		return nil
	})
}

func TestWorkersToDelete(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "wtd").workers("small", 3, 0, 10).obj()
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "3 workers", countPods(t, ns, rayv1.WorkerNode, "small", 3))
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	pods := listPods(t, ns, rayv1.WorkerNode, "small")
	victim := pods[1].Name

	// With autoscaling on, lowering replicas alone deletes nothing: the autoscaler names pods.
	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.WorkerGroupSpecs[0].Replicas = ptr.To[int32](2) })
	waitReconciled(t, key)
	if got := listPods(t, ns, rayv1.WorkerNode, "small"); len(got) != 3 {
		t.Fatalf("the controller scaled down on its own with autoscaling on: %v", podNames(got))
	}
	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.WorkerGroupSpecs[0].ScaleStrategy.WorkersToDelete = []string{victim}
	})
	eventually(t, "2 workers", countPods(t, ns, rayv1.WorkerNode, "small", 2))
	if slices.Contains(podNames(listPods(t, ns, rayv1.WorkerNode, "small")), victim) {
		t.Fatalf("pod %s named in workersToDelete still exists", victim)
	}
	// The list stays until the autoscaler clears it; the controller must not recreate anything.
	waitReconciled(t, key)
	if got := listPods(t, ns, rayv1.WorkerNode, "small"); len(got) != 2 {
		t.Fatalf("workers after workersToDelete: %v, want 2", podNames(got))
	}
	// The autoscaler RBAC objects exist.
	for _, obj := range []client.Object{&corev1.ServiceAccount{}, &rbacRole{}, &rbacRoleBinding{}} {
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "wtd"}, obj); err != nil {
			t.Errorf("autoscaler %T: %v", obj, err)
		}
	}
}

func TestSuspendAndResume(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "susp").workers("small", 2, 0, 10).obj()
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "Provisioned", hasCondition(t, key, rayv1.RayClusterProvisioned, metav1.ConditionTrue, ""))

	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.Suspend = ptr.To(true) })
	eventually(t, "no pods", countPods(t, ns, "", "", 0))
	eventually(t, "Suspended=True", hasCondition(t, key, rayv1.RayClusterSuspended, metav1.ConditionTrue, rayv1.RayClusterSuspendedReason))
	eventually(t, "Suspending=False", hasCondition(t, key, rayv1.RayClusterSuspending, metav1.ConditionFalse, ""))
	eventually(t, "Provisioned=False", hasCondition(t, key, rayv1.RayClusterProvisioned, metav1.ConditionFalse, rayv1.RayClusterPodsProvisioning))
	eventually(t, "state suspended", stateIs(t, key, rayv1.ClusterStateSuspended))
	eventually(t, "Suspending event", hasEvent(t, key, corev1.EventTypeNormal, string(rayv1.RayClusterSuspending), ""))
	eventually(t, "Suspended event", hasEvent(t, key, corev1.EventTypeNormal, string(rayv1.RayClusterSuspended), ""))
	// Stays suspended.
	waitReconciled(t, key)
	if got := listPods(t, ns, "", ""); len(got) != 0 {
		t.Fatalf("pods recreated while suspended: %v", podNames(got))
	}

	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.Suspend = ptr.To(false) })
	eventually(t, "Suspended=False", hasCondition(t, key, rayv1.RayClusterSuspended, metav1.ConditionFalse, ""))
	eventually(t, "3 pods", countPods(t, ns, "", "", 3))
	eventually(t, "Provisioned again", hasCondition(t, key, rayv1.RayClusterProvisioned, metav1.ConditionTrue, rayv1.AllPodRunningAndReadyFirstTime))
	eventually(t, "state ready", stateIs(t, key, rayv1.ClusterStateReady))
}

func TestFailedWorkerIsReplaced(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "fw").workers("small", 2, 0, 10).obj()
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	victim := listPods(t, ns, rayv1.WorkerNode, "small")[0]
	setPodStatus(t, &victim, func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed })
	eventually(t, "the failed worker replaced", func() error {
		pods := listPods(t, ns, rayv1.WorkerNode, "small")
		if len(pods) != 2 || slices.Contains(podNames(pods), victim.Name) {
			return fmt.Errorf("workers %v (failed one: %s)", podNames(pods), victim.Name)
		}
		return nil
	})
	eventually(t, "ready again", stateIs(t, key, rayv1.ClusterStateReady))
}

func TestFailedHeadWithRestartPolicyNeverIsReplaced(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "fh").workers("small", 1, 0, 10).obj()
	c.Spec.HeadGroupSpec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	head := listPods(t, ns, rayv1.HeadNode, "")[0]

	kubelet.hold(ns, true)
	// The Ray container exits; with restartPolicy Never the kubelet will not restart it.
	setPodStatus(t, &head, func(s *corev1.PodStatus) {
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
		s.ContainerStatuses[0].Ready = false
		s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}
	})
	eventually(t, "HeadPodReady says why the head was replaced", func() error {
		if err := hasCondition(t, key, rayv1.HeadPodReady, metav1.ConditionFalse, rayv1.HeadPodReplaced)(); err != nil {
			return err
		}
		cond := findCondition(getCluster(t, key), rayv1.HeadPodReady)
		if !strings.Contains(cond.Message, head.Name) || !strings.Contains(cond.Message, "restartPolicy is Never") {
			return fmt.Errorf("message %q does not name the pod and the reason", cond.Message)
		}
		return nil
	})
	eventually(t, "a new head pod", func() error {
		heads := listPods(t, ns, rayv1.HeadNode, "")
		if len(heads) != 1 || heads[0].Name == head.Name {
			return fmt.Errorf("head pods %v (old %s)", podNames(heads), head.Name)
		}
		return nil
	})
	eventually(t, "DeletedHeadPod event", hasEvent(t, key, corev1.EventTypeNormal, EventDeletedHeadPod, head.Name))
	if s := getCluster(t, key).Status; s.State == rayv1.ClusterStateReady {
		t.Fatalf("state ready while the new head is Pending")
	}
	kubelet.hold(ns, false)
	eventually(t, "HeadPodReady=True", hasCondition(t, key, rayv1.HeadPodReady, metav1.ConditionTrue, rayv1.HeadPodRunningAndReady))
	eventually(t, "ready again", stateIs(t, key, rayv1.ClusterStateReady))
}

// TestDeletion: envtest runs no garbage collector, so deleting a RayCluster cannot remove its
// children here. The test asserts what GC relies on (a controller owner reference on every child,
// with blockOwnerDeletion) and that a cluster without the Redis finalizer goes away at once.
func TestDeletion(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "del").workers("small", 2, 0, 10).obj()
	c.Annotations = map[string]string{rayv1.EnableServeServiceAnnotationKey: "true"}
	c.Spec.HeadGroupSpec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "serve", ContainerPort: 8000}}
	c.Spec.HeadGroupSpec.EnableIngress = ptr.To(true)
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	uid := getCluster(t, key).UID

	var objs []client.Object
	for _, p := range listPods(t, ns, "", "") {
		objs = append(objs, &p)
	}
	for _, name := range []string{"del-head-svc", "del-serve-svc"} {
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}
	objs = append(objs, &ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "del-head-ingress"}})
	for _, o := range objs {
		eventually(t, fmt.Sprintf("%T %s owned by the cluster", o, o.GetName()), func() error {
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
				return err
			}
			ref := metav1.GetControllerOf(o)
			if ref == nil || ref.UID != uid || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
				return fmt.Errorf("controller reference %+v, want the cluster (uid %s) with blockOwnerDeletion", ref, uid)
			}
			return nil
		})
	}
	if err := k8s.Delete(context.Background(), getCluster(t, key)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cluster gone", func() error {
		var c rayv1.RayCluster
		if err := k8s.Get(context.Background(), key, &c); !isNotFound(err) {
			return fmt.Errorf("get: %w (finalizers %v)", err, c.Finalizers)
		}
		return nil
	})
}

func TestGCSFaultToleranceFinalizerFlow(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "ft").workers("small", 1, 0, 10).obj()
	c.Spec.GcsFaultToleranceOptions = &rayv1.GcsFaultToleranceOptions{RedisAddress: "redis:6379"}
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "the finalizer", func() error {
		if !slices.Contains(getCluster(t, key).Finalizers, rayv1.GCSFaultToleranceRedisCleanupFinalizer) {
			return errors.New("finalizer missing")
		}
		return nil
	})
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	if err := k8s.Delete(context.Background(), getCluster(t, key)); err != nil {
		t.Fatal(err)
	}
	// The controller deletes the pods itself (no GC needed), then runs the clean-up Job.
	eventually(t, "pods deleted by the controller", countPods(t, ns, "", "", 0))
	var job batchv1.Job
	eventually(t, "the clean-up job", func() error {
		var jobs batchv1.JobList
		if err := k8s.List(context.Background(), &jobs, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(jobs.Items) != 1 {
			return fmt.Errorf("%d jobs", len(jobs.Items))
		}
		job = jobs.Items[0]
		return nil
	})
	if ref := metav1.GetControllerOf(&job); ref == nil || ref.Kind != "RayCluster" {
		t.Errorf("clean-up job owner %+v", job.OwnerReferences)
	}
	eventually(t, "CreatedRedisCleanupJob event", hasEvent(t, key, corev1.EventTypeNormal, EventCreatedRedisCleanupJob, job.Name))
	if len(getCluster(t, key).Finalizers) == 0 {
		t.Fatal("finalizer removed before the job completed")
	}
	// Play the Job controller.
	now := metav1.Now()
	orig := job.DeepCopy()
	job.Status.StartTime = &now
	job.Status.CompletionTime = &now
	job.Status.Succeeded = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if err := k8s.Status().Patch(context.Background(), &job, client.MergeFrom(orig)); err != nil {
		t.Fatalf("marking the job complete: %v", err)
	}
	eventually(t, "the cluster gone", func() error {
		var c rayv1.RayCluster
		if err := k8s.Get(context.Background(), key, &c); !isNotFound(err) {
			return fmt.Errorf("get: %w (finalizers %v)", err, c.Finalizers)
		}
		return nil
	})
}

func TestRollingUpdateKeepsMinReplicasReady(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "roll").workers("small", 3, 2, 10).obj()
	c.Spec.UpgradeStrategy = &rayv1.RayClusterUpgradeStrategy{Type: ptr.To(rayv1.RayClusterRollingUpdate)}
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	old := podNames(listPods(t, ns, rayv1.WorkerNode, "small"))
	head := listPods(t, ns, rayv1.HeadNode, "")[0].Name

	// Watch readiness while the rollout runs: never fewer than minReplicas ready workers.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	violations := make(chan string, 100)
	go func() {
		for ctx.Err() == nil {
			ready := 0
			var list corev1.PodList
			if err := k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{rayv1.RayNodeTypeLabelKey: "worker"}); err != nil {
				continue
			}
			for i := range list.Items {
				if p := &list.Items[i]; p.DeletionTimestamp == nil && resources.PodRunningAndReady(p) {
					ready++
				}
			}
			if ready < 2 {
				select {
				case violations <- fmt.Sprintf("%d ready workers", ready):
				default:
				}
			}
		}
	}()

	updateCluster(t, key, func(c *rayv1.RayCluster) {
		c.Spec.WorkerGroupSpecs[0].Template.Spec.Containers[0].Image = "rayproject/ray:2.9.3"
	})
	eventually(t, "every worker replaced", func() error {
		pods := listPods(t, ns, rayv1.WorkerNode, "small")
		if len(pods) != 3 {
			return fmt.Errorf("%d workers", len(pods))
		}
		for _, p := range pods {
			if slices.Contains(old, p.Name) || p.Spec.Containers[0].Image != "rayproject/ray:2.9.3" {
				return fmt.Errorf("worker %s still outdated", p.Name)
			}
		}
		return nil
	})
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	cancel()
	select {
	case v := <-violations:
		t.Fatalf("the rollout went below minReplicas ready: %s", v)
	default:
	}
	if heads := listPods(t, ns, rayv1.HeadNode, ""); len(heads) != 1 || heads[0].Name != head {
		t.Errorf("the head was replaced by a worker rollout: %v", podNames(heads))
	}
	eventually(t, "RollingUpdate event", hasEvent(t, key, corev1.EventTypeNormal, "RollingUpdate", "small"))
}

func TestConvergedClusterMakesNoWrites(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "quiet").workers("small", 2, 0, 10).obj()
	c.Spec.HeadGroupSpec.EnableIngress = ptr.To(true)
	c.Spec.EnableInTreeAutoscaling = ptr.To(true)
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "ready", stateIs(t, key, rayv1.ClusterStateReady))
	// Let any in-flight reconcile settle: wait until a poke produces no write.
	eventually(t, "a reconcile without writes", func() error {
		mark := writes.mark()
		waitReconciled(t, key)
		if w := writes.since(mark, ns); len(w) > 0 {
			return fmt.Errorf("writes: %v", w)
		}
		return nil
	})
	for range 3 {
		mark := writes.mark()
		waitReconciled(t, key)
		if w := writes.since(mark, ns); len(w) != 0 {
			t.Fatalf("a reconcile of a converged cluster wrote %d times: %v", len(w), w)
		}
	}
}

func TestInvalidSpecReportsConditionAndNoPods(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "bad").workers("small", 1, 0, 10).obj()
	c.Spec.HeadGroupSpec.Labels = map[string]string{"not a valid key": "x"}
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "SpecValid=False", hasCondition(t, key, rayv1.RayClusterSpecValid, metav1.ConditionFalse, rayv1.InvalidRayClusterSpec))
	eventually(t, "a Warning event", hasEvent(t, key, corev1.EventTypeWarning, rayv1.InvalidRayClusterSpec, "spec.headGroupSpec.labels"))
	if got := listPods(t, ns, "", ""); len(got) != 0 {
		t.Fatalf("pods created for an invalid spec: %v", podNames(got))
	}
	if r := getCluster(t, key).Status.Reason; !strings.Contains(r, "labels") {
		t.Errorf("status.reason %q does not explain the problem", r)
	}
	updateCluster(t, key, func(c *rayv1.RayCluster) { c.Spec.HeadGroupSpec.Labels = map[string]string{"ok": "x"} })
	eventually(t, "SpecValid=True", hasCondition(t, key, rayv1.RayClusterSpecValid, metav1.ConditionTrue, rayv1.ValidRayClusterSpec))
	eventually(t, "pods once fixed", countPods(t, ns, "", "", 2))
}

func TestManagedByExternalControllerIsIgnored(t *testing.T) {
	ns := newNamespace(t)
	c := makeCluster(ns, "mk").workers("small", 1, 0, 10).obj()
	c.Spec.ManagedBy = ptr.To(rayv1.MultiKueueController)
	create(t, c)
	key := client.ObjectKeyFromObject(c)
	eventually(t, "a reconcile", func() error {
		if observed.count(key) == 0 {
			return errors.New("not reconciled yet")
		}
		return nil
	})
	waitReconciled(t, key)
	if got := listPods(t, ns, "", ""); len(got) != 0 {
		t.Fatalf("pods created for a cluster managed by MultiKueue: %v", podNames(got))
	}
	if st := getCluster(t, key).Status; len(st.Conditions) != 0 || st.State != "" {
		t.Fatalf("status written for a cluster managed by MultiKueue: %+v", st)
	}
}

func findCondition(c *rayv1.RayCluster, t rayv1.RayClusterConditionType) *metav1.Condition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == string(t) {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}
