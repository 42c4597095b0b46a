// Package cluster brings the whole local cluster up and down: the pod bridge, the control plane
// (package controlplane), the rayk8s CRDs, one process node (package processnode), and Services
// and cluster DNS (package servicenet: kube-proxy and CoreDNS). It keeps a state file so
// `devcluster down` and the next `up` can remove whatever a crashed run left.
package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/rayk8s/rayk8s/internal/devcluster/controlplane"
	"github.com/rayk8s/rayk8s/internal/devcluster/hostpaths"
	"github.com/rayk8s/rayk8s/internal/devcluster/netns"
	"github.com/rayk8s/rayk8s/internal/devcluster/processnode"
	"github.com/rayk8s/rayk8s/internal/devcluster/servicenet"
)

// Options describe one local cluster. Two clusters on one machine need different state dirs,
// bridges, prefixes, ranges and ports.
type Options struct {
	// StateDir holds everything the cluster writes (wiped by Up and Down).
	StateDir string
	// BinDir holds the Kubernetes binaries and is first on every pod's PATH.
	BinDir string
	// CRDDirs are installed once the apiserver is up.
	CRDDirs []string
	// Bridge, Prefix, ClusterCIDR (pods) and ServiceCIDR lay out the network.
	Bridge, Prefix           string
	ClusterCIDR, ServiceCIDR netip.Prefix
	// Ports of the components; KubeletPort is the process node's API (logs, exec).
	EtcdPort, EtcdPeerPort, APIServerPort, ControllerManagerPort, SchedulerPort, KubeletPort int
	// Ports of kube-proxy (healthz, metrics) and CoreDNS (health, ready); CoreDNS serves DNS on
	// the bridge address, port 53.
	ProxyHealthPort, ProxyMetricsPort, DNSHealthPort, DNSReadyPort int
	// WithoutServices runs neither kube-proxy nor CoreDNS: no ClusterIPs, no cluster DNS (pods
	// get the host's resolv.conf). kube-proxy's nftables tables are machine-wide, so only one
	// cluster with Services runs at a time.
	WithoutServices bool
	// ClusterDomain is the cluster's DNS suffix (default cluster.local).
	ClusterDomain string
	// NodeName, NodeCPU and NodeMemory describe the process node (zero: the machine's).
	NodeName   string
	NodeCPU    resource.Quantity
	NodeMemory resource.Quantity
	// Backoff overrides the container restart backoff (zero: a kubelet's).
	Backoff processnode.Backoff
	// Image stands in for what the rayk8s image adds besides its binaries (files, env).
	Image processnode.Image
	// Images stand in for other images pods run, by processnode.ImageName.
	Images map[string]processnode.Image
	Log    logr.Logger
}

// Defaults returns the options `devcluster up` uses for a repository checkout.
func Defaults(repo string) Options {
	return Options{
		StateDir:    filepath.Join(repo, ".cache", "devcluster"),
		BinDir:      filepath.Join(repo, "bin"),
		CRDDirs:     []string{filepath.Join(repo, "config", "crd", "bases")},
		Bridge:      "rk8s0",
		Prefix:      "rk8s",
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16"),
		EtcdPort:    12379, EtcdPeerPort: 12380, APIServerPort: 16443,
		ControllerManagerPort: 20257, SchedulerPort: 20259, KubeletPort: 20250,
		ProxyHealthPort: 20256, ProxyMetricsPort: 20249, DNSHealthPort: 20180, DNSReadyPort: 20181,
		NodeName: "process-node-1", ClusterDomain: "cluster.local",
		Image:  RayK8sImage(repo),
		Images: map[string]processnode.Image{"redis": RedisImage()},
	}
}

// RedisImage stands in for Docker Hub's redis image, which KubeRay's GCS fault-tolerance
// samples run, with Debian's redis-server package: the image's executables in
// /usr/local/bin, its /data volume and working directory, and its default command.
func RedisImage() processnode.Image {
	return processnode.Image{
		Binaries: map[string]string{
			"/usr/local/bin/redis-server": "/usr/bin/redis-server",
			"/usr/local/bin/redis-cli":    "/usr/bin/redis-cli",
		},
		Package:    "redis-server",
		Volumes:    []string{"/data"},
		WorkingDir: "/data",
		Cmd:        []string{"redis-server"},
	}
}

// ImagePythonDir is where the rayk8s image (Dockerfile) keeps the Python Serve SDK and examples.
const ImagePythonDir = "/opt/rayk8s/python"

// RayK8sImage is what the rayk8s image provides besides bin/, taken from the checkout: the
// Python SDK and examples at ImagePythonDir and the image's PYTHONPATH.
func RayK8sImage(repo string) processnode.Image {
	return processnode.Image{
		Files: []processnode.ImageFile{{Source: filepath.Join(repo, "python"), Target: ImagePythonDir}},
		Env:   map[string]string{"PYTHONPATH": ImagePythonDir},
	}
}

// State is what a running cluster records in StateDir/state.json.
type State struct {
	// Pid is the process running the cluster (devcluster up), Exe its executable.
	Pid int    `json:"pid"`
	Exe string `json:"exe"`
	// Components are the control-plane processes.
	Components []Component `json:"components,omitempty"`
	Bridge     string      `json:"bridge"`
	Prefix     string      `json:"prefix"`
	Kubeconfig string      `json:"kubeconfig,omitempty"`
	APIServer  string      `json:"apiServer,omitempty"`
	Node       string      `json:"node,omitempty"`
	PodCIDR    string      `json:"podCIDR,omitempty"`
	// ServiceCIDR and DNSIP (the kube-dns ClusterIP) are set when Services run.
	ServiceCIDR string    `json:"serviceCIDR,omitempty"`
	DNSIP       string    `json:"dnsIP,omitempty"`
	Started     time.Time `json:"started"`
}

// Component is one control-plane process.
type Component struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	Exe  string `json:"exe"`
	Log  string `json:"log"`
}

// Cluster is a running local cluster.
type Cluster struct {
	opts     Options
	State    State
	CP       *controlplane.ControlPlane
	Network  *netns.Network
	Provider *processnode.Provider
	stopNode context.CancelFunc
	nodeDone chan error
	// svc are kube-proxy and CoreDNS; proxyLock owns kube-proxy's nftables tables.
	svc       []*controlplane.Process
	proxyLock *servicenet.ProxyLock
}

// RequireRoot explains why the cluster needs root when it is not.
func RequireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("the local cluster needs root: it creates a bridge, network namespaces and " +
			"mount namespaces for pods (run it as root, e.g. `sudo -E make run`)")
	}
	return nil
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// ReadState reads StateDir/state.json (os.ErrNotExist when no cluster ran there).
func ReadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func writeState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(statePath(dir), b, 0o644)
}

func (o Options) netConfig() netns.Config {
	node := netip.PrefixFrom(o.ClusterCIDR.Masked().Addr(), 24)
	return netns.Config{Bridge: o.Bridge, ClusterCIDR: o.ClusterCIDR, NodeCIDR: node, Prefix: o.Prefix}
}

// Up removes leftovers of an earlier run in StateDir and starts a cluster.
func Up(ctx context.Context, o Options) (_ *Cluster, retErr error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	if err := Down(o.StateDir, o.Log); err != nil {
		return nil, fmt.Errorf("removing what an earlier run left: %w", err)
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	nc := o.netConfig()
	c := &Cluster{opts: o, State: State{Pid: os.Getpid(), Exe: exe, Bridge: o.Bridge, Prefix: o.Prefix,
		Node: o.NodeName, PodCIDR: nc.NodeCIDR.String(), Started: time.Now()}}
	svcCfg := o.serviceConfig()
	if !o.WithoutServices {
		if err := svcCfg.Check(); err != nil {
			return nil, err
		}
		c.State.ServiceCIDR, c.State.DNSIP = o.ServiceCIDR.String(), svcCfg.DNSIP.String()
	}
	if err := writeState(o.StateDir, c.State); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			c.Stop()
		}
	}()
	c.Network, err = netns.New(nc, netns.ExecRunner{})
	if err != nil {
		return nil, err
	}
	if err := c.Network.EnsureBridge(ctx); err != nil {
		return nil, err
	}
	if !o.WithoutServices {
		if c.proxyLock, err = servicenet.AcquireProxy(ctx, o.StateDir, netns.ExecRunner{}); err != nil {
			return nil, err
		}
		if err := servicenet.SetupHost(ctx, svcCfg, netns.ExecRunner{}); err != nil {
			return nil, err
		}
	}
	gw := nc.Gateway().String()
	cpCfg := controlplane.Config{
		Dir: filepath.Join(o.StateDir, "controlplane"), BinDir: o.BinDir, Address: gw,
		ServiceCIDR: o.ServiceCIDR.String(), ClusterCIDR: o.ClusterCIDR.String(),
		EtcdPort: o.EtcdPort, EtcdPeerPort: o.EtcdPeerPort, APIServerPort: o.APIServerPort,
		ControllerManagerPort: o.ControllerManagerPort, SchedulerPort: o.SchedulerPort,
	}
	c.CP, err = controlplane.Start(ctx, cpCfg)
	if c.CP != nil || err == nil {
		c.recordComponents()
	}
	if err != nil {
		return nil, err
	}
	c.State.Kubeconfig, c.State.APIServer = c.CP.Kubeconfig, cpCfg.APIServerURL()
	c.recordComponents()
	if len(o.CRDDirs) > 0 {
		if _, err := envtest.InstallCRDs(c.CP.Rest, envtest.CRDInstallOptions{Paths: o.CRDDirs, ErrorIfPathMissing: true}); err != nil {
			return nil, fmt.Errorf("installing CRDs: %w", err)
		}
	}
	if !o.WithoutServices {
		// Before anything else can be given the kube-dns ClusterIP.
		cs, err := c.CP.Clientset()
		if err != nil {
			return nil, err
		}
		if err := servicenet.EnsureDNSService(ctx, cs, svcCfg); err != nil {
			return nil, err
		}
	}
	if err := c.startNode(ctx, gw); err != nil {
		return nil, err
	}
	if !o.WithoutServices {
		if err := c.startServices(ctx, svcCfg); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (o Options) serviceConfig() servicenet.Config {
	nc := o.netConfig()
	return servicenet.Config{
		Dir: filepath.Join(o.StateDir, "services"), BinDir: o.BinDir,
		Kubeconfig: filepath.Join(o.StateDir, "controlplane", "kubeconfig"),
		Bridge:     o.Bridge, Gateway: nc.Gateway(), Prefix: o.Prefix,
		ClusterCIDR: o.ClusterCIDR, ServiceCIDR: o.ServiceCIDR, NodeName: o.NodeName,
		DNSIP: servicenet.DNSIPFor(o.ServiceCIDR), ClusterDomain: o.ClusterDomain,
		ProxyHealthPort: o.ProxyHealthPort, ProxyMetricsPort: o.ProxyMetricsPort,
		DNSHealthPort: o.DNSHealthPort, DNSReadyPort: o.DNSReadyPort,
	}
}

// startServices starts kube-proxy and CoreDNS, publishes CoreDNS as kube-dns and waits until a
// lookup through the kube-dns ClusterIP answers.
func (c *Cluster) startServices(ctx context.Context, cfg servicenet.Config) error {
	cfg.Kubeconfig = c.CP.Kubeconfig
	proxy, err := servicenet.StartKubeProxy(ctx, cfg)
	c.svc = append(c.svc, proxy)
	c.recordComponents()
	if err != nil {
		return err
	}
	dns, err := servicenet.StartCoreDNS(ctx, cfg)
	c.svc = append(c.svc, dns)
	c.recordComponents()
	if err != nil {
		return err
	}
	cs, err := c.CP.Clientset()
	if err != nil {
		return err
	}
	if err := servicenet.PublishDNSEndpoints(ctx, cs, cfg); err != nil {
		return err
	}
	return servicenet.WaitDNS(ctx, cfg)
}

func (c *Cluster) recordComponents() {
	c.State.Components = nil
	var procs []*controlplane.Process
	if c.CP != nil {
		procs = append(procs, c.CP.Processes...)
	}
	for _, p := range append(procs, c.svc...) {
		c.State.Components = append(c.State.Components, Component{Name: p.Name, Pid: p.Pid(), Exe: p.Path, Log: p.LogFile})
	}
	_ = writeState(c.opts.StateDir, c.State)
}

func (c *Cluster) startNode(ctx context.Context, gw string) error {
	o := c.opts
	client, err := c.CP.Clientset()
	if err != nil {
		return err
	}
	tlsCfg, err := nodeTLS(c.CP.PKI)
	if err != nil {
		return err
	}
	alloc, err := allocatable(o.NodeCPU, o.NodeMemory)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	nodeCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.stopNode = cancel
	c.nodeDone = make(chan error, 1)
	ready := make(chan *processnode.Provider, 1)
	opts := processnode.NodeOptions{
		Config: processnode.Config{
			NodeName: o.NodeName, StateDir: filepath.Join(o.StateDir, "node"), BinDir: o.BinDir, Helper: exe,
			HostIP: gw, APIServerHost: gw, APIServerPort: int32(o.APIServerPort),
			Allocatable: alloc, Backoff: o.Backoff, ClusterDomain: o.ClusterDomain, Image: o.Image, Images: o.Images,
		},
		Client: client, Network: c.Network,
		ListenAddr: net.JoinHostPort(gw, strconv.Itoa(o.KubeletPort)), TLS: tlsCfg,
		PodCIDR: c.State.PodCIDR, Log: o.Log,
	}
	if c.State.DNSIP != "" {
		opts.ClusterDNS = []string{c.State.DNSIP}
	}
	go func() {
		c.nodeDone <- processnode.Run(nodeCtx, opts, func(p *processnode.Provider) { ready <- p })
	}()
	select {
	case c.Provider = <-ready:
		return nil
	case err := <-c.nodeDone:
		c.nodeDone <- err
		return fmt.Errorf("process node: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NodeDone delivers the process node's error if it stops on its own.
func (c *Cluster) NodeDone() <-chan error { return c.nodeDone }

// Stop stops the node (and its pods), the control plane and removes the network and every file.
func (c *Cluster) Stop() {
	if c.stopNode != nil {
		c.stopNode()
		err := <-c.nodeDone
		if err != nil && !errors.Is(err, context.Canceled) {
			c.opts.Log.Error(err, "process node stopped")
		}
	}
	for i := len(c.svc) - 1; i >= 0; i-- {
		c.svc[i].Stop(10 * time.Second)
	}
	if c.CP != nil {
		c.CP.Stop()
	}
	if c.proxyLock != nil {
		if err := c.proxyLock.RemoveTables(context.Background(), netns.ExecRunner{}); err != nil {
			c.opts.Log.Error(err, "removing kube-proxy's nftables tables")
		}
		c.proxyLock.Release()
		c.proxyLock = nil
	}
	if err := Down(c.opts.StateDir, c.opts.Log); err != nil {
		c.opts.Log.Error(err, "cleaning up")
	}
}

// Down removes everything a cluster in stateDir holds, whether it is running (it is asked to
// stop, then killed), crashed or already gone: processes, network namespaces, veths, the
// bridge (and with it the service route and its forwarding setting), kube-proxy's and our
// nftables tables, mount points created on the host and the state directory itself.
func Down(stateDir string, log logr.Logger) error {
	s, err := ReadState(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return removeIfEmpty(stateDir)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w (remove the directory by hand)", statePath(stateDir), err)
	}
	var errs []error
	if s.Pid != os.Getpid() && alive(s.Pid, s.Exe) {
		log.Info("stopping the running cluster", "pid", s.Pid)
		_ = syscall.Kill(s.Pid, syscall.SIGTERM)
		for i := 0; i < 600 && alive(s.Pid, s.Exe); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		controlplane.KillStale(s.Pid, s.Exe)
	}
	for _, comp := range s.Components {
		if controlplane.KillStale(comp.Pid, comp.Exe) {
			log.Info("killed a leftover process", "name", comp.Name, "pid", comp.Pid)
		}
	}
	ctx := context.Background()
	errs = append(errs, servicenet.CleanupStale(ctx, stateDir, netns.ExecRunner{}))
	if s.Prefix != "" {
		errs = append(errs, servicenet.DeleteGuard(ctx, s.Prefix, netns.ExecRunner{}))
	}
	if s.Prefix != "" && s.Bridge != "" {
		n, err := netns.New(netns.Config{Bridge: s.Bridge, Prefix: s.Prefix,
			ClusterCIDR: netip.MustParsePrefix("10.0.0.0/8"), NodeCIDR: netip.MustParsePrefix("10.0.0.0/24")}, netns.ExecRunner{})
		if err == nil {
			errs = append(errs, n.Cleanup(ctx), n.DeleteBridge(ctx))
		} else {
			errs = append(errs, err)
		}
	}
	errs = append(errs, hostpaths.RemoveAll(processnode.CreatedPathsFile(filepath.Join(stateDir, "node"))))
	errs = append(errs, unmountUnder(stateDir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.RemoveAll(stateDir)
}

// removeIfEmpty removes a directory without state.json only when it is empty (a run that stopped
// before writing its state): a --state-dir pointing at anything else is not ours to delete.
func removeIfEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s holds files but no state.json, so it is not a devcluster state directory: choose another --state-dir, or remove it by hand if it is one", dir)
	}
	return os.Remove(dir)
}

// alive reports whether pid runs exe.
func alive(pid int, exe string) bool {
	if pid <= 0 {
		return false
	}
	link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	return err == nil && strings.TrimSuffix(link, " (deleted)") == exe
}

// unmountUnder unmounts anything still mounted below dir in this mount namespace (nothing is
// expected: pod mounts live in the pods' own namespaces).
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil //nolint:nilerr // no procfs: nothing to check
	}
	defer f.Close()
	abs, _ := filepath.Abs(dir)
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && strings.HasPrefix(fields[1], abs+"/") {
			targets = append(targets, fields[1])
		}
	}
	var errs []error
	for i := len(targets) - 1; i >= 0; i-- {
		if err := syscall.Unmount(targets[i], syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", targets[i], err))
		}
	}
	return errors.Join(errs...)
}

func nodeTLS(pki *controlplane.PKI) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(pki.Path(controlplane.NodeCert), pki.Path(controlplane.NodeKey))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(pki.Path(controlplane.CACert))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// cpuOvercommit multiplies the machine's cores into the process node's allocatable CPU: the node
// enforces no CPU limits, so requests are only bookkeeping, and samples that request a few
// hundred millicores each should all fit on a 2-core machine at once.
const cpuOvercommit = 4

func allocatable(cpu, mem resource.Quantity) (corev1.ResourceList, error) {
	if cpu.IsZero() {
		cpu = *resource.NewQuantity(int64(cpuOvercommit*runtime.NumCPU()), resource.DecimalSI)
	}
	if mem.IsZero() {
		total, err := memTotal()
		if err != nil {
			return nil, err
		}
		mem = *resource.NewQuantity(total, resource.BinarySI)
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:              cpu,
		corev1.ResourceMemory:           mem,
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}, nil
}

func memTotal() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("MemTotal not found in /proc/meminfo")
}
