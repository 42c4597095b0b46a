package netns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

type fakeRunner struct {
	calls []string
	fail  map[string]bool
	out   map[string]string
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	c := name + " " + strings.Join(args, " ")
	f.calls = append(f.calls, c)
	if f.fail[c] {
		return nil, fmt.Errorf("failed: %s", c)
	}
	return []byte(f.out[c]), nil
}

func testConfig() Config {
	return Config{Bridge: "rkt0", Prefix: "rkt", ClusterCIDR: netip.MustParsePrefix("10.250.0.0/16"),
		NodeCIDR: netip.MustParsePrefix("10.250.0.0/24")}
}

func TestAllocatorSkipsReservedAndWraps(t *testing.T) {
	a, err := NewAllocator(netip.MustParsePrefix("10.0.0.0/29"), netip.MustParseAddr("10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range 5 {
		ip, err := a.Allocate(fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if want := "10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6"; strings.Join(got, " ") != want {
		t.Fatalf("allocated %v, want %s", got, want)
	}
	if _, err := a.Allocate("x"); err == nil {
		t.Fatal("allocating from a full range succeeded")
	}
	if ip, _ := a.Allocate("2"); ip.String() != "10.0.0.4" {
		t.Fatalf("re-allocating for an owner returned %s, want its address", ip)
	}
	a.Release("3")
	if ip, err := a.Allocate("y"); err != nil || ip.String() != "10.0.0.5" {
		t.Fatalf("after release got %v %v, want 10.0.0.5", ip, err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := testConfig()
	c.Bridge = "a-very-long-bridge-name"
	c.NodeCIDR = netip.MustParsePrefix("10.1.0.0/24")
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "bridge name") || !strings.Contains(err.Error(), "node CIDR") {
		t.Fatalf("Validate() = %v, want bridge and node CIDR errors", err)
	}
}

func TestAttachCommands(t *testing.T) {
	f := &fakeRunner{}
	n, err := New(testConfig(), f)
	if err != nil {
		t.Fatal(err)
	}
	att, err := n.Attach(context.Background(), "pod-uid")
	if err != nil {
		t.Fatal(err)
	}
	if att.IP.String() != "10.250.0.2" || att.Gateway.String() != "10.250.0.1" || att.Path != "/run/netns/"+att.Name {
		t.Fatalf("attachment %+v", att)
	}
	joined := strings.Join(f.calls, "\n")
	for _, want := range []string{
		"ip netns add " + att.Name,
		"master rkt0",
		"ip -n " + att.Name + " addr add 10.250.0.2/16 dev eth0",
		"ip -n " + att.Name + " route add default via 10.250.0.1",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("commands lack %q:\n%s", want, joined)
		}
	}
}

func TestAttachFailureRollsBack(t *testing.T) {
	f := &fakeRunner{fail: map[string]bool{}}
	n, _ := New(testConfig(), f)
	name := n.NamespaceName("p")
	f.fail["ip -n "+name+" addr add 10.250.0.2/16 dev eth0"] = true
	f.out = map[string]string{"ip netns list": name + " (id: 3)\nother\n"}
	if _, err := n.Attach(context.Background(), "p"); err == nil {
		t.Fatal("Attach succeeded")
	}
	if last := f.calls[len(f.calls)-2]; last != "ip netns del "+name {
		t.Errorf("namespace not deleted after a failed attach; calls:\n%s", strings.Join(f.calls, "\n"))
	}
	// The address is free again.
	delete(f.fail, "ip -n "+name+" addr add 10.250.0.2/16 dev eth0")
	if att, err := n.Attach(context.Background(), "q"); err != nil || att.IP.String() != "10.250.0.3" {
		t.Fatalf("next attach: %+v %v", att, err)
	}
}

// TestRealNamespace creates a bridge and two pod namespaces and pings one from the other.
func TestRealNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a bridge and network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip (hack/install-deps.sh installs it)")
	}
	ctx := context.Background()
	n, err := New(testConfig(), ExecRunner{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Cleanup(ctx)
		_ = n.DeleteBridge(ctx)
	})
	if err := n.EnsureBridge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.EnsureBridge(ctx); err != nil {
		t.Fatalf("EnsureBridge is not idempotent: %v", err)
	}
	a, err := n.Attach(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Attach(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", a.Name, "ping", "-c1", "-W2", b.IP.String()).CombinedOutput()
	if err != nil {
		if _, lerr := exec.LookPath("ping"); lerr != nil {
			t.Logf("ping not installed; skipped the reachability check")
		} else {
			t.Fatalf("pod a cannot reach pod b: %v\n%s", err, out)
		}
	}
	if err := n.Detach(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	names, _ := n.Namespaces(ctx)
	if len(names) != 1 || names[0] != b.Name {
		t.Fatalf("namespaces after detach: %v, want [%s]", names, b.Name)
	}
	if err := n.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if names, _ := n.Namespaces(ctx); len(names) != 0 {
		t.Fatalf("namespaces after cleanup: %v", names)
	}
}
