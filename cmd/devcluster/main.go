// Command devcluster runs a local Kubernetes cluster for development and e2e tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy (nftables) and CoreDNS
// (the kube-dns Service) built from Go modules into bin/, the rayk8s CRDs, and a process node that runs pods as host processes (images are ignored;
// commands resolve against bin/ first). It needs root.
//
//	devcluster up      start everything in the foreground; Ctrl-C (or `devcluster down`) stops it all
//	devcluster down    stop a running cluster and remove everything it left (processes, network
//	                   namespaces, bridge, nftables tables, mount points, state)
//	devcluster status  show what is running and where
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/rayk8s/rayk8s/internal/devcluster/cluster"
	"github.com/rayk8s/rayk8s/internal/devcluster/podinit"
)

const usage = `usage: devcluster up|down|status [flags]

  up      start etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, CoreDNS
          and a process node (plus bin/manager on the host unless --manager=none; ` + "`make run`" + `
          installs it with Helm as a pod instead) in the foreground; Ctrl-C stops everything
  down    stop a running cluster and remove everything it or a crashed run left behind
  status  show what is running and where

Run "devcluster <command> -h" for flags. up and down need root.`

func main() {
	// Containers of the process node run under this same binary (see package podinit).
	podinit.RunIfHelper()
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "devcluster: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "up":
		return up(args[1:], out)
	case "down":
		return down(args[1:], out)
	case "status":
		return status(args[1:], out)
	case "-h", "--help", "help":
		fmt.Fprintln(out, usage)
		return nil
	}
	fmt.Fprintln(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

type common struct {
	repo, stateDir string
}

func (c *common) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.repo, "repo", ".", "Repository root (holds bin/ and config/crd/bases).")
	fs.StringVar(&c.stateDir, "state-dir", "", "State directory (default <repo>/.cache/devcluster).")
}

func (c *common) options() (cluster.Options, string, error) {
	root, err := filepath.Abs(c.repo)
	if err != nil {
		return cluster.Options{}, "", fmt.Errorf("--repo: %w", err)
	}
	o := cluster.Defaults(root)
	if c.stateDir != "" {
		if o.StateDir, err = filepath.Abs(c.stateDir); err != nil {
			return o, "", err
		}
	}
	return o, root, nil
}

func up(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devcluster up", flag.ContinueOnError)
	var c common
	c.bind(fs)
	manager := fs.String("manager", "", "Manager binary to run on the host (default <repo>/bin/manager; \"none\" runs no manager).")
	kubeconfig := fs.String("kubeconfig", "", "Where to write the admin kubeconfig (default <state-dir>/kubeconfig).")
	cpu := fs.String("node-cpu", "", "CPU the process node offers (default: 4x the machine's cores; limits are not enforced).")
	mem := fs.String("node-memory", "", "Memory the process node offers (default: the machine's).")
	verbose := fs.Bool("v", false, "Log the process node's debug messages.")
	crds := fs.String("crds", "", "Directory of CRDs to install (default <repo>/config/crd/bases; \"none\" installs none).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, root, err := c.options()
	if err != nil {
		return err
	}
	if err := cluster.RequireRoot(); err != nil {
		return err
	}
	if *cpu != "" {
		if o.NodeCPU, err = resource.ParseQuantity(*cpu); err != nil {
			return fmt.Errorf("--node-cpu: %w", err)
		}
		if o.NodeCPU.Sign() <= 0 {
			return fmt.Errorf("--node-cpu %s: must be positive", *cpu)
		}
	}
	if *mem != "" {
		if o.NodeMemory, err = resource.ParseQuantity(*mem); err != nil {
			return fmt.Errorf("--node-memory: %w", err)
		}
		if o.NodeMemory.Sign() <= 0 {
			return fmt.Errorf("--node-memory %s: must be positive", *mem)
		}
	}
	o.Log = zap.New(zap.UseDevMode(*verbose), zap.WriteTo(os.Stderr))
	if *manager == "" {
		*manager = filepath.Join(root, "bin", "manager")
	}
	switch *crds {
	case "":
	case "none":
		o.CRDDirs = nil
	default:
		o.CRDDirs = []string{*crds}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(out, "Starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, CoreDNS and a process node …")
	cl, err := cluster.Up(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "Stopping pods, the control plane and the network …")
		cl.Stop()
		fmt.Fprintln(out, "Stopped; nothing left behind.")
	}()
	kc := cl.State.Kubeconfig
	if *kubeconfig == "" {
		*kubeconfig = filepath.Join(o.StateDir, "kubeconfig")
	}
	{
		b, err := os.ReadFile(kc)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(*kubeconfig), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(*kubeconfig, b, 0o600); err != nil {
			return err
		}
		kc = *kubeconfig
	}
	printState(out, cl.State)

	var mgr *exec.Cmd
	if *manager != "none" {
		mgr = exec.Command(*manager, "--enable-leader-election=false", "--log-stdout-encoder=console",
			"--metrics-addr=127.0.0.1:18080", "--health-probe-bind-address=127.0.0.1:18082")
		mgr.Env = append(os.Environ(), "KUBECONFIG="+kc)
		mgr.Stdout, mgr.Stderr = os.Stdout, os.Stderr
		mgr.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := mgr.Start(); err != nil {
			return fmt.Errorf("starting manager %s: %w", *manager, err)
		}
		fmt.Fprintf(out, "  manager                  pid %d, health on 127.0.0.1:18082, metrics on 127.0.0.1:18080\n", mgr.Process.Pid)
	}
	fmt.Fprintf(out, "\nReady. In another shell:\n\n  export KUBECONFIG=%s\n  bin/kubectl get nodes\n  bin/kubectl apply -f config/samples/\n\nPress Ctrl-C (or run `bin/devcluster down`) to stop everything.\n", kc)

	mgrDone := make(chan error, 1)
	if mgr != nil {
		go func() { mgrDone <- mgr.Wait() }()
	}
	var runErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nShutting down …")
	case err := <-mgrDone:
		mgr = nil
		runErr = fmt.Errorf("manager exited: %w", err)
	case err := <-cl.NodeDone():
		runErr = fmt.Errorf("process node stopped: %w", err)
	}
	if mgr != nil {
		_ = mgr.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case err = <-mgrDone:
		case <-time.After(30 * time.Second):
			_ = mgr.Process.Kill()
			err = <-mgrDone
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "devcluster: manager: %v\n", err)
		}
	}
	return runErr
}

func printState(out io.Writer, s cluster.State) {
	fmt.Fprintf(out, "\nLocal cluster (state in %s):\n", filepath.Dir(filepath.Dir(s.Kubeconfig)))
	fmt.Fprintf(out, "  kube-apiserver           %s\n", s.APIServer)
	for _, c := range s.Components {
		fmt.Fprintf(out, "  %-24s pid %d, log %s\n", c.Name, c.Pid, c.Log)
	}
	fmt.Fprintf(out, "  process node             %s (pid %d): pods in %s on bridge %s, namespaces %s*\n", s.Node, s.Pid, s.PodCIDR, s.Bridge, s.Prefix)
	if s.DNSIP != "" {
		fmt.Fprintf(out, "  services                 ClusterIPs in %s (kube-proxy, nftables); cluster DNS kube-system/kube-dns at %s\n", s.ServiceCIDR, s.DNSIP)
	}
	fmt.Fprintf(out, "  kubeconfig               %s\n", filepath.Join(filepath.Dir(filepath.Dir(s.Kubeconfig)), "kubeconfig"))
}

func down(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devcluster down", flag.ContinueOnError)
	var c common
	c.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, _, err := c.options()
	if err != nil {
		return err
	}
	if err := cluster.RequireRoot(); err != nil {
		return err
	}
	log := zap.New(zap.WriteTo(os.Stderr))
	if err := cluster.Down(o.StateDir, log); err != nil {
		return err
	}
	fmt.Fprintf(out, "Local cluster in %s is down; nothing left behind.\n", o.StateDir)
	return nil
}

func status(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("devcluster status", flag.ContinueOnError)
	var c common
	c.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, _, err := c.options()
	if err != nil {
		return err
	}
	s, err := cluster.ReadState(o.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "No local cluster in %s (start one with `make run` or `bin/devcluster up`).\n", o.StateDir)
		return nil
	}
	if err != nil {
		return err
	}
	running := processAlive(s.Pid)
	fmt.Fprintf(out, "devcluster up: pid %d, %s\n", s.Pid, map[bool]string{true: "running", false: "NOT RUNNING (run `devcluster down` to clean up)"}[running])
	printState(out, s)
	for _, comp := range s.Components {
		if !processAlive(comp.Pid) {
			fmt.Fprintf(out, "  ! %s (pid %d) is not running; see %s\n", comp.Name, comp.Pid, comp.Log)
		}
	}
	if !running || s.Kubeconfig == "" {
		return nil
	}
	return apiSummary(out, s.Kubeconfig)
}

func apiSummary(out io.Writer, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		fmt.Fprintf(out, "  apiserver /readyz: %v\n", err)
		return nil
	}
	fmt.Fprintf(out, "  apiserver /readyz: %s\n", string(body))
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, n := range nodes.Items {
			ready := "NotReady"
			for _, c := range n.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					ready = "Ready"
				}
			}
			fmt.Fprintf(out, "  node %s: %s\n", n.Name, ready)
		}
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err == nil {
		fmt.Fprintf(out, "  pods: %d\n", len(pods.Items))
	}
	return nil
}

func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}
