package processnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/devcluster/hostpaths"
	"github.com/rayk8s/rayk8s/internal/devcluster/netns"
	"github.com/rayk8s/rayk8s/internal/devcluster/podenv"
	"github.com/rayk8s/rayk8s/internal/devcluster/podlogs"
	"github.com/rayk8s/rayk8s/internal/devcluster/probe"
	"github.com/rayk8s/rayk8s/internal/devcluster/volumes"
)

// Network is the part of netns.Network the provider uses.
type Network interface {
	Attach(ctx context.Context, id string) (netns.Attachment, error)
	Detach(ctx context.Context, id string) error
}

// Deps are the provider's collaborators.
type Deps struct {
	Network    Network
	Clock      clock.WithTicker
	Log        logr.Logger
	Pods       corev1listers.PodLister
	ConfigMaps corev1listers.ConfigMapLister
	Secrets    corev1listers.SecretLister
	Services   corev1listers.ServiceLister
	Token      volumes.TokenFunc
	// Client removes deleted pods from the API once their containers stopped; nil leaves that to
	// the pod controller, which waits out the whole grace period.
	Client kubernetes.Interface
}

// Provider is the virtual-kubelet provider running pods as processes.
type Provider struct {
	cfg       Config
	network   Network
	clock     clock.WithTicker
	log       logr.Logger
	deps      Deps
	prober    *probe.Prober
	hostPaths *hostpaths.Tracker

	mu       sync.Mutex
	pods     map[string]*podRunner
	notifyCb func(*corev1.Pod)
}

var _ nodeutil.Provider = (*Provider)(nil)

// NewProvider returns a provider; Reap must run for pods deleted while not running to be
// cleaned up.
func NewProvider(cfg Config, d Deps) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = 5 * time.Second
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	return &Provider{
		cfg: cfg, network: d.Network, clock: d.Clock, log: d.Log, deps: d,
		prober:    probe.New(),
		hostPaths: hostpaths.NewTracker(CreatedPathsFile(cfg.StateDir)),
		pods:      map[string]*podRunner{},
	}, nil
}

// CreatedPathsFile is where the mount points created on the host are recorded.
func CreatedPathsFile(stateDir string) string { return filepath.Join(stateDir, "created-paths") }

func (p *Provider) envSources() podenv.Sources {
	return podenv.Sources{ConfigMaps: p.deps.ConfigMaps, Secrets: p.deps.Secrets, Services: p.deps.Services,
		APIServerHost: p.cfg.APIServerHost, APIServerPort: p.cfg.APIServerPort}
}

func (p *Provider) volumeSources() volumes.Sources {
	return volumes.Sources{ConfigMaps: p.deps.ConfigMaps, Secrets: p.deps.Secrets, Token: p.deps.Token}
}

func (p *Provider) notify(pod *corev1.Pod) {
	p.mu.Lock()
	cb := p.notifyCb
	p.mu.Unlock()
	if cb != nil {
		cb(pod)
	}
}

func (p *Provider) forget(r *podRunner) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pods[r.key] == r {
		delete(p.pods, r.key)
	}
}

func (p *Provider) get(ns, name string) *podRunner {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pods[ns+"/"+name]
}

// NotifyPods implements node.PodNotifier.
func (p *Provider) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	p.notifyCb = cb
	p.mu.Unlock()
}

// CreatePod starts the pod in the background.
func (p *Provider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	key := pod.Namespace + "/" + pod.Name
	p.mu.Lock()
	old := p.pods[key]
	if old != nil && old.pod.UID == pod.UID {
		p.mu.Unlock()
		return nil
	}
	r := newPodRunner(p, pod)
	p.pods[key] = r
	p.mu.Unlock()
	if old != nil {
		go old.terminate(0)
	}
	p.log.Info("starting pod", "pod", key, "uid", pod.UID)
	go r.notifier()
	go r.run()
	r.update(func() {})
	return nil
}

// UpdatePod takes the new labels and annotations (for the downward API); other changes to a
// running pod are ignored, as images are.
func (p *Provider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	r := p.get(pod.Namespace, pod.Name)
	if r == nil || r.pod.UID != pod.UID {
		return errdefs.NotFoundf("pod %s/%s is not running here", pod.Namespace, pod.Name)
	}
	r.update(func() {
		r.pod.Labels, r.pod.Annotations = pod.Labels, pod.Annotations
		r.pod.DeletionTimestamp, r.pod.DeletionGracePeriodSeconds = pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds
	})
	return nil
}

// DeletePod stops the pod in the background within its grace period.
func (p *Provider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	r := p.get(pod.Namespace, pod.Name)
	if r == nil {
		return errdefs.NotFoundf("pod %s/%s is not running here", pod.Namespace, pod.Name)
	}
	grace := r.terminationGrace()
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	r.update(func() { r.pod.DeletionTimestamp = pod.DeletionTimestamp })
	p.log.Info("stopping pod", "pod", r.key, "grace", grace)
	ns, name, uid := pod.Namespace, pod.Name, pod.UID
	go func() {
		r.terminate(grace)
		p.removeFromAPI(ns, name, uid)
	}()
	return nil
}

// removeFromAPI deletes the object of a pod whose containers all stopped, as a kubelet does once
// a deleted pod is terminated: virtual-kubelet's pod controller would keep it until the grace
// period ran out even when every process exited at the first SIGTERM. The UID precondition
// spares a new pod of the same name.
func (p *Provider) removeFromAPI(ns, name string, uid types.UID) {
	if p.deps.Client == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := p.deps.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr(int64(0)),
		Preconditions:      metav1.NewUIDPreconditions(string(uid)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		p.log.Error(err, "Removing the terminated pod from the API", "pod", ns+"/"+name)
	}
}

// GetPod returns the pod with its current status.
func (p *Provider) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	r := p.get(ns, name)
	if r == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not running here", ns, name)
	}
	return r.snapshot(), nil
}

// GetPodStatus returns the pod's current status.
func (p *Provider) GetPodStatus(ctx context.Context, ns, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods returns every pod this node runs.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	runners := make([]*podRunner, 0, len(p.pods))
	for _, r := range p.pods {
		runners = append(runners, r)
	}
	p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(runners))
	for _, r := range runners {
		out = append(out, r.snapshot())
	}
	return out, nil
}

// Reap stops, every interval until ctx ends, the pods whose API object is gone or was
// replaced: the pod controller deletes a pod without telling the provider when none of its
// containers runs (completed, or waiting to restart).
func (p *Provider) Reap(ctx context.Context) {
	t := p.clock.NewTicker(p.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if p.deps.Pods == nil {
			continue
		}
		p.mu.Lock()
		runners := make([]*podRunner, 0, len(p.pods))
		for _, r := range p.pods {
			runners = append(runners, r)
		}
		p.mu.Unlock()
		for _, r := range runners {
			pod, err := p.deps.Pods.Pods(r.pod.Namespace).Get(r.pod.Name)
			if apierrors.IsNotFound(err) || (err == nil && pod.UID != r.pod.UID) {
				go r.terminate(0)
			}
		}
	}
}

// Shutdown stops every pod within grace (the node is going away).
func (p *Provider) Shutdown(grace time.Duration) {
	p.mu.Lock()
	runners := make([]*podRunner, 0, len(p.pods))
	for _, r := range p.pods {
		runners = append(runners, r)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() { defer wg.Done(); r.terminate(grace) }()
	}
	wg.Wait()
}

func (p *Provider) container(ns, podName, name string) (*podRunner, *container, error) {
	r := p.get(ns, podName)
	if r == nil {
		return nil, nil, errdefs.NotFoundf("pod %s/%s is not running here", ns, podName)
	}
	for _, c := range append(append([]*container{}, r.ctrs...), r.initCtrs...) {
		if c.spec.Name == name || name == "" {
			return r, c, nil
		}
	}
	return nil, nil, errdefs.NotFoundf("pod %s/%s has no container %q", ns, podName, name)
}

// GetContainerLogs streams a container's log (kubectl logs).
func (p *Provider) GetContainerLogs(ctx context.Context, ns, podName, name string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	_, c, err := p.container(ns, podName, name)
	if err != nil {
		return nil, err
	}
	n := c.restartCount()
	if opts.Previous {
		if n == 0 {
			return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", name, podName)
		}
		n--
	}
	path := c.logPath(n)
	ro := podlogs.Options{Tail: opts.Tail, LimitBytes: opts.LimitBytes, Timestamps: opts.Timestamps, Follow: opts.Follow && !opts.Previous}
	if !opts.SinceTime.IsZero() {
		ro.Since = opts.SinceTime
	} else if opts.SinceSeconds > 0 {
		ro.Since = p.clock.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
	}
	ro.Running = func() bool {
		var running bool
		c.pod.update(func() { running = c.proc != nil && c.restartCount0() == n })
		return running
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(podlogs.Read(ctx, path, ro, pw))
	}()
	return pr, nil
}

// RunInContainer runs a command in the container's namespaces (kubectl exec). TTYs are not
// supported: the command runs with plain pipes.
func (p *Provider) RunInContainer(ctx context.Context, ns, podName, name string, argv []string, attach api.AttachIO) error {
	_, c, err := p.container(ns, podName, name)
	if err != nil {
		return err
	}
	cmd, err := c.enter(argv)
	if err != nil {
		return err
	}
	if in := attach.Stdin(); in != nil {
		cmd.Stdin = in
	}
	if out := attach.Stdout(); out != nil {
		cmd.Stdout = out
	}
	if e := attach.Stderr(); e != nil {
		cmd.Stderr = e
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		err = <-done
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitError{code: ee.ExitCode()}
	}
	return err
}

type exitError struct{ code int }

func (e exitError) Error() string   { return "command terminated with exit code " + strconv.Itoa(e.code) }
func (e exitError) ExitStatus() int { return e.code }
func (e exitError) Exited() bool    { return true }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Code() int       { return e.code }

// AttachToContainer is not supported.
func (p *Provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("attach is not supported by the process node")
}

// GetStatsSummary reports the node and its pods without usage figures.
func (p *Provider) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	pods, _ := p.GetPods(ctx)
	s := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: p.cfg.NodeName, StartTime: metav1.NewTime(p.clock.Now())}}
	for _, pod := range pods {
		s.Pods = append(s.Pods, statsv1alpha1.PodStats{PodRef: statsv1alpha1.PodReference{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)}})
	}
	return s, nil
}

// GetMetricsResource reports no metrics.
func (p *Provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) { return nil, nil }

// PortForward connects stream to port on the pod's IP (kubectl port-forward).
func (p *Provider) PortForward(ctx context.Context, ns, podName string, port int32, stream io.ReadWriteCloser) error {
	r := p.get(ns, podName)
	if r == nil {
		return errdefs.NotFoundf("pod %s/%s is not running here", ns, podName)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(r.podIP(), strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("connecting to pod port %d: %w", port, err)
	}
	defer conn.Close()
	errc := make(chan error, 2)
	go func() { _, err := io.Copy(conn, stream); errc <- err }()
	go func() { _, err := io.Copy(stream, conn); errc <- err }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	return err
}
