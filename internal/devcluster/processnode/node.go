package processnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// NodeOptions configure Run.
type NodeOptions struct {
	Config
	Client  kubernetes.Interface
	Network Network
	// ListenAddr is the kubelet API (logs, exec, port-forward) address, host:port.
	ListenAddr string
	// TLS serves the kubelet API; set ClientAuth/ClientCAs to require the apiserver's client
	// certificate. Without it `kubectl logs` does not work.
	TLS *tls.Config
	// PodCIDR is shown in the Node's spec.
	PodCIDR string
	// ShutdownGrace bounds how long pods get to stop when ctx ends.
	ShutdownGrace time.Duration
	Clock         clock.WithTicker
	Log           logr.Logger
}

// Run registers the node, runs pods scheduled to it until ctx ends, and then stops them all.
// ready, if not nil, is called once the node is Ready.
func Run(ctx context.Context, o NodeOptions, ready func(*Provider)) error {
	ctx = vklog.WithLogger(ctx, vkslog.FromSlog(slog.New(logr.ToSlogHandler(o.Log.WithName("virtual-kubelet")))))
	_, portStr, err := net.SplitHostPort(o.ListenAddr)
	if err != nil {
		return fmt.Errorf("kubelet listen address: %w", err)
	}
	port, _ := strconv.Atoi(portStr)
	var prov *Provider
	mux := http.NewServeMux()
	n, err := nodeutil.NewNode(o.NodeName, func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		p, err := NewProvider(o.Config, Deps{
			Network: o.Network, Clock: o.Clock, Log: o.Log,
			Pods: pc.Pods, ConfigMaps: pc.ConfigMaps, Secrets: pc.Secrets, Services: pc.Services,
			Token: tokenFunc(o.Client), Client: o.Client,
		})
		if err != nil {
			return nil, nil, err
		}
		prov = p
		describeNode(pc.Node, o, int32(port))
		return p, nil, nil
	},
		nodeutil.WithClient(o.Client),
		nodeutil.AttachProviderRoutes(mux),
		func(c *nodeutil.NodeConfig) error {
			c.HTTPListenAddr = o.ListenAddr
			c.TLSConfig = o.TLS
			c.Handler = mux
			c.NumWorkers = 4
			// Env is resolved by package podenv once the pod IP is known (status.podIP).
			c.SkipDownwardAPIResolution = true
			return nil
		},
	)
	if err != nil {
		return fmt.Errorf("creating node %s: %w", o.NodeName, err)
	}
	nodeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- n.Run(nodeCtx) }()
	if err := n.WaitReady(ctx, 2*time.Minute); err != nil {
		cancel()
		<-errc //nolint:errcheck // the startup error is what matters
		prov.Shutdown(0)
		return fmt.Errorf("node %s did not become ready: %w", o.NodeName, err)
	}
	go prov.Reap(nodeCtx)
	if ready != nil {
		ready(prov)
	}
	select {
	case <-ctx.Done():
	case err := <-n.Done():
		_ = err
	}
	grace := o.ShutdownGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	prov.Shutdown(grace)
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		o.Log.Error(err, "node stopped")
	}
	return n.Err()
}

func describeNode(nd *corev1.Node, o NodeOptions, port int32) {
	nd.Labels["kubernetes.io/os"] = "linux"
	nd.Labels["kubernetes.io/arch"] = runtime.GOARCH
	nd.Labels["rayk8s.io/process-node"] = "true"
	nd.Spec.PodCIDR = o.PodCIDR
	if o.PodCIDR != "" {
		nd.Spec.PodCIDRs = []string{o.PodCIDR}
	}
	nd.Status.Capacity = o.Allocatable.DeepCopy()
	nd.Status.Allocatable = o.Allocatable.DeepCopy()
	nd.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: o.HostIP}}
	nd.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}}
	nd.Status.NodeInfo = corev1.NodeSystemInfo{
		OperatingSystem: "linux", Architecture: runtime.GOARCH,
		KubeletVersion: "v1.37.2", ContainerRuntimeVersion: "process://rayk8s",
	}
}

func tokenFunc(c kubernetes.Interface) func(ctx context.Context, pod *corev1.Pod, sa, audience string, exp int64) (string, error) {
	return func(ctx context.Context, pod *corev1.Pod, sa, audience string, exp int64) (string, error) {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}
		if audience != "" {
			req.Spec.Audiences = []string{audience}
		}
		tr, err := c.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		return tr.Status.Token, nil
	}
}
