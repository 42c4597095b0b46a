// Package netns gives each pod its own Linux network namespace, attached by a veth pair to a
// bridge that holds the cluster's pod range, and an address from the node's share of that range.
// It drives iproute2's `ip` through a Runner, so it needs root and the `ip` command
// (hack/install-deps.sh installs iproute2). Namespaces are named <Prefix><id> and live in
// /run/netns like any `ip netns add`; nothing is written elsewhere.
package netns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Config names the bridge and the ranges one process node uses.
type Config struct {
	// Bridge is the Linux bridge every pod attaches to, created if missing (at most 15 bytes).
	Bridge string
	// ClusterCIDR is the whole pod range; the bridge holds its first address, the pods' gateway.
	ClusterCIDR netip.Prefix
	// NodeCIDR is the part of ClusterCIDR this node allocates pod IPs from.
	NodeCIDR netip.Prefix
	// Prefix starts the name of every namespace and host-side veth this node creates, so
	// Cleanup can find them after a crash (at most 6 bytes).
	Prefix string
}

// Validate checks the names and ranges.
func (c Config) Validate() error {
	var errs []error
	if c.Bridge == "" || len(c.Bridge) > 15 {
		errs = append(errs, fmt.Errorf("bridge name %q must be 1 to 15 bytes", c.Bridge))
	}
	if c.Prefix == "" || len(c.Prefix) > 6 {
		errs = append(errs, fmt.Errorf("namespace prefix %q must be 1 to 6 bytes", c.Prefix))
	}
	if !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4() {
		errs = append(errs, fmt.Errorf("cluster CIDR %s must be an IPv4 prefix", c.ClusterCIDR))
	}
	if !c.NodeCIDR.IsValid() || !c.ClusterCIDR.Contains(c.NodeCIDR.Addr()) || c.NodeCIDR.Bits() < c.ClusterCIDR.Bits() {
		errs = append(errs, fmt.Errorf("node CIDR %s must lie inside cluster CIDR %s", c.NodeCIDR, c.ClusterCIDR))
	}
	return errors.Join(errs...)
}

// Gateway is the bridge's address: the pods' default route and the address host services
// (the apiserver, the node's probes) are reached on from inside a pod.
func (c Config) Gateway() netip.Addr { return c.ClusterCIDR.Masked().Addr().Next() }

// Attachment is one pod's network.
type Attachment struct {
	// Name is the namespace's name; Path is where it is pinned.
	Name, Path string
	IP         netip.Addr
	Gateway    netip.Addr
}

// Network creates and removes pod namespaces on one bridge.
type Network struct {
	cfg   Config
	run   Runner
	alloc *Allocator
}

// New returns a Network; nothing is created until EnsureBridge or Attach.
func New(cfg Config, run Runner) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	alloc, err := NewAllocator(cfg.NodeCIDR, cfg.Gateway())
	if err != nil {
		return nil, err
	}
	return &Network{cfg: cfg, run: run, alloc: alloc}, nil
}

// Config returns the configuration the network was built with.
func (n *Network) Config() Config { return n.cfg }

// EnsureBridge creates the bridge with the gateway address and brings it up; it is idempotent.
func (n *Network) EnsureBridge(ctx context.Context) error {
	if _, err := n.run.Run(ctx, "ip", "link", "show", "dev", n.cfg.Bridge); err != nil {
		if _, err := n.run.Run(ctx, "ip", "link", "add", "name", n.cfg.Bridge, "type", "bridge"); err != nil {
			return fmt.Errorf("creating bridge: %w", err)
		}
	}
	gw := netip.PrefixFrom(n.cfg.Gateway(), n.cfg.ClusterCIDR.Bits())
	if _, err := n.run.Run(ctx, "ip", "addr", "replace", gw.String(), "dev", n.cfg.Bridge); err != nil {
		return fmt.Errorf("addressing bridge: %w", err)
	}
	if _, err := n.run.Run(ctx, "ip", "link", "set", "dev", n.cfg.Bridge, "up"); err != nil {
		return fmt.Errorf("bringing bridge up: %w", err)
	}
	return nil
}

// DeleteBridge removes the bridge if it exists.
func (n *Network) DeleteBridge(ctx context.Context) error {
	if _, err := n.run.Run(ctx, "ip", "link", "show", "dev", n.cfg.Bridge); err != nil {
		return nil //nolint:nilerr // absent: nothing to delete
	}
	if _, err := n.run.Run(ctx, "ip", "link", "del", "dev", n.cfg.Bridge); err != nil {
		return fmt.Errorf("deleting bridge: %w", err)
	}
	return nil
}

// NamespaceName is the namespace Attach creates for id.
func (n *Network) NamespaceName(id string) string { return n.cfg.Prefix + shortHash(id, 12) }

func (n *Network) vethName(id string) string { return n.cfg.Prefix + "v" + shortHash(id, 8) }

// Attach creates id's namespace (replacing a stale one) with loopback and eth0 up, an address
// from the node range and a default route through the bridge.
func (n *Network) Attach(ctx context.Context, id string) (Attachment, error) {
	ip, err := n.alloc.Allocate(id)
	if err != nil {
		return Attachment{}, err
	}
	name, veth := n.NamespaceName(id), n.vethName(id)
	_ = n.deleteNamespace(ctx, name)
	_, _ = n.run.Run(ctx, "ip", "link", "del", "dev", veth)
	addr := netip.PrefixFrom(ip, n.cfg.ClusterCIDR.Bits()).String()
	steps := [][]string{
		{"netns", "add", name},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"link", "set", "dev", veth, "master", n.cfg.Bridge},
		{"link", "set", "dev", veth, "up"},
		{"-n", name, "link", "set", "dev", "lo", "up"},
		{"-n", name, "addr", "add", addr, "dev", "eth0"},
		{"-n", name, "link", "set", "dev", "eth0", "up"},
		{"-n", name, "route", "add", "default", "via", n.cfg.Gateway().String()},
	}
	for _, s := range steps {
		if _, err := n.run.Run(ctx, "ip", s...); err != nil {
			_ = n.Detach(context.WithoutCancel(ctx), id)
			return Attachment{}, fmt.Errorf("attaching pod network %s: %w", name, err)
		}
	}
	return Attachment{Name: name, Path: "/run/netns/" + name, IP: ip, Gateway: n.cfg.Gateway()}, nil
}

// Detach deletes id's namespace (and with it the veth pair) and frees its address.
func (n *Network) Detach(ctx context.Context, id string) error {
	defer n.alloc.Release(id)
	err := n.deleteNamespace(ctx, n.NamespaceName(id))
	_, _ = n.run.Run(ctx, "ip", "link", "del", "dev", n.vethName(id))
	return err
}

func (n *Network) deleteNamespace(ctx context.Context, name string) error {
	names, err := n.Namespaces(ctx)
	if err != nil {
		return err
	}
	for _, existing := range names {
		if existing == name {
			if _, err := n.run.Run(ctx, "ip", "netns", "del", name); err != nil {
				return fmt.Errorf("deleting namespace %s: %w", name, err)
			}
		}
	}
	return nil
}

// Namespaces lists the namespaces whose name starts with this node's prefix.
func (n *Network) Namespaces(ctx context.Context) ([]string, error) {
	out, err := n.run.Run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], n.cfg.Prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Cleanup deletes every namespace and host veth with this node's prefix: what a crashed node
// left behind. The bridge is left alone (DeleteBridge removes it).
func (n *Network) Cleanup(ctx context.Context) error {
	names, err := n.Namespaces(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if _, err := n.run.Run(ctx, "ip", "netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	out, err := n.run.Run(ctx, "ip", "-o", "link", "show", "type", "veth")
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			link, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if strings.HasPrefix(link, n.cfg.Prefix+"v") {
				// Deleting a namespace removes its veth pair asynchronously: a link that is
				// gone by now is no error.
				if _, err := n.run.Run(ctx, "ip", "link", "del", "dev", link); err != nil {
					if _, serr := n.run.Run(ctx, "ip", "link", "show", "dev", link); serr == nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}
