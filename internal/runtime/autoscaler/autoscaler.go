// Package autoscaler is `ray kuberay-autoscaler`: the sidecar of an autoscaling RayCluster's head
// pod. Each round it reads the RayCluster, its pods and the head's demand and idleness, lets
// package plan decide, and writes a changed decision as one optimistically locked patch of the
// groups' replicas and scaleStrategy.workersToDelete, which the operator then acts on. Every
// decision is logged, emitted as an Event on the RayCluster and counted in Prometheus metrics.
package autoscaler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/plan"
	"github.com/rayk8s/rayk8s/internal/runtime/autoscaler/report"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
)

const (
	// DefaultInterval is how often a round runs, as Ray's autoscaler updates every few seconds.
	DefaultInterval = 5 * time.Second
	// DefaultMetricsAddr is Ray's autoscaler metrics port.
	DefaultMetricsAddr = ":44217"
	// defaultGCSPort is the head's GCS port when rayStartParams do not set one.
	defaultGCSPort = "6379"
	// maxAttempts bounds the re-reads after conflicts within one round.
	maxAttempts = 3
	// drainFor is the least time a node the autoscaler removes is kept free of new work (the
	// head lifts the drain after it if the node is still alive); each round renews it.
	drainFor = 30 * time.Second
	// eventNoteLimit is the events.k8s.io limit on an Event's note.
	eventNoteLimit = 1024
	// Component is the event reporter's name.
	Component = "ray-autoscaler"
)

// Event reasons.
const (
	EventScaledUp             = "ScaledUp"
	EventScaledDown           = "ScaledDown"
	EventWorkersToDeleteClear = "WorkersToDeleteCleared"
	EventInfeasibleDemand     = "InfeasibleDemand"
	EventInsufficientCapacity = "InsufficientCapacity"
	EventInvalidWorkerGroup   = "InvalidWorkerGroup"
)

// Options configures the autoscaler.
type Options struct {
	// ClusterName and Namespace name the RayCluster (--cluster-name, --cluster-namespace).
	ClusterName, Namespace string
	// Config reaches the API server; nil loads KUBECONFIG or the in-cluster service account.
	Config *rest.Config
	// Client reads and patches the RayCluster and lists its pods; nil builds one from Config.
	Client client.Client
	// Head reports the Ray side; nil dials HeadAddress.
	Head HeadState
	// HeadAddress is the head's GCS host:port; empty means 127.0.0.1 and the head's
	// rayStartParams port (default 6379), as the sidecar shares the head pod's network.
	HeadAddress string
	// AuthToken is the cluster's token (RAY_AUTH_TOKEN) when token authentication is on; the
	// head's GCS port refuses calls without it.
	AuthToken string
	// HeadTLS dials the head with mutual TLS (RAY_USE_TLS in the sidecar's environment); nil
	// dials in plain text.
	HeadTLS *tls.Config
	// Interval between rounds; zero means DefaultInterval.
	Interval time.Duration
	// MaxWorkers caps the cluster's worker pods; zero means the groups' maxReplicas only.
	MaxWorkers int
	// Recorder emits Events; nil builds an events.k8s.io recorder on Config.
	Recorder events.EventRecorder
	// Registry receives the metrics; nil means a new registry.
	Registry prometheus.Registerer
	// Gatherer serves /metrics; nil means Registry's if it is a Gatherer.
	Gatherer prometheus.Gatherer
	// MetricsAddr serves /metrics when non-empty (DefaultMetricsAddr in the sidecar).
	MetricsAddr string
	Clock       clock.WithTicker
	Logger      logr.Logger
}

// Autoscaler runs rounds.
type Autoscaler struct {
	opts    Options
	key     client.ObjectKey
	metrics *metrics
	// lastNotes de-duplicates the warnings repeated every round.
	lastNotes map[string]string
	// warnedShapes holds, per event reason, the unmet resource shapes already reported.
	warnedShapes map[string]map[string]bool
}

// RoundResult is what one round did.
type RoundResult struct {
	Decision plan.Decision
	// Patched is set when the decision was written.
	Patched bool
	// Conflicts counts the writes the API server refused because the RayCluster had changed.
	Conflicts int
}

// Scheme returns the types the autoscaler reads.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(rayv1.AddToScheme(s))
	return s
}

// New validates opts and fills in defaults. The head connection, when Head is nil, is made on
// the first round, once the RayCluster says which port the head's GCS listens on.
func New(ctx context.Context, opts Options) (*Autoscaler, error) {
	if opts.ClusterName == "" {
		return nil, errors.New("--cluster-name is required")
	}
	if opts.Namespace == "" {
		return nil, errors.New("--cluster-namespace is required")
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("interval %s: must not be negative", opts.Interval)
	}
	if opts.MaxWorkers < 0 {
		return nil, fmt.Errorf("max workers %d: must not be negative", opts.MaxWorkers)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	scheme := Scheme()
	if opts.Config == nil && (opts.Client == nil || opts.Recorder == nil) {
		cfg, err := config.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("loading Kubernetes credentials: %w", err)
		}
		opts.Config = cfg
	}
	if opts.Client == nil {
		c, err := client.New(opts.Config, client.Options{Scheme: scheme})
		if err != nil {
			return nil, fmt.Errorf("building the Kubernetes client: %w", err)
		}
		opts.Client = c
	}
	if opts.Recorder == nil {
		cs, err := kubernetes.NewForConfig(opts.Config)
		if err != nil {
			return nil, fmt.Errorf("building the events client: %w", err)
		}
		b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
		b.StartRecordingToSink(ctx.Done())
		opts.Recorder = b.NewRecorder(scheme, Component)
	}
	if opts.Registry == nil {
		reg := prometheus.NewRegistry()
		opts.Registry, opts.Gatherer = reg, reg
	}
	if opts.Gatherer == nil {
		if g, ok := opts.Registry.(prometheus.Gatherer); ok {
			opts.Gatherer = g
		}
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return &Autoscaler{
		opts: opts, metrics: m, lastNotes: map[string]string{}, warnedShapes: map[string]map[string]bool{},
		key: client.ObjectKey{Namespace: opts.Namespace, Name: opts.ClusterName},
	}, nil
}

// Run runs rounds every interval until ctx ends. A failed round is logged and retried next round;
// only bad options make Run fail.
func Run(ctx context.Context, opts Options) error {
	a, err := New(ctx, opts)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// Run runs rounds until ctx ends.
func (a *Autoscaler) Run(ctx context.Context) error {
	log := a.opts.Logger
	if a.opts.MetricsAddr != "" {
		l, err := net.Listen("tcp", a.opts.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listening for metrics on %s: %w", a.opts.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(a.opts.Gatherer, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer func() { _ = srv.Close() }()
	}
	log.Info("Autoscaler started", "cluster", a.key.String(), "interval", a.opts.Interval)
	t := a.opts.Clock.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		if _, err := a.Round(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Autoscaler round failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// Round observes, decides and writes once. A conflicting write re-reads everything and decides
// again, so a concurrent edit is built upon and never overwritten.
func (a *Autoscaler) Round(ctx context.Context) (RoundResult, error) {
	var res RoundResult
	for range maxAttempts {
		c, d, err := a.decide(ctx)
		if err != nil {
			a.metrics.rounds.WithLabelValues("error").Inc()
			return res, err
		}
		res.Decision = d
		patch, err := scalePatch(c, d)
		if err != nil || patch == nil {
			a.metrics.rounds.WithLabelValues("ok").Inc()
			return res, err
		}
		// Patch a copy: Patch overwrites its object with the answer, and announce compares the
		// decision with the spec it was made from.
		err = a.opts.Client.Patch(ctx, c.DeepCopy(), client.RawPatch(types.JSONPatchType, patch))
		if apierrors.IsConflict(err) {
			// Someone changed the RayCluster since it was read. (The groupName tests cannot fail
			// without the resourceVersion failing first; they guard against a stale index.)
			res.Conflicts++
			a.metrics.rounds.WithLabelValues("conflict").Inc()
			a.opts.Logger.Info("RayCluster changed since it was read; deciding again", "cluster", a.key.String())
			continue
		}
		if err != nil {
			a.metrics.rounds.WithLabelValues("error").Inc()
			return res, fmt.Errorf("patching RayCluster %s: %w", a.key, err)
		}
		res.Patched = true
		a.metrics.rounds.WithLabelValues("ok").Inc()
		a.announce(c, d)
		return res, nil
	}
	return res, fmt.Errorf("RayCluster %s kept changing: %d conflicting writes in one round; trying again next round", a.key, res.Conflicts)
}

// decide reads the cluster, its pods and the head's state and decides.
func (a *Autoscaler) decide(ctx context.Context) (*rayv1.RayCluster, plan.Decision, error) {
	c := &rayv1.RayCluster{}
	if err := a.opts.Client.Get(ctx, a.key, c); err != nil {
		return nil, plan.Decision{}, fmt.Errorf("reading RayCluster %s: %w", a.key, err)
	}
	if c.Spec.EnableInTreeAutoscaling == nil || !*c.Spec.EnableInTreeAutoscaling {
		return nil, plan.Decision{}, fmt.Errorf("RayCluster %s: spec.enableInTreeAutoscaling is not true; the autoscaler changes nothing", a.key)
	}
	var pods corev1.PodList
	if err := a.opts.Client.List(ctx, &pods, client.InNamespace(a.key.Namespace),
		client.MatchingLabels{rayv1.RayClusterLabelKey: a.key.Name}); err != nil {
		return nil, plan.Decision{}, fmt.Errorf("listing the pods of RayCluster %s: %w", a.key, err)
	}
	head, err := a.head(c)
	if err != nil {
		return nil, plan.Decision{}, err
	}
	st, err := head.ClusterState(ctx)
	if err != nil {
		return nil, plan.Decision{}, err
	}
	o := observe(c, pods.Items, st, a.opts.Clock.Now(), a.opts.MaxWorkers)
	d, err := plan.Decide(o.input)
	if err != nil {
		return nil, plan.Decision{}, fmt.Errorf("RayCluster %s: %w", a.key, err)
	}
	if d, err = a.drain(ctx, head, &o, d); err != nil {
		return nil, plan.Decision{}, fmt.Errorf("RayCluster %s: %w", a.key, err)
	}
	a.metrics.observe(o.input, d)
	r := buildReport(c, o, d)
	a.warn(c, o, r)
	a.publish(ctx, r)
	return c, d, nil
}

// drain asks the head to place nothing more on the Ray nodes of the pods d deletes, so that no
// task, actor, replica or job lands on a node between this decision and its pod's end (KubeRay's
// autoscaler can delete a worker that just got work). A node the head will not drain got work
// since the state was read: it is kept, by deciding again with it busy, until every node the
// decision deletes is drained. Nodes of pods named in earlier rounds and not gone yet are drained
// again, which moves the drain's deadline, so a slow deletion never reopens the node.
func (a *Autoscaler) drain(ctx context.Context, head HeadState, o *observation, d plan.Decision) (plan.Decision, error) {
	deadline := a.opts.Clock.Now().Add(max(drainFor, 3*a.opts.Interval))
	drained := map[string]bool{}
	for {
		var refused []string
		for _, g := range d.Groups {
			fresh := map[string]bool{}
			for _, del := range g.Deletions {
				fresh[del.Pod] = true
			}
			for _, pod := range g.WorkersToDelete {
				nodeID, ok := o.nodeOfPod[pod]
				if !ok || drained[nodeID] {
					// No Ray node: nothing can be placed there.
					continue
				}
				accepted, why, err := head.DrainNode(ctx, nodeID, "pod "+pod+" is being removed", deadline)
				if err != nil && !errors.Is(err, ErrNodeGone) {
					return d, err
				}
				switch {
				case accepted || err != nil:
					// Drained, or gone since the state was read.
					drained[nodeID] = true
				case fresh[pod]:
					a.opts.Logger.Info("Keeping a worker that got work since the head's state was read", "cluster", a.key.String(), "pod", pod, "node", nodeID, "reason", why)
					refused = append(refused, nodeID)
				default:
					// Named in an earlier round: the operator may be deleting it already.
					a.opts.Logger.Info("A worker being removed could not be drained again", "cluster", a.key.String(), "pod", pod, "node", nodeID, "reason", why)
					drained[nodeID] = true
				}
			}
		}
		if len(refused) == 0 {
			return d, nil
		}
		for i := range o.input.Nodes {
			if n := &o.input.Nodes[i]; slices.Contains(refused, o.nodeOfPod[n.Pod]) {
				n.Busy, n.IdleSince = true, time.Time{}
			}
		}
		var err error
		// A busy node is never deleted, so each pass deletes fewer refused nodes and this ends.
		if d, err = plan.Decide(o.input); err != nil {
			return d, err
		}
	}
}

func (a *Autoscaler) head(c *rayv1.RayCluster) (HeadState, error) {
	if a.opts.Head != nil {
		return a.opts.Head, nil
	}
	addr := a.opts.HeadAddress
	if addr == "" {
		port := c.Spec.HeadGroupSpec.RayStartParams["port"]
		if port == "" {
			port = defaultGCSPort
		}
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	conn, err := gcs.Dial(addr, gcs.WithAuthToken(a.opts.AuthToken), gcs.WithTLS(a.opts.HeadTLS))
	if err != nil {
		return nil, err
	}
	a.opts.Head = NewGRPCHead(conn)
	return a.opts.Head, nil
}

// announce logs, emits and counts every written group decision.
func (a *Autoscaler) announce(c *rayv1.RayCluster, d plan.Decision) {
	for _, g := range d.Groups {
		if !g.Changed {
			continue
		}
		prev := prevReplicas(c, g.Group)
		reason, action := EventWorkersToDeleteClear, "cleanup"
		switch {
		case g.Replicas > prev:
			reason, action = EventScaledUp, "up"
		case g.Replicas < prev || len(g.Deletions) > 0:
			reason, action = EventScaledDown, "down"
		}
		note := fmt.Sprintf("Group %s: replicas %d -> %d: %s", g.Group, prev, g.Replicas, g.Reason)
		for _, del := range g.Deletions {
			note += fmt.Sprintf("; deleting %s (%s)", del.Pod, del.Reason)
		}
		a.opts.Logger.Info("Scaling decision", "cluster", a.key.String(), "group", g.Group,
			"from", prev, "to", g.Replicas, "workersToDelete", g.WorkersToDelete, "reason", g.Reason)
		a.event(c, corev1.EventTypeNormal, reason, note)
		a.metrics.decisions.WithLabelValues(g.Group, action).Inc()
	}
}

func prevReplicas(c *rayv1.RayCluster, group string) int32 {
	for _, g := range c.Spec.WorkerGroupSpecs {
		if g.GroupName != group {
			continue
		}
		if g.Replicas != nil {
			return *g.Replicas
		}
		if g.MinReplicas != nil {
			return *g.MinReplicas
		}
	}
	return 0
}

// warn reports what the decision cannot act on: each infeasible or unmet resource shape once
// while it stays unmet, and groups whose node resources are unknown once per change.
func (a *Autoscaler) warn(c *rayv1.RayCluster, o observation, r *report.Report) {
	a.warnShapes(c, EventInfeasibleDemand, true, r.Unmet)
	a.warnShapes(c, EventInsufficientCapacity, false, r.Unmet)
	a.warnOnce(c, EventInvalidWorkerGroup, strings.Join(o.shapeErrors, "; "))
}

func (a *Autoscaler) warnOnce(c *rayv1.RayCluster, reason, note string) {
	if a.lastNotes[reason] == note {
		return
	}
	a.lastNotes[reason] = note
	if note == "" {
		return
	}
	a.opts.Logger.Info("Demand the autoscaler cannot serve", "cluster", a.key.String(), "reason", reason, "detail", note)
	a.event(c, corev1.EventTypeWarning, reason, note)
}

func (a *Autoscaler) event(c *rayv1.RayCluster, typ, reason, note string) {
	if len(note) > eventNoteLimit {
		note = note[:eventNoteLimit-3] + "..."
	}
	a.opts.Recorder.Eventf(c, nil, typ, reason, "Autoscale", "%s", note)
}
