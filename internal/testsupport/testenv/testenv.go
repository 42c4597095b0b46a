// Package testenv starts a real kube-apiserver and etcd (envtest) with the rayk8s CRDs installed, for
// every controller and API test. The binaries are built from Go modules by `make tools` into bin/.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// Env is a running control plane.
type Env struct {
	// Config reaches the apiserver as an administrator.
	Config *rest.Config
	// Client is an uncached client whose scheme knows client-go's types and ray.io/v1.
	Client client.Client
	// Scheme is the scheme Client was built with.
	Scheme *runtime.Scheme
	// RepoRoot is the directory holding go.mod.
	RepoRoot string

	env *envtest.Environment
}

// NewScheme returns a scheme with client-go's built-in types and ray.io/v1.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(rayv1.AddToScheme(s))
	return s
}

// Start starts etcd and kube-apiserver from bin/ and installs config/crd/bases, and the CRDs in
// each of extraCRDPaths (files or directories, such as BatchSchedulerCRDs).
func Start(extraCRDPaths ...string) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets := filepath.Join(root, "bin")
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make tools` to build the Kubernetes test binaries", b, assets)
		}
	}
	scheme := NewScheme()
	te := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     append([]string{filepath.Join(root, "config", "crd", "bases")}, extraCRDPaths...),
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
		// envtest's defaults (10 s for the CRDs to be served, 20 s for the control plane) are
		// too short when `go test ./...` starts several API servers at once on 2 cores.
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: 2 * time.Minute},
	}
	cfg, err := te.Start()
	if err != nil {
		// A start that timed out (e.g. the CRDs never served) leaves etcd and kube-apiserver running.
		return nil, errors.Join(fmt.Errorf("starting envtest: %w", err), te.Stop())
	}
	// Controllers under test issue bursts of writes; the client-go default of 5 QPS would make
	// tests slow for no reason.
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("building client: %w", err), te.Stop())
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, RepoRoot: root, env: te}, nil
}

// BatchSchedulerCRDs is the directory of the test CRDs of the batch schedulers' PodGroups
// (Volcano's and scheduler-plugins'), written for envtest from the schedulers' API types.
func BatchSchedulerCRDs() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "internal", "testsupport", "testenv", "crds"), nil
}

// Stop stops the apiserver and etcd.
func (e *Env) Stop() error {
	if err := e.env.Stop(); err != nil {
		return fmt.Errorf("stopping envtest: %w", err)
	}
	return nil
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "hack", "tools")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod with hack/tools) not found above the working directory")
		}
		dir = parent
	}
}

// SharedDir returns the development workspace's ../shared directory, or "" when it is absent
// (users who clone the repository do not have it).
func SharedDir() string {
	root, err := RepoRoot()
	if err != nil {
		return ""
	}
	dir := filepath.Join(filepath.Dir(root), "shared")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}
