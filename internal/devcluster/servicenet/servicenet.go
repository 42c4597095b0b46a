// Package servicenet gives the local cluster Services and cluster DNS: kube-proxy (nftables
// mode) so ClusterIPs work from pods and from the host, and CoreDNS as a host process bound on
// the pod bridge's address, published as the kube-dns Service at a fixed ClusterIP.
//
// Everything it touches on the host is confined to the cluster's ranges and removed again:
//
//   - a route for the service range through the bridge (gone with the bridge), so service
//     traffic never follows the default route off the machine;
//   - IPv4 forwarding on the bridge only (net.ipv4.conf.<bridge>.forwarding; gone with the
//     bridge), so a pod's packets to a ClusterIP can be forwarded to the chosen pod;
//   - its own nftables table (inet rayk8s_<prefix>) that drops anything forwarded into or out of
//     the bridge from or to another interface: pods can reach each other, Services and the
//     host, never another machine;
//   - kube-proxy's tables (ip kube-proxy, ip6 kube-proxy). Their names are fixed by kube-proxy,
//     so one cluster at a time may run it: a lock file in /run records which cluster owns them,
//     and devcluster refuses to start when they exist and no local cluster created them (a
//     machine that is a real Kubernetes node).
//
// kube-proxy is configured to leave the machine's conntrack sysctls alone, to serve NodePorts
// on the bridge address only, and to masquerade all service traffic (so replies come back
// through the host whatever net.bridge.bridge-nf-call-iptables says).
package servicenet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rayk8s/rayk8s/internal/devcluster/controlplane"
	"github.com/rayk8s/rayk8s/internal/devcluster/netns"
)

// Config lays out one cluster's service network.
type Config struct {
	// Dir holds the generated configuration files and logs/.
	Dir string
	// BinDir holds kube-proxy and coredns.
	BinDir string
	// Kubeconfig is an admin kubeconfig for kube-proxy and CoreDNS.
	Kubeconfig string
	// Bridge is the pods' bridge; Gateway its address.
	Bridge  string
	Gateway netip.Addr
	// Prefix names this cluster's nftables table (rayk8s_<Prefix>).
	Prefix string
	// ClusterCIDR (pods) and ServiceCIDR (ClusterIPs).
	ClusterCIDR, ServiceCIDR netip.Prefix
	// NodeName is the process node kube-proxy runs for.
	NodeName string
	// DNSIP is the kube-dns Service's ClusterIP; ClusterDomain the DNS suffix (cluster.local).
	DNSIP         netip.Addr
	ClusterDomain string
	// Ports: kube-proxy's healthz (on Gateway) and metrics (on 127.0.0.1), CoreDNS's health and
	// ready endpoints (on Gateway). CoreDNS serves DNS on Gateway:53.
	ProxyHealthPort, ProxyMetricsPort, DNSHealthPort, DNSReadyPort int
}

// Binaries are the bin/ files the service network needs.
func Binaries() []string { return []string{"kube-proxy", "coredns"} }

// Check reports missing binaries and commands.
func (c Config) Check() error {
	var errs []error
	for _, b := range Binaries() {
		if _, err := os.Stat(filepath.Join(c.BinDir, b)); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing: run `bash hack/tools.sh %s`", filepath.Join(c.BinDir, b), b))
		}
	}
	if _, err := exec.LookPath("nft"); err != nil {
		errs = append(errs, errors.New("nft is missing: kube-proxy's nftables mode needs it (run `make deps`, which installs the nftables package)"))
	}
	return errors.Join(errs...)
}

// TableName is the nftables table (family inet) holding this cluster's forwarding guard.
func TableName(prefix string) string {
	var b strings.Builder
	for _, r := range prefix {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return "rayk8s_" + b.String()
}

// kubeProxyTables are the tables kube-proxy's nftables mode creates (names fixed by kube-proxy).
var kubeProxyTables = [][2]string{{"ip", "kube-proxy"}, {"ip6", "kube-proxy"}}

// SetupHost adds the service route, enables forwarding on the bridge and installs the guard
// table. The bridge must exist. It is idempotent.
func SetupHost(ctx context.Context, c Config, run netns.Runner) error {
	if _, err := run.Run(ctx, "ip", "route", "replace", c.ServiceCIDR.Masked().String(), "dev", c.Bridge, "src", c.Gateway.String()); err != nil {
		return fmt.Errorf("routing the service range through %s: %w", c.Bridge, err)
	}
	if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", c.Bridge, "forwarding"), []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enabling forwarding on %s: %w", c.Bridge, err)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	table := TableName(c.Prefix)
	script := fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	comment "rayk8s devcluster: pods on %[2]s talk to each other, Services and this host only"
	chain forward {
		type filter hook forward priority filter - 5; policy accept;
		iifname "%[2]s" oifname != "%[2]s" counter drop
		oifname "%[2]s" iifname != "%[2]s" counter drop
	}
}
`, table, c.Bridge)
	file := filepath.Join(c.Dir, "guard.nft")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return err
	}
	if _, err := run.Run(ctx, "nft", "-f", file); err != nil {
		return fmt.Errorf("installing nftables table inet %s: %w", table, err)
	}
	return nil
}

// DeleteGuard removes this cluster's nftables table if it exists (the route and the forwarding
// setting go with the bridge).
func DeleteGuard(ctx context.Context, prefix string, run netns.Runner) error {
	return deleteTable(ctx, run, "inet", TableName(prefix))
}

func tableExists(ctx context.Context, run netns.Runner, family, name string) bool {
	_, err := run.Run(ctx, "nft", "list", "table", family, name)
	return err == nil
}

func deleteTable(ctx context.Context, run netns.Runner, family, name string) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil //nolint:nilerr // without nft nothing can have created a table
	}
	if !tableExists(ctx, run, family, name) {
		return nil
	}
	if _, err := run.Run(ctx, "nft", "delete", "table", family, name); err != nil {
		return fmt.Errorf("deleting nftables table %s %s: %w", family, name, err)
	}
	return nil
}

// LockFile records which local cluster owns kube-proxy's (machine-wide) nftables tables.
var LockFile = "/run/rayk8s-devcluster/kube-proxy.lock"

// ProxyLock is held by the cluster whose kube-proxy runs; the kernel drops it when that
// process dies.
type ProxyLock struct {
	f *os.File
}

// ErrProxyBusy means another running local cluster owns kube-proxy's tables.
var ErrProxyBusy = errors.New("another local cluster runs kube-proxy")

func openLock() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(LockFile), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
}

// Owner returns what the lock file records: the state directory and pid of the cluster that
// last owned kube-proxy's tables ("" when none or when they were removed).
func Owner() string {
	b, err := os.ReadFile(LockFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// AcquireProxy takes the lock for the cluster in stateDir and makes sure kube-proxy's tables
// are free: tables a crashed local cluster left are removed; tables nobody recorded are
// somebody else's kube-proxy and make it fail. It fails with ErrProxyBusy while another local
// cluster holds the lock.
func AcquireProxy(ctx context.Context, stateDir string, run netns.Runner) (*ProxyLock, error) {
	f, err := openLock()
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w (%s; %s): kube-proxy's nftables tables are machine-wide, so only one local cluster at a time can have Services; stop the other one with `devcluster down --state-dir DIR`",
			ErrProxyBusy, Owner(), LockFile)
	}
	l := &ProxyLock{f: f}
	prev := Owner()
	if err := foreignKubeProxy(ctx, run); err != nil {
		l.Release()
		return nil, err
	}
	for _, t := range kubeProxyTables {
		if !tableExists(ctx, run, t[0], t[1]) {
			continue
		}
		if prev == "" {
			l.Release()
			return nil, fmt.Errorf("nftables table %s %s exists but no local cluster created it: this machine seems to run Kubernetes' kube-proxy, which devcluster will not touch", t[0], t[1])
		}
		if err := deleteTable(ctx, run, t[0], t[1]); err != nil {
			l.Release()
			return nil, err
		}
	}
	if err := l.record(stateDir + " pid " + strconv.Itoa(os.Getpid())); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// foreignKubeProxy refuses machines where a real kube-proxy in iptables or IPVS mode runs:
// kube-proxy's nftables mode removes those modes' leftovers when it starts.
func foreignKubeProxy(ctx context.Context, run netns.Runner) error {
	if _, err := exec.LookPath("iptables"); err == nil {
		if _, err := run.Run(ctx, "iptables", "-w", "5", "-t", "nat", "-S", "KUBE-SERVICES"); err == nil {
			return errors.New("iptables chain nat/KUBE-SERVICES exists: this machine runs Kubernetes' kube-proxy in iptables mode, and ours would remove its rules; devcluster will not start")
		}
	}
	if b, err := os.ReadFile("/proc/net/ip_vs"); err == nil && len(strings.Split(strings.TrimSpace(string(b)), "\n")) > 3 {
		return errors.New("IPVS virtual servers exist (/proc/net/ip_vs): kube-proxy would flush them; devcluster will not start")
	}
	return nil
}

func (l *ProxyLock) record(owner string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.WriteAt([]byte(owner+"\n"), 0); err != nil {
		return err
	}
	return l.f.Sync()
}

// RemoveTables deletes kube-proxy's tables and clears the record. Call it once kube-proxy has
// stopped.
func (l *ProxyLock) RemoveTables(ctx context.Context, run netns.Runner) error {
	var errs []error
	for _, t := range kubeProxyTables {
		errs = append(errs, deleteTable(ctx, run, t[0], t[1]))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := l.record(""); err != nil {
		return err
	}
	// Nothing is owned any more: leave no file behind either (the lock is still held, so no
	// other cluster is between opening and locking the file; one that opens it now fails on
	// its own non-blocking lock and can simply retry).
	_ = os.Remove(LockFile)
	_ = os.Remove(filepath.Dir(LockFile))
	return nil
}

// Release drops the lock.
func (l *ProxyLock) Release() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		_ = l.f.Close()
		l.f = nil
	}
}

// CleanupStale removes kube-proxy's tables when the cluster in stateDir owned them and no
// running cluster holds the lock (what a crashed `devcluster up` leaves).
func CleanupStale(ctx context.Context, stateDir string, run netns.Runner) error {
	owner := Owner()
	if owner == "" || !strings.HasPrefix(owner, stateDir+" pid ") {
		return nil
	}
	f, err := openLock()
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil //nolint:nilerr // a live cluster holds it: its tables are in use
	}
	l := &ProxyLock{f: f}
	defer l.Release()
	return l.RemoveTables(ctx, run)
}

// KubeProxyConfig is kube-proxy's configuration file.
func (c Config) KubeProxyConfig() string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: %q
hostnameOverride: %q
bindAddress: %q
healthzBindAddress: %q
metricsBindAddress: %q
clusterCIDR: %q
nodePortAddresses: [%q]
oomScoreAdj: 0
nftables:
  masqueradeAll: true
  syncPeriod: 30s
  minSyncPeriod: 0s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, c.Kubeconfig, c.NodeName, c.Gateway.String(),
		netipPort(c.Gateway, c.ProxyHealthPort), netipPort(netip.MustParseAddr("127.0.0.1"), c.ProxyMetricsPort),
		c.ClusterCIDR.Masked().String(), netip.PrefixFrom(c.Gateway, 32).String())
}

func netipPort(a netip.Addr, port int) string { return netip.AddrPortFrom(a, uint16(port)).String() }

// StartKubeProxy writes kube-proxy's configuration and starts it, waiting until it has
// programmed the rules once.
func StartKubeProxy(ctx context.Context, c Config) (*controlplane.Process, error) {
	if err := os.MkdirAll(filepath.Join(c.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(c.Dir, "kube-proxy.yaml")
	if err := os.WriteFile(cfgFile, []byte(c.KubeProxyConfig()), 0o644); err != nil {
		return nil, err
	}
	p := &controlplane.Process{Name: "kube-proxy", Path: filepath.Join(c.BinDir, "kube-proxy"),
		Args: []string{"--config=" + cfgFile}, LogFile: filepath.Join(c.Dir, "logs", "kube-proxy.log")}
	healthz := "http://" + netipPort(c.Gateway, c.ProxyHealthPort) + "/healthz"
	return p, startAndWait(ctx, p, func(ctx context.Context) error { return httpOK(ctx, healthz) })
}

// startAndWait starts p and polls healthy until it succeeds (2 minutes at most).
func startAndWait(ctx context.Context, p *controlplane.Process, healthy func(context.Context) error) error {
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
			p.Stop(5 * time.Second)
			return fmt.Errorf("%s not healthy: %w (last check: %w); see %s", p.Name, ctx.Err(), last, p.LogFile)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
