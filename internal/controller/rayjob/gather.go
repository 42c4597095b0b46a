package rayjob

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
	"github.com/rayk8s/rayk8s/internal/dashboard"
)

// gather reads, once, every fact the policy needs for the RayJob's current state.
func (r *Reconciler) gather(ctx context.Context, rj *rayv1.RayJob) (*input, error) {
	in := &input{job: rj, now: r.Clock.Now(), cfg: r.cfg}
	if rj.Status.JobDeploymentStatus == rayv1.JobDeploymentStatusNew {
		// Only a new RayJob names its attempt (decideNew).
		in.clusterSuffix, in.jobSuffix = r.NameSuffix(), r.NameSuffix()
	}
	st := &rj.Status
	if st.RayClusterName != "" {
		c, err := r.getCluster(ctx, rj)
		if err != nil {
			return nil, err
		}
		in.cluster = c
	}
	if in.cluster != nil {
		head, err := r.headPod(ctx, in.cluster)
		if err != nil {
			return nil, err
		}
		in.head = head
	}
	switch {
	case usesSubmitterJob(rj):
		sub, err := r.submitterJob(ctx, rj)
		if err != nil {
			return nil, err
		}
		in.submitter = sub
	case rj.Spec.SubmissionMode == rayv1.SidecarMode:
		in.submitter = sidecarSubmitter(in.head)
	}
	if st.JobDeploymentStatus == rayv1.JobDeploymentStatusRunning && clusterSelectorName(rj) == "" {
		var svc corev1.Service
		err := r.client.Get(ctx, client.ObjectKey{Namespace: rj.Namespace, Name: resources.OwnerHeadServiceName(rj.Name)}, &svc)
		switch {
		case err == nil:
			in.headServiceCluster = svc.Labels[rayv1.RayClusterLabelKey]
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("getting Service %s: %w", resources.OwnerHeadServiceName(rj.Name), err)
		}
	}
	if st.JobDeploymentStatus == rayv1.JobDeploymentStatusRunning && st.JobID != "" &&
		in.cluster != nil && in.cluster.DeletionTimestamp == nil {
		in.ray = r.rayJob(ctx, in.cluster, st.JobID)
	}
	return in, nil
}

// getCluster returns the RayCluster named by status.rayClusterName, or nil when it does not exist.
// A cluster the RayJob is supposed to have created but does not control is an error: it belongs
// to somebody else.
func (r *Reconciler) getCluster(ctx context.Context, rj *rayv1.RayJob) (*rayv1.RayCluster, error) {
	c := &rayv1.RayCluster{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: rj.Namespace, Name: rj.Status.RayClusterName}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("getting RayCluster %s: %w", rj.Status.RayClusterName, err)
	}
	if clusterSelectorName(rj) == "" && !metav1.IsControlledBy(c, rj) {
		return nil, fmt.Errorf("RayCluster %s exists but is not controlled by this RayJob", c.Name)
	}
	return c, nil
}

// headPod finds the newest live head pod controlled by the cluster (by owner UID).
func (r *Reconciler) headPod(ctx context.Context, cluster *rayv1.RayCluster) (headPodFacts, error) {
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(cluster.Namespace), client.MatchingLabels{
		rayv1.RayClusterLabelKey:  cluster.Name,
		rayv1.RayNodeTypeLabelKey: string(rayv1.HeadNode),
	}); err != nil {
		return headPodFacts{}, fmt.Errorf("listing head pods of %s: %w", cluster.Name, err)
	}
	newest := resources.NewestHeadPod(cluster, pods.Items)
	if newest == nil {
		return headPodFacts{}, nil
	}
	return headPodFacts{pod: newest.DeepCopy()}, nil
}

// submitterJob describes the K8sJobMode submitter Job.
func (r *Reconciler) submitterJob(ctx context.Context, rj *rayv1.RayJob) (submitterFacts, error) {
	var job batchv1.Job
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: rj.Namespace, Name: SubmitterJobName(rj)}, &job); err != nil {
		if apierrors.IsNotFound(err) {
			return submitterFacts{}, nil
		}
		return submitterFacts{}, fmt.Errorf("getting submitter Job: %w", err)
	}
	if !metav1.IsControlledBy(&job, rj) {
		return submitterFacts{}, fmt.Errorf("submitter Job %s exists but is not controlled by this RayJob", job.Name)
	}
	f := submitterFacts{exists: true, deleting: job.DeletionTimestamp != nil}
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			f.finished, f.finishedAt = true, c.LastTransitionTime.Time
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			f.finished, f.failed, f.finishedAt = true, true, c.LastTransitionTime.Time
			f.message = fmt.Sprintf("Submitter Job %s failed: %s: %s", job.Name, c.Reason, c.Message)
		}
	}
	return f, nil
}

// sidecarSubmitter describes the SidecarMode submitter from the head pod's container status.
func sidecarSubmitter(h headPodFacts) submitterFacts {
	if h.pod == nil {
		return submitterFacts{}
	}
	for _, cs := range h.pod.Status.ContainerStatuses {
		if cs.Name != SubmitterContainerName {
			continue
		}
		f := submitterFacts{exists: true}
		if t := cs.State.Terminated; t != nil {
			f.finished, f.finishedAt = true, t.FinishedAt.Time
			if t.ExitCode != 0 {
				f.failed = true
				f.message = fmt.Sprintf("Submitter container %s of head pod %s exited with code %d: %s %s", cs.Name, h.pod.Name, t.ExitCode, t.Reason, t.Message)
			}
		}
		return f
	}
	return submitterFacts{}
}

// rayJob asks the dashboard about the job.
func (r *Reconciler) rayJob(ctx context.Context, cluster *rayv1.RayCluster, id string) rayJobFacts {
	c, err := r.Resolver.DashboardClient(ctx, cluster)
	if err != nil {
		return rayJobFacts{checked: true, err: err}
	}
	info, err := c.GetJob(ctx, id)
	switch {
	case dashboard.IsNotFound(err):
		return rayJobFacts{checked: true, notFound: true}
	case err != nil:
		return rayJobFacts{checked: true, err: err}
	}
	return rayJobFacts{checked: true, info: info}
}
