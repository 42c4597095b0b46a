// Package processnode is a virtual-kubelet provider that runs pods as host processes: each pod
// gets a network namespace on the node's bridge (package netns), each container runs under the
// podinit helper in its own PID and mount namespace with the pod's /etc/hosts, /etc/resolv.conf
// and volumes bind-mounted, and the project's bin/ first on PATH. Images are not pulled: host
// files stand in for them (Image).
//
// Run starts the provider as a Node registered with the apiserver (node.go); Provider is the
// pod lifecycle (provider.go, pod.go, container.go) and status.go computes pod status from
// container states as a kubelet does.
package processnode

import (
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Config is one process node's settings.
type Config struct {
	// NodeName is the Node object's name.
	NodeName string
	// StateDir holds pods/<uid>/ (volumes, logs, hosts files) and created-paths.
	StateDir string
	// BinDir is put first on every container's PATH and stands in for image paths
	// (/manager, /usr/local/bin/ray resolve to BinDir/manager, BinDir/ray).
	BinDir string
	// Helper is the executable that runs podinit.RunIfHelper first thing (normally this binary).
	Helper string
	// HostIP is the node's address: status.hostIP and the Node's InternalIP.
	HostIP string
	// ClusterDNS are the nameservers written to pods' resolv.conf (empty: the host's resolv.conf).
	ClusterDNS []string
	// ClusterDomain is the DNS suffix, normally cluster.local.
	ClusterDomain string
	// APIServerHost and APIServerPort are what in-cluster clients are pointed at through
	// KUBERNETES_SERVICE_HOST/PORT (empty: the kubernetes Service's ClusterIP).
	APIServerHost string
	APIServerPort int32
	// Allocatable is what the Node offers the scheduler (cpu, memory, pods).
	Allocatable corev1.ResourceList
	// Backoff is the restart backoff for crashed containers.
	Backoff Backoff
	// ReapInterval is how often pods deleted from the API while not running are cleaned up.
	ReapInterval time.Duration
	// Image is what a container gets in place of its image's files and env, unless Images has
	// a stand-in for that image.
	Image Image
	// Images are stand-ins for other images, by image name without registry, tag or digest
	// ("redis" for redis:7.4.0 and docker.io/library/redis:7.4.0); see ImageName.
	Images map[string]Image
}

// Image stands in for an image: besides the binaries BinDir provides, its files, env, and the
// host executables and directories that play the image's own.
type Image struct {
	// Files are bind-mounted read-only into the container, where the image has them.
	Files []ImageFile
	// Env is set in the container unless it sets the variable itself (an image's ENV).
	Env map[string]string
	// Binaries maps an executable of the image, by its path there, to the host executable that
	// runs in its place when the container's command (or an exec into it) names that path.
	// Bare names resolve on PATH, which has the host's /usr/bin.
	Binaries map[string]string
	// Package is the Debian package that installs Binaries' host executables; a container of
	// the image whose executables are missing fails to start, naming it.
	Package string
	// Volumes are the image's VOLUME directories: each container start gets fresh, writable
	// ones, as a container runtime gives anonymous volumes.
	Volumes []string
	// WorkingDir is the image's WORKDIR, for containers that set no workingDir.
	WorkingDir string
	// Cmd is the image's CMD, run when the container sets neither command nor args.
	Cmd []string
}

// ImageFile is a host file or directory standing in for a path of the image.
type ImageFile struct {
	Source, Target string
}

// Backoff doubles from Initial to Max; a container that ran for Reset starts again at Initial.
type Backoff struct {
	Initial, Max, Reset time.Duration
}

// DefaultBackoff is a kubelet's.
var DefaultBackoff = Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// Delay is the wait before restart number n (n >= 1).
func (b Backoff) Delay(n int32) time.Duration {
	d := b.Initial
	for i := int32(1); i < n && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	return d
}

// Validate reports missing settings.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return fmt.Errorf("node name is required")
	case c.StateDir == "" || !filepath.IsAbs(c.StateDir):
		return fmt.Errorf("state dir %q must be an absolute path", c.StateDir)
	case c.Helper == "":
		return fmt.Errorf("helper executable is required")
	}
	return nil
}
