package rayjob

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// batchScheduleCluster runs before the RayJob's RayCluster is created: it refuses a RayJob the
// batch scheduler cannot gang-schedule, makes the RayJob's group object (Volcano gives the
// RayJob, not its cluster, the PodGroup, so the submitter's resources count too), and in
// K8sJobMode stamps the cluster with the scheduler's metadata, as KubeRay does.
func (r *Reconciler) batchScheduleCluster(ctx context.Context, rj *rayv1.RayJob, rc *rayv1.RayCluster) error {
	bs := r.cfg.BatchScheduler
	if bs == nil {
		return nil
	}
	if err := bs.CheckRayJob(rj); err != nil {
		return fmt.Errorf("batch scheduler %s: %w", bs.Name(), err)
	}
	pg, err := bs.PodGroup(batchscheduler.Workload{Owner: rj, Cluster: rj.Spec.RayClusterSpec, Submitter: submitterResources(rj)})
	if err != nil {
		return fmt.Errorf("batch scheduler %s: %w", bs.Name(), err)
	}
	if pg != nil {
		if err := controllerutil.SetControllerReference(rj, pg, r.client.Scheme()); err != nil {
			return fmt.Errorf("setting controller reference: %w", err)
		}
		if err := reconcilekit.ApplyGroup(ctx, r.client, FieldManager, pg); err != nil {
			return err
		}
	}
	if mode(rj) == rayv1.K8sJobMode {
		if err := bs.AddMetadata(rj, rc, ""); err != nil {
			return fmt.Errorf("batch scheduler %s: %w", bs.Name(), err)
		}
	}
	return nil
}

// batchScheduleCompletion shrinks a finished RayJob's group object to what its cluster still
// holds (a cluster whose workers were suspended keeps its head, a deleted one nothing), so a
// Volcano queue does not keep capacity reserved for a job that is over.
func (r *Reconciler) batchScheduleCompletion(ctx context.Context, rj *rayv1.RayJob, cluster *rayv1.RayCluster) error {
	bs := r.cfg.BatchScheduler
	if bs == nil || rj.Spec.RayClusterSpec == nil || rj.Status.RayClusterName == "" || !rayv1.IsJobDeploymentTerminal(rj.Status.JobDeploymentStatus) {
		return nil
	}
	w := batchscheduler.Workload{Owner: rj, Cluster: rj.Spec.RayClusterSpec, Released: true}
	if cluster != nil && cluster.DeletionTimestamp.IsZero() {
		// The submitter has finished: only the cluster's pods still hold resources.
		w = batchscheduler.Workload{Owner: rj, Cluster: &cluster.Spec}
	}
	pg, err := bs.PodGroup(w)
	if err != nil || pg == nil {
		return err
	}
	if err := controllerutil.SetControllerReference(rj, pg, r.client.Scheme()); err != nil {
		return fmt.Errorf("setting controller reference: %w", err)
	}
	return reconcilekit.ApplyGroup(ctx, r.client, FieldManager, pg)
}

// batchScheduleSubmitter stamps the submitter Job's pod template with the scheduler's metadata.
func (r *Reconciler) batchScheduleSubmitter(rj *rayv1.RayJob, tmpl *corev1.PodTemplateSpec) error {
	bs := r.cfg.BatchScheduler
	if bs == nil {
		return nil
	}
	if err := bs.AddMetadata(rj, tmpl, rayv1.SubmitterGroupName); err != nil {
		return fmt.Errorf("batch scheduler %s: %w", bs.Name(), err)
	}
	return nil
}

// submitterResources is what the submitter asks for: the submitter pod in K8sJobMode, the
// sidecar container in SidecarMode, nothing in the other modes.
func submitterResources(rj *rayv1.RayJob) corev1.ResourceList {
	switch mode(rj) {
	case rayv1.K8sJobMode:
		tmpl := defaultSubmitterPod(headImage(rj.Spec.RayClusterSpec))
		if rj.Spec.SubmitterPodTemplate != nil {
			tmpl = *rj.Spec.SubmitterPodTemplate
		}
		return batchscheduler.PodResources(&tmpl.Spec)
	case rayv1.SidecarMode:
		ctr := defaultSubmitterContainer(headImage(rj.Spec.RayClusterSpec))
		return batchscheduler.PodResources(&corev1.PodSpec{Containers: []corev1.Container{ctr}})
	default:
		return nil
	}
}
