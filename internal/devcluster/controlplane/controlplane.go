// Package controlplane runs a real Kubernetes control plane from the binaries hack/tools.sh
// builds into bin/: etcd, kube-apiserver (with service-account signing keys, a service CIDR and
// a kubelet client certificate), kube-controller-manager and kube-scheduler, each a child
// process logging to <Dir>/logs. It writes its own PKI and an admin kubeconfig.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Config is where the control plane runs. Ports must be free.
type Config struct {
	// Dir holds pki/, etcd/, logs/ and kubeconfig; it is wiped on Start.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and kube-scheduler.
	BinDir string
	// Address is where the apiserver listens and advertises itself: the pod bridge's gateway,
	// so pods reach it as well as the host.
	Address string
	// ServiceCIDR is the ClusterIP range (its first address is the kubernetes Service).
	ServiceCIDR string
	// ClusterCIDR is the pod range (for kube-controller-manager and kube-proxy).
	ClusterCIDR string
	// Ports of etcd (client and peer), the apiserver, the controller manager and the scheduler.
	EtcdPort, EtcdPeerPort, APIServerPort, ControllerManagerPort, SchedulerPort int
	// WithoutControllerManager and WithoutScheduler skip those components.
	WithoutControllerManager, WithoutScheduler bool
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	cfg        Config
	PKI        *PKI
	Kubeconfig string
	Rest       *rest.Config
	Processes  []*Process
}

// Binaries are the bin/ files Start needs.
func (c Config) Binaries() []string {
	bins := []string{"etcd", "kube-apiserver"}
	if !c.WithoutControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	if !c.WithoutScheduler {
		bins = append(bins, "kube-scheduler")
	}
	return bins
}

// Check reports missing binaries (with the command that builds them) and busy ports.
func (c Config) Check() error {
	var errs []error
	for _, b := range c.Binaries() {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing: run `make tools` (or `bash hack/tools.sh %s`)", filepath.Join(c.BinDir, b), b))
		}
	}
	ports := map[string]int{"etcd": c.EtcdPort, "etcd peer": c.EtcdPeerPort, "kube-apiserver": c.APIServerPort}
	if !c.WithoutControllerManager {
		ports["kube-controller-manager"] = c.ControllerManagerPort
	}
	if !c.WithoutScheduler {
		ports["kube-scheduler"] = c.SchedulerPort
	}
	for name, port := range ports {
		host := "127.0.0.1"
		if name == "kube-apiserver" {
			host = c.Address
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s port %d is not free: %w", name, port, err))
			continue
		}
		_ = l.Close()
	}
	return errors.Join(errs...)
}

// APIServerURL is the apiserver's address.
func (c Config) APIServerURL() string {
	return "https://" + net.JoinHostPort(c.Address, strconv.Itoa(c.APIServerPort))
}

// Start wipes Dir and starts every component, waiting for each to be healthy.
func Start(ctx context.Context, cfg Config) (_ *ControlPlane, retErr error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	_ = os.RemoveAll(cfg.Dir)
	for _, d := range []string{"logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	pki, err := NewPKI(filepath.Join(cfg.Dir, "pki"))
	if err != nil {
		return nil, fmt.Errorf("creating certificates: %w", err)
	}
	svcIP, err := firstIP(cfg.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	serverHosts := []string{cfg.Address, "127.0.0.1", "localhost", svcIP, "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	issues := []struct {
		cert, key, cn string
		orgs, hosts   []string
	}{
		{APIServerCert, APIServerKey, "kube-apiserver", nil, serverHosts},
		{AdminCert, AdminKey, "devcluster-admin", []string{"system:masters"}, nil},
		{KubeletClientCrt, KubeletClientKey, "kube-apiserver-kubelet-client", []string{"system:masters"}, nil},
		{NodeCert, NodeKey, "process-node", nil, []string{cfg.Address, "127.0.0.1", "localhost"}},
	}
	for _, i := range issues {
		if err := pki.Issue(i.cert, i.key, i.cn, i.orgs, i.hosts); err != nil {
			return nil, err
		}
	}
	cp := &ControlPlane{cfg: cfg, PKI: pki, Kubeconfig: filepath.Join(cfg.Dir, "kubeconfig")}
	defer func() {
		if retErr != nil {
			cp.Stop()
		}
	}()
	if err := writeKubeconfig(cp.Kubeconfig, cfg.APIServerURL(), pki); err != nil {
		return nil, err
	}
	cp.Rest, err = clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.EtcdPort))
	etcd := cp.process("etcd",
		"--data-dir="+filepath.Join(cfg.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.EtcdPeerPort)),
		"--initial-advertise-peer-urls=http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.EtcdPeerPort)),
		"--initial-cluster=default=http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.EtcdPeerPort)),
		"--unsafe-no-fsync=true", "--log-level=warn")
	if err := cp.startAndWait(ctx, etcd, func(ctx context.Context) error {
		return httpOK(ctx, &http.Client{}, etcdURL+"/health")
	}); err != nil {
		return nil, err
	}
	api := cp.process("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address="+cfg.Address, "--advertise-address="+cfg.Address,
		"--secure-port="+strconv.Itoa(cfg.APIServerPort),
		"--cert-dir="+filepath.Join(cfg.Dir, "pki"),
		"--tls-cert-file="+pki.Path(APIServerCert), "--tls-private-key-file="+pki.Path(APIServerKey),
		"--client-ca-file="+pki.Path(CACert),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.Path(SAPub),
		"--service-account-signing-key-file="+pki.Path(SAKey),
		"--service-cluster-ip-range="+cfg.ServiceCIDR,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--kubelet-client-certificate="+pki.Path(KubeletClientCrt), "--kubelet-client-key="+pki.Path(KubeletClientKey),
		"--kubelet-preferred-address-types=InternalIP",
		"--enable-priority-and-fairness=false",
		"--profiling=false")
	if err := cp.startAndWait(ctx, api, func(ctx context.Context) error {
		c, err := rest.HTTPClientFor(cp.Rest)
		if err != nil {
			return err
		}
		return httpOK(ctx, c, cfg.APIServerURL()+"/readyz")
	}); err != nil {
		return nil, err
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health checks of components we just started
	if !cfg.WithoutControllerManager {
		kcm := cp.process("kube-controller-manager",
			"--kubeconfig="+cp.Kubeconfig,
			"--authentication-kubeconfig="+cp.Kubeconfig, "--authorization-kubeconfig="+cp.Kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(cfg.ControllerManagerPort),
			"--cert-dir="+filepath.Join(cfg.Dir, "pki", "kcm"),
			"--service-account-private-key-file="+pki.Path(SAKey),
			"--root-ca-file="+pki.Path(CACert),
			"--cluster-signing-cert-file="+pki.Path(CACert), "--cluster-signing-key-file="+pki.Path(CAKey),
			"--use-service-account-credentials=true",
			"--service-cluster-ip-range="+cfg.ServiceCIDR, "--cluster-cidr="+cfg.ClusterCIDR,
			"--leader-elect=false", "--profiling=false")
		if err := cp.startAndWait(ctx, kcm, func(ctx context.Context) error {
			return httpOK(ctx, insecure, "https://127.0.0.1:"+strconv.Itoa(cfg.ControllerManagerPort)+"/healthz")
		}); err != nil {
			return nil, err
		}
	}
	if !cfg.WithoutScheduler {
		sched := cp.process("kube-scheduler",
			"--kubeconfig="+cp.Kubeconfig,
			"--authentication-kubeconfig="+cp.Kubeconfig, "--authorization-kubeconfig="+cp.Kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(cfg.SchedulerPort),
			"--cert-dir="+filepath.Join(cfg.Dir, "pki", "scheduler"),
			"--leader-elect=false", "--profiling=false")
		if err := cp.startAndWait(ctx, sched, func(ctx context.Context) error {
			return httpOK(ctx, insecure, "https://127.0.0.1:"+strconv.Itoa(cfg.SchedulerPort)+"/healthz")
		}); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

func (cp *ControlPlane) process(name string, args ...string) *Process {
	p := &Process{Name: name, Path: filepath.Join(cp.cfg.BinDir, name), Args: args,
		LogFile: filepath.Join(cp.cfg.Dir, "logs", name+".log")}
	cp.Processes = append(cp.Processes, p)
	return p
}

// startAndWait starts p and polls healthy until it succeeds (2 minutes at most).
func (cp *ControlPlane) startAndWait(ctx context.Context, p *Process, healthy func(context.Context) error) error {
	if err := p.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited during startup (%w); last log lines (%s):\n%s", p.Name, err, p.LogFile, p.Tail(15))
		}
		if last = healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %w (last check: %w); see %s", p.Name, ctx.Err(), last, p.LogFile)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Clientset returns an admin client.
func (cp *ControlPlane) Clientset() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(cp.Rest)
}

// Stop stops the components in reverse order.
func (cp *ControlPlane) Stop() {
	for i := len(cp.Processes) - 1; i >= 0; i-- {
		cp.Processes[i].Stop(15 * time.Second)
	}
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func firstIP(cidr string) (string, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return "", fmt.Errorf("service CIDR: %w", err)
	}
	ip := n.IP.To4()
	if ip == nil {
		return "", fmt.Errorf("service CIDR %s: only IPv4 is supported", cidr)
	}
	out := make(net.IP, 4)
	copy(out, ip)
	out[3]++
	return out.String(), nil
}

func writeKubeconfig(path, server string, pki *PKI) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["devcluster"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: pki.Path(CACert)}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: pki.Path(AdminCert), ClientKey: pki.Path(AdminKey)}
	cfg.Contexts["devcluster"] = &clientcmdapi.Context{Cluster: "devcluster", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "devcluster"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return err
	}
	// Embed the credentials so the file can be copied elsewhere.
	loaded, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return err
	}
	if err := clientcmdapi.FlattenConfig(loaded); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*loaded, path)
}
