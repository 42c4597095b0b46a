package processnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rayk8s/rayk8s/internal/devcluster/podenv"
	"github.com/rayk8s/rayk8s/internal/devcluster/volumes"
)

// podRunner owns one pod: its network, files, containers and status.
type podRunner struct {
	p   *Provider
	key string
	dir string

	mu          sync.Mutex
	pod         *corev1.Pod
	initCtrs    []*container
	ctrs        []*container
	conds       []corev1.PodCondition
	startTime   metav1.Time
	podIPAddr   string
	netPath     string
	netReady    bool
	volPaths    map[string]string
	initialized bool
	initFailed  bool
	setupErr    string
	terminating bool

	ctx      context.Context
	cancel   context.CancelFunc
	runDone  chan struct{}
	dirty    chan struct{}
	stopNote chan struct{}
	noteDone chan struct{}
	termOnce sync.Once
	termDone chan struct{}
}

func newPodRunner(p *Provider, pod *corev1.Pod) *podRunner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &podRunner{
		p: p, key: pod.Namespace + "/" + pod.Name, dir: filepath.Join(p.cfg.StateDir, "pods", string(pod.UID)),
		pod: pod.DeepCopy(), startTime: metav1.NewTime(p.clock.Now()),
		ctx: ctx, cancel: cancel,
		runDone: make(chan struct{}), dirty: make(chan struct{}, 1),
		stopNote: make(chan struct{}), noteDone: make(chan struct{}), termDone: make(chan struct{}),
	}
	for _, c := range pod.Spec.InitContainers {
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		r.initCtrs = append(r.initCtrs, newContainer(r, c, sidecar))
	}
	for _, c := range pod.Spec.Containers {
		r.ctrs = append(r.ctrs, newContainer(r, c, false))
	}
	if len(r.initCtrs) > 0 {
		for _, c := range r.ctrs {
			c.status.State.Waiting.Reason = "PodInitializing"
		}
	}
	return r
}

func (r *podRunner) name() string { return r.key }

// update runs f under the pod's lock and schedules a status notification.
func (r *podRunner) update(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

func (r *podRunner) podIP() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.podIPAddr
}

// runtime returns the values the downward API needs; call with the lock held.
func (r *podRunner) runtime() podenv.Runtime {
	return podenv.Runtime{PodIP: r.podIPAddr, HostIP: r.p.cfg.HostIP, NodeAllocatable: r.p.cfg.Allocatable}
}

// grace is how long a container killed for a failed probe gets.
func (r *podRunner) grace(pr *corev1.Probe) time.Duration {
	if pr.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
	}
	if g := r.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// notifier sends the latest status to the pod controller whenever it changes.
func (r *podRunner) notifier() {
	defer close(r.noteDone)
	for {
		select {
		case <-r.stopNote:
			return
		case <-r.dirty:
			r.p.notify(r.snapshot())
		}
	}
}

// run sets the pod up, runs its init containers in order and then its containers.
func (r *podRunner) run() {
	defer close(r.runDone)
	ctx := r.ctx
	for attempt := 0; ; attempt++ {
		err := r.setup(ctx)
		if err == nil {
			break
		}
		r.update(func() { r.setupErr = err.Error() })
		r.p.log.Error(err, "setting up pod", "pod", r.key)
		select {
		case <-ctx.Done():
			return
		case <-r.p.clock.After(r.p.cfg.Backoff.Delay(int32(min(attempt+1, 10)))):
		}
	}
	r.update(func() { r.setupErr = "" })
	policy := r.pod.Spec.RestartPolicy
	initPolicy := corev1.RestartPolicyOnFailure
	if policy == corev1.RestartPolicyNever {
		initPolicy = corev1.RestartPolicyNever
	}
	var wg sync.WaitGroup
	for _, c := range r.initCtrs {
		if c.sidecar {
			wg.Add(1)
			go func() { defer wg.Done(); c.loop(ctx, corev1.RestartPolicyAlways) }()
			r.waitStarted(ctx, c)
			continue
		}
		if code := c.loop(ctx, initPolicy); code != 0 || ctx.Err() != nil {
			if ctx.Err() == nil {
				r.update(func() { r.initFailed = true })
				r.finished(&wg)
			}
			return
		}
	}
	r.update(func() {
		r.initialized = true
		for _, c := range r.ctrs {
			if w := c.status.State.Waiting; w != nil && w.Reason == "PodInitializing" {
				w.Reason = "ContainerCreating"
			}
		}
	})
	var main sync.WaitGroup
	for _, c := range r.ctrs {
		main.Add(1)
		go func() { defer main.Done(); c.loop(ctx, policy) }()
	}
	main.Wait()
	if ctx.Err() == nil {
		r.finished(&wg)
	}
}

// finished stops sidecars and releases the network of a pod whose containers all stopped for
// good; its IP stays in the status, as on a kubelet.
func (r *podRunner) finished(sidecars *sync.WaitGroup) {
	r.cancel()
	for _, c := range r.initCtrs {
		if c.sidecar {
			c.stop(r.terminationGrace(), "")
		}
	}
	sidecars.Wait()
	r.releaseNetwork()
}

func (r *podRunner) waitStarted(ctx context.Context, c *container) {
	for {
		var ok bool
		r.update(func() { ok = c.status.Started != nil && *c.status.Started })
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-r.p.clock.After(100 * time.Millisecond):
		}
	}
}

// setup creates the pod's directory, network, hosts files and volumes.
func (r *podRunner) setup(ctx context.Context) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	pod := r.pod
	ip := r.p.cfg.HostIP
	netPath := ""
	if !pod.Spec.HostNetwork {
		att, err := r.p.network.Attach(ctx, string(pod.UID))
		if err != nil {
			return err
		}
		ip, netPath = att.IP.String(), att.Path
	}
	r.update(func() { r.podIPAddr, r.netPath, r.netReady = ip, netPath, true })
	if err := os.WriteFile(filepath.Join(r.dir, "hosts"), []byte(hostsFile(pod, ip, r.p.cfg.ClusterDomain)), 0o644); err != nil {
		return err
	}
	resolv, err := r.p.resolvConf(pod)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.dir, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return err
	}
	var rt podenv.Runtime
	r.update(func() { rt = r.runtime() })
	paths, err := volumes.Materialize(ctx, r.p.volumeSources(), pod, filepath.Join(r.dir, "volumes"), rt)
	if err != nil {
		return err
	}
	r.update(func() { r.volPaths = paths })
	return nil
}

func (r *podRunner) releaseNetwork() {
	var hadNet bool
	r.update(func() { hadNet, r.netPath = r.netPath != "", "" })
	if hadNet {
		if err := r.p.network.Detach(context.Background(), string(r.pod.UID)); err != nil {
			r.p.log.Error(err, "releasing pod network", "pod", r.key)
		}
	}
}

func (r *podRunner) terminationGrace() time.Duration {
	if g := r.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// terminate stops every container within grace, releases everything the pod holds and sends a
// last status with all containers terminated. It runs once; later calls wait for the first.
func (r *podRunner) terminate(grace time.Duration) {
	r.termOnce.Do(func() {
		r.update(func() { r.terminating = true })
		r.cancel()
		var wg sync.WaitGroup
		for _, c := range append(append([]*container{}, r.ctrs...), r.initCtrs...) {
			wg.Add(1)
			go func() { defer wg.Done(); c.stop(grace, "") }()
		}
		wg.Wait()
		<-r.runDone
		r.releaseNetwork()
		if err := os.RemoveAll(r.dir); err != nil {
			r.p.log.Error(err, "removing pod directory", "pod", r.key)
		}
		close(r.stopNote)
		<-r.noteDone
		r.p.notify(r.snapshot())
		r.p.forget(r)
		close(r.termDone)
	})
	<-r.termDone
}

// snapshot returns the pod with its current status.
func (r *podRunner) snapshot() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	pod := r.pod.DeepCopy()
	now := metav1.NewTime(r.p.clock.Now())
	st := corev1.PodStatus{
		HostIP:    r.p.cfg.HostIP,
		HostIPs:   []corev1.HostIP{{IP: r.p.cfg.HostIP}},
		StartTime: &r.startTime,
		QOSClass:  r.pod.Status.QOSClass,
	}
	if r.podIPAddr != "" {
		st.PodIP = r.podIPAddr
		st.PodIPs = []corev1.PodIP{{IP: r.podIPAddr}}
	}
	for _, c := range r.initCtrs {
		st.InitContainerStatuses = append(st.InitContainerStatuses, *c.status.DeepCopy())
	}
	for _, c := range r.ctrs {
		s := *c.status.DeepCopy()
		if r.setupErr != "" && s.State.Waiting != nil {
			s.State.Waiting.Reason, s.State.Waiting.Message = "CreateContainerConfigError", r.setupErr
		}
		st.ContainerStatuses = append(st.ContainerStatuses, s)
	}
	policy := pod.Spec.RestartPolicy
	willRestart := func(s corev1.ContainerStatus) bool {
		if r.terminating || r.ctx.Err() != nil {
			return false
		}
		t := s.State.Terminated
		return policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && t.ExitCode != 0)
	}
	st.Phase = podPhase(&pod.Spec, r.initFailed, r.initialized, st.ContainerStatuses, willRestart)
	if r.terminating {
		// Deleted: every container reads as terminated, whatever it was doing.
		for i := range st.ContainerStatuses {
			if s := &st.ContainerStatuses[i]; s.State.Terminated == nil {
				s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: "ContainerStatusUnknown", Message: "The pod was deleted", FinishedAt: now}}
				s.Ready = false
			}
		}
		if st.Phase != corev1.PodSucceeded {
			st.Phase = corev1.PodFailed
			for _, s := range st.ContainerStatuses {
				if s.State.Terminated.ExitCode != 0 {
					break
				}
				st.Phase = corev1.PodSucceeded
			}
		}
	}
	ready, reason := readiness(st.ContainerStatuses)
	if st.Phase != corev1.PodRunning {
		ready, reason = false, "PodCompleted"
		if st.Phase == corev1.PodPending {
			reason = "ContainersNotReady"
		}
	}
	initReason := "ContainersNotInitialized"
	r.conds = setCondition(r.conds, corev1.PodReadyToStartContainers, r.netReady && r.netPath != "" || r.netReady && pod.Spec.HostNetwork, "", now)
	r.conds = setCondition(r.conds, corev1.PodInitialized, r.initialized, initReason, now)
	r.conds = setCondition(r.conds, corev1.ContainersReady, ready, reason, now)
	r.conds = setCondition(r.conds, corev1.PodReady, ready, reason, now)
	r.conds = setCondition(r.conds, corev1.PodScheduled, true, "", now)
	st.Conditions = append([]corev1.PodCondition(nil), r.conds...)
	if r.setupErr != "" {
		st.Message = r.setupErr
	}
	pod.Status = st
	return pod
}

func hostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	if len(pod.Name) > 63 {
		return strings.TrimRight(pod.Name[:63], "-.")
	}
	return pod.Name
}

// hostsFile is a kubelet's managed /etc/hosts.
func hostsFile(pod *corev1.Pod, ip, domain string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file (process node).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	h := hostname(pod)
	if pod.Spec.Subdomain != "" && domain != "" {
		fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, h, pod.Spec.Subdomain, pod.Namespace, domain, h)
	} else {
		fmt.Fprintf(&b, "%s\t%s\n", ip, h)
	}
	for _, a := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.String()
}

// resolvConf is the pod's /etc/resolv.conf for its dnsPolicy.
func (p *Provider) resolvConf(pod *corev1.Pod) (string, error) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	useCluster := len(p.cfg.ClusterDNS) > 0 && (policy == corev1.DNSClusterFirst ||
		policy == corev1.DNSClusterFirstWithHostNet || (policy == corev1.DNSClusterFirst && !pod.Spec.HostNetwork))
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		useCluster = false
	}
	var b strings.Builder
	if useCluster {
		for _, ns := range p.cfg.ClusterDNS {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
		d := p.cfg.ClusterDomain
		fmt.Fprintf(&b, "search %s.svc.%s svc.%s %s\noptions ndots:5\n", pod.Namespace, d, d, d)
	} else if policy != corev1.DNSNone {
		host, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		b.Write(host)
	}
	if c := pod.Spec.DNSConfig; c != nil {
		for _, ns := range c.Nameservers {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
		if len(c.Searches) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(c.Searches, " "))
		}
		for _, o := range c.Options {
			if o.Value != nil {
				fmt.Fprintf(&b, "options %s:%s\n", o.Name, *o.Value)
			} else {
				fmt.Fprintf(&b, "options %s\n", o.Name)
			}
		}
	}
	return b.String(), nil
}
