package autoscaler

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/shape"
)

// observation is one round's input to the decision plus what the decision cannot express.
type observation struct {
	input plan.Input
	// shapeErrors are groups whose node resources could not be derived; they are never scaled up.
	shapeErrors []string
	// unmatchedNodes are alive worker nodes whose IP matches no worker pod of the cluster.
	unmatchedNodes int
	// nodeGroups maps the Ray node IDs matched to a pod to the pod's group (report.HeadGroup
	// for the head), for `ray status`.
	nodeGroups map[string]string
	// failedPods are worker pods in phase Failed.
	failedPods []report.FailedPod
	// nodeOfPod maps worker pods, terminating ones included, to their Ray node's ID.
	nodeOfPod map[string]string
}

// observe joins the RayCluster, its pods and the head's state into the decision's input. Ray
// nodes are matched to pods by IP: every Ray pod runs one node on the pod's IP.
func observe(c *rayv1.RayCluster, pods []corev1.Pod, st State, now time.Time, maxWorkers int) observation {
	o := observation{input: plan.Input{
		Cluster: c, Shapes: map[string]plan.Resources{}, Demand: st.Demand, Requests: st.Requests,
		MaxWorkers: maxWorkers, Now: now,
	}, nodeGroups: map[string]string{}, nodeOfPod: map[string]string{}}
	for i := range c.Spec.WorkerGroupSpecs {
		g := &c.Spec.WorkerGroupSpecs[i]
		s, err := shape.Of(g, fmt.Sprintf("workerGroupSpecs[%d]", i))
		if err != nil {
			o.shapeErrors = append(o.shapeErrors, err.Error())
			continue
		}
		o.input.Shapes[g.GroupName] = s
	}

	byIP := map[string]string{}
	// anyByIP includes terminating pods: their nodes are drained until they are gone.
	anyByIP := map[string]string{}
	groupOf := map[string]string{}
	headPod := ""
	for i := range pods {
		p := &pods[i]
		if p.Labels[rayv1.RayNodeTypeLabelKey] == string(rayv1.HeadNode) {
			headPod = p.Name
			continue
		}
		if p.Labels[rayv1.RayNodeTypeLabelKey] != string(rayv1.WorkerNode) {
			continue
		}
		o.input.Pods = append(o.input.Pods, plan.Pod{
			Name: p.Name, Group: p.Labels[rayv1.RayNodeGroupLabelKey],
			Replica: p.Labels[rayv1.RayWorkerReplicaNameKey], State: podState(p),
		})
		if p.Status.Phase == corev1.PodFailed {
			o.failedPods = append(o.failedPods, report.FailedPod{
				Pod: p.Name, Group: p.Labels[rayv1.RayNodeGroupLabelKey], IP: p.Status.PodIP, Reason: failureReason(p),
			})
		}
		if p.Status.PodIP != "" {
			anyByIP[p.Status.PodIP] = p.Name
		}
		if p.Status.PodIP != "" && p.DeletionTimestamp == nil {
			byIP[p.Status.PodIP] = p.Name
			groupOf[p.Name] = p.Labels[rayv1.RayNodeGroupLabelKey]
		}
	}
	for _, n := range st.Nodes {
		if pod := anyByIP[n.IP]; pod != "" && !n.Head {
			o.nodeOfPod[pod] = n.ID
		}
		pn := plan.Node{Head: n.Head, Total: n.Total, Available: n.Available, IdleSince: n.IdleSince, Busy: n.Busy}
		switch {
		case n.Head:
			pn.Pod = headPod
			if pn.Pod == "" {
				pn.Pod = "head:" + n.ID
			}
			o.nodeGroups[n.ID] = report.HeadGroup
		case byIP[n.IP] != "":
			pn.Pod = byIP[n.IP]
			o.nodeGroups[n.ID] = groupOf[pn.Pod]
		default:
			o.unmatchedNodes++
			continue
		}
		o.input.Nodes = append(o.input.Nodes, pn)
	}
	return o
}

// failureReason is the pod's own reason, else its first terminated container's.
func failureReason(p *corev1.Pod) string {
	if p.Status.Reason != "" {
		return p.Status.Reason
	}
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			if t.Reason != "" {
				return fmt.Sprintf("container %s: %s (exit code %d)", cs.Name, t.Reason, t.ExitCode)
			}
			return fmt.Sprintf("container %s exited with code %d", cs.Name, t.ExitCode)
		}
	}
	return "Failed"
}

func podState(p *corev1.Pod) plan.PodState {
	switch {
	case p.DeletionTimestamp != nil:
		return plan.PodDeleting
	case p.Status.Phase == corev1.PodRunning:
		return plan.PodRunning
	case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
		// A finished pod offers nothing; the operator replaces or removes it.
		return plan.PodDeleting
	}
	return plan.PodCreating
}
