// Package podinit is the small init process every container of the process node runs under.
//
// The node starts it (by re-executing its own binary with the spec in an environment variable)
// as pid 1 of a fresh PID and mount namespace. It then
//
//   - sets the pod's hostname in its own UTS namespace,
//   - makes every mount private, so nothing it mounts is seen outside the container,
//   - joins the pod's network namespace,
//   - mounts a fresh /proc, and bind-mounts the pod's /etc/hosts, /etc/resolv.conf and volumes,
//   - starts the container's command, relays SIGTERM and friends to it and reaps orphans,
//   - exits with the command's status (128+signal when a signal ended it).
//
// When it exits the kernel kills whatever is left in the container's PID namespace, so a
// container never leaves processes behind. Exec probes and `kubectl exec` enter the same
// namespaces with nsenter (EnterCommand).
package podinit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// EnvVar carries the JSON Spec to the helper process.
const EnvVar = "RAYK8S_PODINIT_SPEC"

// Mount is a bind mount done inside the container's mount namespace. The target must exist.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Spec is what the helper runs.
type Spec struct {
	// NetNS is the path of the network namespace to join ("" keeps the host's).
	NetNS string `json:"netns,omitempty"`
	// Mounts are applied in order.
	Mounts []Mount `json:"mounts,omitempty"`
	// Path is the resolved executable; Args[0] is what the container asked for.
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`
	// Hostname is set in the container's own UTS namespace ("" keeps the host's).
	Hostname string `json:"hostname,omitempty"`
}

// Command returns the command that runs spec under the helper: self (normally os.Executable())
// must call RunIfHelper first thing in main. Output goes to stdout and stderr.
func Command(self string, spec Spec, stdout, stderr io.Writer) (*exec.Cmd, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = []string{EnvVar + "=" + string(raw)}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS,
		Setpgid:    true,
		// If the node dies, so do its containers (and with pid 1, everything they started).
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd, nil
}

// EnterCommand returns a command that runs argv inside the namespaces (mount, network, PID) of
// the container whose helper has process id pid, in that container's working directory.
func EnterCommand(pid int, argv, env []string) *exec.Cmd {
	args := append([]string{"--target", strconv.Itoa(pid), "--mount", "--net", "--pid", "--wd", "--"}, argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = env
	return cmd
}

// Resolve finds the executable for a container's argv[0], the way an image's entrypoint would
// resolve but with binDir standing in for the image: an absolute path whose base name exists in
// binDir (like /manager or /usr/local/bin/ray) becomes that file, a bare name is looked up on
// the container's PATH (binDir first), and anything else is used as is.
func Resolve(argv0, binDir, pathEnv string) (string, error) {
	if argv0 == "" {
		return "", fmt.Errorf("container has no command: the process node cannot use an image's entrypoint, set command")
	}
	if strings.Contains(argv0, "/") {
		if filepath.IsAbs(argv0) && binDir != "" {
			if p := filepath.Join(binDir, filepath.Base(argv0)); isExecutable(p) {
				return p, nil
			}
		}
		return argv0, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, argv0); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %s", argv0, pathEnv)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
