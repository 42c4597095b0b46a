package raylet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// LogTailBytes is how much of a log file is attached to exit events; Ray
// puts the last 20,000 characters of a failed job's log into its message.
const LogTailBytes = 20000

// SelfArgv0 in a spec's argv[0] stands for the node's own `ray` binary.
const SelfArgv0 = "@ray"

// DefaultStopGracePeriod matches Ray's RAY_JOB_STOP_WAIT_TIME_S.
const DefaultStopGracePeriod = 3 * time.Second

// ProcessManagerOptions configures a ProcessManager.
type ProcessManagerOptions struct {
	// LogsDir receives one log file per process (spec.log_file).
	LogsDir string
	// WorkingDirs resolves runtime_env working_dir values.
	WorkingDirs *WorkingDirResolver
	// PipEnvs builds the venv of a spec whose env carries pipenv.SpecEnv;
	// nil fails such a process.
	PipEnvs *pipenv.Manager
	// OnEvent receives every state change. It must not block for long.
	OnEvent func(*gcsv1.ProcessStatus)
	// Env is added to every process's environment (spec env wins).
	Env map[string]string
	// SelfExecutable replaces an argv[0] of SelfArgv0, so the head can
	// start `ray` subcommands on any node without knowing its path there.
	SelfExecutable string
	Clock          clock.PassiveClock
	Logger         logr.Logger
}

// ProcessManager runs the processes the head assigns to this node, each in
// its own session and process group, with stdout and stderr in a log file.
// It knows nothing about jobs, so Serve replicas reuse it.
type ProcessManager struct {
	opts ProcessManagerOptions

	mu           sync.Mutex
	procs        map[string]*process
	shuttingDown bool
	wg           sync.WaitGroup
}

type process struct {
	spec          *gcsv1.ProcessSpec
	cmd           *exec.Cmd
	status        *gcsv1.ProcessStatus
	stopRequested bool
	finished      bool
	done          chan struct{}
}

// NewProcessManager returns a ProcessManager.
func NewProcessManager(opts ProcessManagerOptions) *ProcessManager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.OnEvent == nil {
		opts.OnEvent = func(*gcsv1.ProcessStatus) {}
	}
	return &ProcessManager{opts: opts, procs: map[string]*process{}}
}

// LogsDir is the directory holding the process log files.
func (m *ProcessManager) LogsDir() string { return m.opts.LogsDir }

// Start launches spec in the background. A process id that is already known
// is ignored, so a redelivered assignment does not start a second copy.
func (m *ProcessManager) Start(ctx context.Context, spec *gcsv1.ProcessSpec) {
	m.mu.Lock()
	if _, ok := m.procs[spec.ProcessId]; ok {
		m.mu.Unlock()
		return
	}
	p := &process{spec: spec, done: make(chan struct{}), status: &gcsv1.ProcessStatus{Spec: spec}}
	m.procs[spec.ProcessId] = p
	if m.shuttingDown {
		// Nothing may start once Shutdown has begun: it would outlive it.
		m.mu.Unlock()
		m.finish(p, gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START, 0, "The node is shutting down")
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		m.run(ctx, p)
	}()
}

func (m *ProcessManager) run(ctx context.Context, p *process) {
	log := m.opts.Logger.WithValues("processID", p.spec.ProcessId)
	dir, err := m.opts.WorkingDirs.Resolve(ctx, p.spec.WorkingDir)
	if err != nil {
		m.finish(p, gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START, 0, fmt.Sprintf("Runtime env setup failed: %v", err))
		return
	}
	logPath := filepath.Join(m.opts.LogsDir, filepath.Base(p.spec.LogFile))
	if p.spec.LogFile == "" {
		logPath = filepath.Join(m.opts.LogsDir, "process-"+filepath.Base(p.spec.ProcessId)+".log")
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.finish(p, gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START, 0, fmt.Sprintf("Opening log file: %v", err))
		return
	}
	defer logFile.Close()

	var cmd *exec.Cmd
	switch {
	case p.spec.ShellCommand != "":
		cmd = exec.Command("/bin/sh", "-c", p.spec.ShellCommand)
	case len(p.spec.Argv) > 0:
		argv0 := p.spec.Argv[0]
		if argv0 == SelfArgv0 {
			argv0 = m.opts.SelfExecutable
			if argv0 == "" {
				argv0, _ = os.Executable()
			}
		}
		cmd = exec.Command(argv0, p.spec.Argv[1:]...)
	default:
		m.finish(p, gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START, 0, "Process spec has neither shell_command nor argv")
		return
	}
	cmd.Dir = dir
	env := p.spec.Env
	if len(m.opts.Env) > 0 {
		env = make(map[string]string, len(m.opts.Env)+len(p.spec.Env))
		for k, v := range m.opts.Env {
			env[k] = v
		}
		for k, v := range p.spec.Env {
			env[k] = v
		}
	}
	cmd.Env = mergeEnv(os.Environ(), env)
	if raw := env[pipenv.SpecEnv]; raw != "" {
		venv, err := m.pipEnv(ctx, raw, logFile)
		if err != nil {
			m.finish(p, gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START, 0, fmt.Sprintf("Runtime env setup failed: %v", err))
			return
		}
		cmd.Env = pipenv.Activate(cmd.Env, venv)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own makes the process a group leader, so stop can
	// signal everything it spawned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}

	m.mu.Lock()
	if p.stopRequested {
		m.mu.Unlock()
		p.status.Stopped = true
		m.finish(p, gcsv1.ProcessState_PROCESS_STATE_EXITED, 0, "Stopped before it started")
		return
	}
	log.Info("Starting process", "command", p.spec.ShellCommand, "argv", p.spec.Argv, "dir", dir, "log", logPath)
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		m.finish(p, gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START, 0, fmt.Sprintf("Starting process: %v", err))
		return
	}
	p.cmd = cmd
	p.status.State = gcsv1.ProcessState_PROCESS_STATE_RUNNING
	p.status.Pid = int32(cmd.Process.Pid)
	p.status.StartTimeMs = m.opts.Clock.Now().UnixMilli()
	running := cloneStatus(p.status)
	m.mu.Unlock()
	m.opts.OnEvent(running)

	waitErr := cmd.Wait()
	code := 0
	if waitErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(waitErr, &exitErr) {
			m.finish(p, gcsv1.ProcessState_PROCESS_STATE_EXITED, -1, fmt.Sprintf("Waiting for process: %v", waitErr))
			return
		}
		code = exitCode(exitErr.ProcessState)
	}
	log.Info("Process exited", "exitCode", code)
	m.finish(p, gcsv1.ProcessState_PROCESS_STATE_EXITED, code, "")
}

// pipEnv builds (or finds cached) the venv of a runtime_env pip spec,
// with pip's output in the process's log.
func (m *ProcessManager) pipEnv(ctx context.Context, raw string, log io.Writer) (string, error) {
	var spec pipenv.Spec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return "", fmt.Errorf("decoding %s: %w", pipenv.SpecEnv, err)
	}
	if m.opts.PipEnvs == nil {
		return "", errors.New("runtime_env pip: this node has no pip env cache configured")
	}
	return m.opts.PipEnvs.Ensure(ctx, spec, log)
}

// exitCode follows Python's Popen.returncode: -N for death by signal N.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return ps.ExitCode()
}

func (m *ProcessManager) finish(p *process, state gcsv1.ProcessState, code int, msg string) {
	m.mu.Lock()
	p.status.State = state
	p.status.ExitCode = int32(code)
	p.status.Message = msg
	p.status.Stopped = p.status.Stopped || p.stopRequested
	p.status.EndTimeMs = m.opts.Clock.Now().UnixMilli()
	p.finished = true
	status := cloneStatus(p.status)
	close(p.done)
	m.mu.Unlock()
	status.LogTail = m.logTail(p.spec)
	m.opts.OnEvent(status)
}

func (m *ProcessManager) logTail(spec *gcsv1.ProcessSpec) string {
	if spec.LogFile == "" {
		return ""
	}
	f, err := os.Open(filepath.Join(m.opts.LogsDir, filepath.Base(spec.LogFile)))
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-LogTailBytes, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return ""
	}
	return string(b)
}

// Stop sends SIGTERM to the process group, waits up to grace for the
// process to exit, then sends SIGKILL to whatever is left of the group.
// grace <= 0 uses the spec's grace period (default 3s).
func (m *ProcessManager) Stop(processID string, grace time.Duration) {
	m.mu.Lock()
	p, ok := m.procs[processID]
	if !ok || p.finished {
		m.mu.Unlock()
		return
	}
	p.stopRequested = true
	cmd := p.cmd
	m.mu.Unlock()
	if cmd == nil {
		// run() has not started it yet and will see stopRequested.
		return
	}
	if grace <= 0 {
		// Capped so that a huge grace period cannot overflow.
		grace = time.Duration(min(p.spec.StopGracePeriodMs, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
	}
	if grace <= 0 {
		grace = DefaultStopGracePeriod
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.terminate(p, cmd.Process.Pid, grace)
	}()
}

func (m *ProcessManager) terminate(p *process, pgid int, grace time.Duration) {
	m.opts.Logger.Info("Stopping process group", "processID", p.spec.ProcessId, "pgid", pgid, "grace", grace)
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
	// Children may outlive the leader (or ignore SIGTERM): the whole group goes.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Running returns the status of every process that is still running.
func (m *ProcessManager) Running() []*gcsv1.ProcessStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*gcsv1.ProcessStatus
	for _, p := range m.procs {
		if !p.finished && p.status.State == gcsv1.ProcessState_PROCESS_STATE_RUNNING {
			out = append(out, cloneStatus(p.status))
		}
	}
	slices.SortFunc(out, func(a, b *gcsv1.ProcessStatus) int {
		if a.Spec.ProcessId < b.Spec.ProcessId {
			return -1
		}
		return 1
	})
	return out
}

// Shutdown stops every process with the given grace period and waits for
// all of them, or for ctx.
func (m *ProcessManager) Shutdown(ctx context.Context, grace time.Duration) {
	m.mu.Lock()
	m.shuttingDown = true
	ids := make([]string, 0, len(m.procs))
	for id := range m.procs {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.Stop(id, grace)
	}
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func cloneStatus(s *gcsv1.ProcessStatus) *gcsv1.ProcessStatus {
	return proto.Clone(s).(*gcsv1.ProcessStatus)
}

// mergeEnv overlays extra on base (KEY=VALUE entries), extra winning.
func mergeEnv(base []string, extra map[string]string) []string {
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := cutEnv(kv)
		if _, override := extra[k]; override {
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+extra[k])
	}
	return out
}

func cutEnv(kv string) (string, string, bool) {
	return strings.Cut(kv, "=")
}
