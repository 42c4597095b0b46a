package podinit

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// init pins the main goroutine to the main thread in helper processes. setup joins the pod's
// network namespace with setns, which changes only the calling thread; `nsenter --target <pid>`
// (exec probes, kubectl exec) reads /proc/<pid>/ns/net, which is the main thread's. Locking in
// init is the one way Go guarantees main runs on the main thread; without it the helper could
// join the namespace on another thread and exec would land in the host's network.
func init() {
	if _, ok := os.LookupEnv(EnvVar); ok {
		runtime.LockOSThread()
	}
}

// RunIfHelper runs the helper and exits when the process was started by Command; otherwise it
// returns at once. Call it first thing in main (and in TestMain of tests that start pods).
func RunIfHelper() {
	raw, ok := os.LookupEnv(EnvVar)
	if !ok {
		return
	}
	os.Exit(runHelper(raw))
}

func runHelper(raw string) int {
	var spec Spec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fail("decoding spec: %v", err)
	}
	// Namespace changes are per thread; the command is forked from this same thread.
	runtime.LockOSThread()
	if err := setup(spec); err != nil {
		return fail("%v", err)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	cmd := &exec.Cmd{Path: spec.Path, Args: spec.Args, Env: spec.Env, Dir: spec.Dir,
		Stdout: os.Stdout, Stderr: os.Stderr}
	if err := cmd.Start(); err != nil {
		return fail("starting %s: %v", spec.Path, err)
	}
	child := cmd.Process.Pid
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			_ = syscall.Kill(child, sig.(syscall.Signal))
			continue
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == child {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return 1
}

func setup(spec Spec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("setting hostname: %w", err)
		}
	}
	if spec.NetNS != "" {
		fd, err := unix.Open(spec.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening network namespace: %w", err)
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		_ = unix.Close(fd)
		if err != nil {
			return fmt.Errorf("joining network namespace %s: %w", spec.NetNS, err)
		}
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	for _, m := range spec.Mounts {
		if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s on %s: %w", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("making %s read-only: %w", m.Target, err)
			}
		}
	}
	return nil
}

// fail reports a setup error on the container's stderr (so `kubectl logs` shows it) and
// returns the status a runtime uses for a command that could not run.
func fail(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "process node: "+format+"\n", args...)
	return 127
}
