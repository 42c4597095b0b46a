package processnode

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rayk8s/rayk8s/internal/devcluster/podenv"
	"github.com/rayk8s/rayk8s/internal/devcluster/podinit"
	"github.com/rayk8s/rayk8s/internal/devcluster/podlogs"
	"github.com/rayk8s/rayk8s/internal/devcluster/probe"
)

// container runs one container of a pod, restarting it as its policy says. Its mutable fields
// are guarded by the pod's mutex.
type container struct {
	pod  *podRunner
	spec corev1.Container
	// sidecar marks an init container with restartPolicy Always.
	sidecar bool

	status corev1.ContainerStatus
	proc   *os.Process
	exited chan struct{} // closed when proc exits
	env    []string
	// killReason, when set, names why the node killed the current process (liveness, startup).
	killReason string
}

func newContainer(r *podRunner, spec corev1.Container, sidecar bool) *container {
	return &container{pod: r, spec: spec, sidecar: sidecar, status: corev1.ContainerStatus{
		Name:  spec.Name,
		Image: spec.Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
	}}
}

func (c *container) dir() string { return filepath.Join(c.pod.dir, "containers", c.spec.Name) }

func (c *container) logPath(restart int32) string {
	return filepath.Join(c.dir(), strconv.Itoa(int(restart))+".log")
}

// loop runs the container until it stops for good under policy or ctx ends, and returns the
// last exit code.
func (c *container) loop(ctx context.Context, policy corev1.RestartPolicy) int32 {
	p := c.pod.p
	var backoffN int32
	for {
		code, ranFor := c.runOnce(ctx)
		if ctx.Err() != nil {
			return code
		}
		restart := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && code != 0)
		if !restart {
			return code
		}
		if ranFor >= p.cfg.Backoff.Reset {
			backoffN = 0
		}
		backoffN++
		delay := p.cfg.Backoff.Delay(backoffN)
		c.pod.update(func() {
			c.status.LastTerminationState = c.status.State
			c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, c.spec.Name, c.pod.name()),
			}}
			c.status.RestartCount++
		})
		select {
		case <-ctx.Done():
			return code
		case <-p.clock.After(delay):
		}
	}
}

// runOnce starts the process, probes it while it runs and records how it ended.
func (c *container) runOnce(ctx context.Context) (int32, time.Duration) {
	p := c.pod.p
	cmd, err := c.prepare()
	if err != nil {
		return c.finish(128, "StartError", err.Error(), time.Time{}), 0
	}
	logFile, err := podlogs.Create(c.logPath(c.restartCount()), p.clock)
	if err != nil {
		return c.finish(128, "StartError", err.Error(), time.Time{}), 0
	}
	stdout, stderr := logFile.Stream("stdout"), logFile.Stream("stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	started := p.clock.Now()
	exited := make(chan struct{})
	var startErr error
	c.pod.update(func() {
		if c.pod.terminating {
			startErr = errors.New("pod is terminating")
			return
		}
		if startErr = cmd.Start(); startErr != nil {
			return
		}
		c.proc, c.exited, c.killReason = cmd.Process, exited, ""
		c.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}
		c.status.ContainerID = fmt.Sprintf("process://%d", cmd.Process.Pid)
		c.status.ImageID = c.spec.Image
		c.status.Started = ptr(c.spec.StartupProbe == nil)
		c.status.Ready = c.spec.ReadinessProbe == nil && c.spec.StartupProbe == nil && !c.isInit()
	})
	if startErr != nil {
		_ = stdout.Close()
		_ = stderr.Close()
		_ = logFile.Close()
		return c.finish(128, "StartError", startErr.Error(), time.Time{}), 0
	}
	probeCtx, stopProbes := context.WithCancel(ctx)
	if !c.isInit() {
		go c.probe(probeCtx)
	}
	err = cmd.Wait()
	close(exited)
	stopProbes()
	_ = stdout.Close()
	_ = stderr.Close()
	_ = logFile.Close()
	code := exitCode(cmd.ProcessState, err)
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	msg := ""
	c.pod.update(func() {
		if c.killReason != "" {
			msg = c.killReason
		}
	})
	return c.finish(code, reason, msg, started), p.clock.Since(started)
}

func exitCode(ps *os.ProcessState, err error) int32 {
	if ps == nil {
		if err != nil {
			return 128
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(ps.ExitCode())
}

func (c *container) finish(code int32, reason, msg string, started time.Time) int32 {
	now := metav1.NewTime(c.pod.p.clock.Now())
	c.pod.update(func() {
		c.proc, c.exited = nil, nil
		c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: msg, StartedAt: metav1.NewTime(started), FinishedAt: now,
			ContainerID: c.status.ContainerID,
		}}
		c.status.Ready = false
		c.status.Started = ptr(false)
	})
	return code
}

func (c *container) isInit() bool {
	for _, ic := range c.pod.initCtrs {
		if ic == c && !c.sidecar {
			return true
		}
	}
	return false
}

// restartCount0 is restartCount for callers holding the pod's lock.
func (c *container) restartCount0() int32 { return c.status.RestartCount }

func (c *container) restartCount() int32 {
	var n int32
	c.pod.update(func() { n = c.status.RestartCount })
	return n
}

// prepare builds the helper command: environment, executable, mounts.
func (c *container) prepare() (*exec.Cmd, error) {
	r, p := c.pod, c.pod.p
	var pod *corev1.Pod
	var rt podenv.Runtime
	var volPaths map[string]string
	var netPath string
	r.update(func() {
		pod = r.pod.DeepCopy()
		rt = r.runtime()
		volPaths = r.volPaths
		netPath = r.netPath
	})
	if err := os.MkdirAll(c.dir(), 0o755); err != nil {
		return nil, err
	}
	// Keep the current and the previous log only.
	_ = os.Remove(c.logPath(c.restartCount() - 2))
	env, err := podenv.Build(p.envSources(), pod, &c.spec, rt)
	if err != nil {
		return nil, fmt.Errorf("building environment: %w", err)
	}
	envMap := podenv.EnvMap(env)
	tmp := filepath.Join(c.dir(), "tmp")
	if err := os.MkdirAll(tmp, 0o1777); err != nil {
		return nil, err
	}
	path := p.cfg.BinDir + ":" + "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if v, ok := envMap["PATH"]; ok {
		path = p.cfg.BinDir + ":" + v
	}
	defaults := map[string]string{"PATH": path, "HOSTNAME": hostname(pod), "HOME": "/root", "TMPDIR": tmp}
	for k, v := range defaults {
		if _, ok := envMap[k]; !ok || k == "PATH" {
			envMap[k] = v
		}
	}
	img := p.cfg.imageFor(c.spec.Image)
	if err := img.check(c.spec.Image); err != nil {
		return nil, err
	}
	for k, v := range img.Env {
		if _, ok := envMap[k]; !ok {
			envMap[k] = v
		}
	}
	env = env[:0]
	for k, v := range envMap {
		env = append(env, k+"="+v)
	}
	argv := make([]string, 0, len(c.spec.Command)+len(c.spec.Args))
	for _, a := range append(append([]string{}, c.spec.Command...), c.spec.Args...) {
		argv = append(argv, podenv.Expand(a, envMap))
	}
	if len(argv) == 0 {
		argv = append(argv, img.Cmd...)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("container %s has no command: the process node has no entrypoint of image %q, so command (or args) must name what to run", c.spec.Name, c.spec.Image)
	}
	exe := img.mapArgv0(argv[:1])[0]
	if exe == argv[0] {
		if exe, err = podinit.Resolve(argv[0], p.cfg.BinDir, path); err != nil {
			return nil, err
		}
	}
	mounts := []podinit.Mount{
		{Source: filepath.Join(r.dir, "hosts"), Target: "/etc/hosts"},
		{Source: filepath.Join(r.dir, "resolv.conf"), Target: "/etc/resolv.conf"},
	}
	// The image's files and volumes first: volumes mount over them, as over an image's
	// directories.
	for _, f := range img.Files {
		fi, err := os.Stat(f.Source)
		if err != nil {
			return nil, fmt.Errorf("image file %s: %w", f.Target, err)
		}
		if err := p.hostPaths.Ensure(f.Target, fi.IsDir()); err != nil {
			return nil, fmt.Errorf("image file %s: creating the mount point: %w", f.Target, err)
		}
		mounts = append(mounts, podinit.Mount{Source: f.Source, Target: f.Target, ReadOnly: true})
	}
	imageVolumes, err := c.imageVolumes(img)
	if err != nil {
		return nil, err
	}
	mounts = append(mounts, imageVolumes...)
	for _, vm := range c.spec.VolumeMounts {
		src, ok := volPaths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %s: no volume %q", vm.MountPath, vm.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = podenv.Expand(vm.SubPathExpr, envMap)
		}
		if sub != "" {
			src = filepath.Join(src, filepath.Clean("/"+sub))
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, err
				}
			}
		}
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("volume mount %s: %w", vm.MountPath, err)
		}
		if err := p.hostPaths.Ensure(vm.MountPath, fi.IsDir()); err != nil {
			return nil, fmt.Errorf("volume mount %s: creating the mount point: %w", vm.MountPath, err)
		}
		mounts = append(mounts, podinit.Mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	dir := cmp.Or(c.spec.WorkingDir, img.WorkingDir)
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			dir = ""
		}
	}
	if dir == "" {
		dir = tmp
	}
	c.pod.update(func() { c.env = env })
	return podinit.Command(p.cfg.Helper, podinit.Spec{
		NetNS: netPath, Mounts: mounts, Path: exe, Args: argv, Env: env, Dir: dir, Hostname: hostname(pod),
	}, nil, nil)
}

// stop ends the current process: preStop hook, SIGTERM, and SIGKILL when grace runs out.
func (c *container) stop(grace time.Duration, reason string) {
	p := c.pod.p
	var proc *os.Process
	var exited chan struct{}
	c.pod.update(func() {
		proc, exited = c.proc, c.exited
		if reason != "" {
			c.killReason = reason
		}
	})
	if proc == nil {
		return
	}
	deadline := p.clock.Now().Add(grace)
	if h := c.spec.Lifecycle; h != nil && h.PreStop != nil && h.PreStop.Exec != nil && grace > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		_, _, _ = c.exec(ctx, h.PreStop.Exec.Command)
		cancel()
	}
	_ = proc.Signal(syscall.SIGTERM)
	left := deadline.Sub(p.clock.Now())
	if left < 0 {
		left = 0
	}
	select {
	case <-exited:
	case <-p.clock.After(left):
		_ = proc.Kill()
		<-exited
	}
}

// exec runs argv inside the running container and returns its combined output and exit code.
func (c *container) exec(ctx context.Context, argv []string) ([]byte, int, error) {
	cmd, err := c.enter(argv)
	if err != nil {
		return nil, -1, err
	}
	out, err := runContext(ctx, cmd)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode(), nil
	}
	if err != nil {
		return out, -1, err
	}
	return out, 0, nil
}

func (c *container) enter(argv []string) (*exec.Cmd, error) {
	var pid int
	var env []string
	c.pod.update(func() {
		if c.proc != nil {
			pid = c.proc.Pid
		}
		env = c.env
	})
	if pid == 0 {
		return nil, fmt.Errorf("container %s is not running", c.spec.Name)
	}
	return podinit.EnterCommand(pid, c.pod.p.cfg.imageFor(c.spec.Image).mapArgv0(argv), env), nil
}

// imageVolumes makes the image's volumes for this start of the container, fresh and empty, and
// removes the previous start's.
func (c *container) imageVolumes(img Image) ([]podinit.Mount, error) {
	if len(img.Volumes) == 0 {
		return nil, nil
	}
	n := c.restartCount()
	base := filepath.Join(c.dir(), "image-volumes")
	_ = os.RemoveAll(filepath.Join(base, strconv.Itoa(int(n)-1)))
	var mounts []podinit.Mount
	for i, v := range img.Volumes {
		src := filepath.Join(base, strconv.Itoa(int(n)), strconv.Itoa(i))
		_ = os.RemoveAll(src)
		if err := os.MkdirAll(src, 0o777); err != nil {
			return nil, fmt.Errorf("image volume %s: %w", v, err)
		}
		if err := c.pod.p.hostPaths.Ensure(v, true); err != nil {
			return nil, fmt.Errorf("image volume %s: creating the mount point: %w", v, err)
		}
		mounts = append(mounts, podinit.Mount{Source: src, Target: v})
	}
	return mounts, nil
}

func runContext(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var buf limitedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.b, err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done //nolint:errcheck // killed on purpose; its exit status says nothing
		return buf.b, fmt.Errorf("command timed out: %w", ctx.Err())
	}
}

type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 10*1024 - len(l.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.b = append(l.b, p[:room]...)
	}
	return len(p), nil
}

// probe runs the startup, liveness and readiness probes until ctx ends.
func (c *container) probe(ctx context.Context) {
	target := probe.Target{PodIP: c.pod.podIP(), Container: &c.spec, Exec: c.exec}
	started := make(chan struct{})
	if sp := c.spec.StartupProbe; sp != nil {
		go c.probeLoop(ctx, sp, target, func(ok bool, msg string) bool {
			if ok {
				c.pod.update(func() {
					c.status.Started = ptr(true)
					if c.spec.ReadinessProbe == nil {
						c.status.Ready = true
					}
				})
				close(started)
				return false
			}
			if msg != "" {
				go c.stop(c.pod.grace(sp), "Startup probe failed: "+msg)
				return false
			}
			return true
		})
	} else {
		close(started)
	}
	select {
	case <-ctx.Done():
		return
	case <-started:
	}
	if lp := c.spec.LivenessProbe; lp != nil {
		go c.probeLoop(ctx, lp, target, func(ok bool, msg string) bool {
			if !ok && msg != "" {
				go c.stop(c.pod.grace(lp), "Liveness probe failed: "+msg)
				return false
			}
			return true
		})
	}
	if rp := c.spec.ReadinessProbe; rp != nil {
		c.probeLoop(ctx, rp, target, func(ok bool, msg string) bool {
			c.pod.update(func() {
				if msg != "" || ok {
					c.status.Ready = ok
				}
			})
			return true
		})
	}
}

// probeLoop runs pr every period and calls report with (true, "") after successThreshold
// successes and (false, message) after failureThreshold failures (other results report
// (false, "")). It stops when ctx ends or report returns false.
func (c *container) probeLoop(ctx context.Context, pr *corev1.Probe, t probe.Target, report func(ok bool, msg string) bool) {
	clk := c.pod.p.clock
	period := seconds(pr.PeriodSeconds, 10)
	success, failure := int(orDefault(pr.SuccessThreshold, 1)), int(orDefault(pr.FailureThreshold, 3))
	if pr.InitialDelaySeconds > 0 {
		select {
		case <-ctx.Done():
			return
		case <-clk.After(time.Duration(pr.InitialDelaySeconds) * time.Second):
		}
	}
	var okRun, failRun int
	for {
		ok, msg := c.pod.p.prober.Run(ctx, pr, t)
		if !ok && msg == "" {
			msg = "probe failed"
		}
		if ctx.Err() != nil {
			return
		}
		if ok {
			okRun, failRun = okRun+1, 0
		} else {
			okRun, failRun = 0, failRun+1
		}
		cont := true
		switch {
		case ok && okRun >= success:
			cont = report(true, "")
		case !ok && failRun >= failure:
			cont = report(false, msg)
		}
		if !cont {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-clk.After(period):
		}
	}
}

func seconds(v int32, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

func orDefault(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}

func ptr[T any](v T) *T { return &v }
