package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	"github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
)

// Environment of worker processes.
const (
	EnvSocket   = "RAYK8S_CORE_SOCKET"
	EnvWorkerID = "RAYK8S_CORE_WORKER_ID"
	EnvSysPath  = "RAYK8S_CORE_SYS_PATH"
	EnvNodeID   = "RAYK8S_CORE_NODE_ID"
	// EnvTaskEnv is the runtime_env env_vars (JSON) a worker was started with.
	EnvTaskEnv = "RAYK8S_CORE_RUNTIME_ENV_VARS"
	// EnvPip is the runtime_env pip spec (JSON) a worker's venv was built
	// from; the tasks it submits inherit it.
	EnvPip = "RAYK8S_CORE_RUNTIME_ENV_PIP"
	// envOMPThreads is set as Ray sets it (see pool.start).
	envOMPThreads = "OMP_NUM_THREADS"
)

// envSetupErrorType is the Python exception of a runtime env that could
// not be built; the task fails with it rather than retrying.
const envSetupErrorType = "RuntimeEnvSetupError"

func isEnvSetupError(err error) bool {
	var re *corewire.RemoteError
	return errors.As(err, &re) && re.Type == envSetupErrorType
}

// pipOf is the pip spec work of j runs in: its own, else the job's.
func (j *job) pipOf(own *pipenv.Spec) *pipenv.Spec {
	if own != nil && !own.Empty() {
		return own
	}
	if j.pip != nil && !j.pip.Empty() {
		return j.pip
	}
	return nil
}

// registerTimeout bounds how long a new worker may take to connect.
const registerTimeout = 60 * time.Second

// maxIdlePerKey bounds the idle task workers kept per runtime environment.
const maxIdlePerKey = 8

// worker is one Python worker process of this node.
type worker struct {
	id        string
	key       string
	cmd       *exec.Cmd
	connected chan struct{}
	exited    chan struct{}
	once      sync.Once
	mu        sync.Mutex
	conn      *corewire.Conn
	// running is the leased task the worker runs now, if any.
	running *taskBody
	// pid and started are its process's, once it started (guarded by the
	// pool's mu: the state API reads them while cmd.Start may be running).
	pid     int
	started time.Time
	// owed (guarded by mu) are the objects the process announced (expect)
	// and has not put yet: returns of its direct actor calls that left it
	// while the calls ran. settled: the process ended and they failed.
	owed    map[string]struct{}
	settled bool
}

func (w *worker) setRunning(b *taskBody) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running = b
}

func (w *worker) current() *taskBody {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running
}

func (w *worker) exitedConn() { w.once.Do(func() { close(w.exited) }) }

func (w *worker) kill() {
	if w.cmd.Process != nil {
		// The worker leads its own process group: its children go too.
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// pool keeps the node's task workers, idle ones by runtime environment.
type pool struct {
	a       *Agent
	mu      sync.Mutex
	idle    map[string][]*worker
	pending map[string]*worker
	all     map[string]*worker
	closed  bool
}

func newPool(a *Agent) *pool {
	return &pool{a: a, idle: map[string][]*worker{}, pending: map[string]*worker{}, all: map[string]*worker{}}
}

// envKey identifies the workers of a job and a task's runtime_env env_vars.
// As in Ray, workers are never shared between jobs (a worker keeps the
// modules and globals its tasks loaded) nor between runtime environments.
func envKey(j *job, env map[string]string, pip *pipenv.Spec) string {
	if len(env) == 0 && pip == nil {
		return j.id
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(j.id)
	if pip != nil {
		b.WriteString("\x00pip=" + pip.Hash())
	}
	for _, k := range names {
		b.WriteString("\x00" + k + "=" + env[k])
	}
	return b.String()
}

// dropIdle stops the idle workers of a job that ended.
func (p *pool) dropIdle(j *job) {
	p.mu.Lock()
	var ws []*worker
	for key, idle := range p.idle {
		if key == j.id || strings.HasPrefix(key, j.id+"\x00") {
			ws = append(ws, idle...)
			delete(p.idle, key)
		}
	}
	p.mu.Unlock()
	for _, w := range ws {
		w.kill()
	}
}

// acquire returns an idle worker for j's environment or starts one.
func (p *pool) acquire(ctx context.Context, j *job, env map[string]string, pip *pipenv.Spec) (*worker, error) {
	if w := p.tryAcquire(j, env, pip); w != nil {
		return w, nil
	}
	pip = j.pipOf(pip)
	// Pooled workers run tasks of any size; a task's libraries get one
	// thread each unless it asks for more (Ray's default for tasks).
	return p.start(ctx, j, envKey(j, env, pip), env, pip, 1)
}

// tryAcquire returns an idle worker for j's environment, or nil.
func (p *pool) tryAcquire(j *job, env map[string]string, pip *pipenv.Spec) *worker {
	key := envKey(j, env, j.pipOf(pip))
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle[key]) > 0 {
		ws := p.idle[key]
		w := ws[len(ws)-1]
		p.idle[key] = ws[:len(ws)-1]
		select {
		case <-w.exited:
			continue
		default:
		}
		return w
	}
	return nil
}

// release puts a task worker back into the idle list.
func (p *pool) release(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.exited:
		return
	default:
	}
	if p.closed || len(p.idle[w.key]) >= maxIdlePerKey {
		go w.kill()
		return
	}
	p.idle[w.key] = append(p.idle[w.key], w)
}

// start runs a new worker process for j and waits until it connected.
// threads is the worker's OMP_NUM_THREADS unless the node's, the job's or
// the task's environment sets it: numerical libraries size their thread
// pools from it, and without it every worker would start one thread per
// core of the node (Ray sets it the same way).
func (p *pool) start(ctx context.Context, j *job, key string, taskEnv map[string]string, pip *pipenv.Spec, threads int) (*worker, error) {
	a := p.a
	w := &worker{id: newID(14), key: key, connected: make(chan struct{}), exited: make(chan struct{})}
	python := a.opts.Python
	env := os.Environ()
	if _, set := os.LookupEnv(envOMPThreads); !set {
		// Before the job's and the task's env_vars, which win.
		env = append(env, envOMPThreads+"="+strconv.Itoa(max(1, threads)))
	}
	if pip != nil {
		venv, err := p.pipEnv(ctx, pip)
		if err != nil {
			return nil, err
		}
		python = pipenv.Python(venv)
		env = append(pipenv.Activate(env, venv), EnvPip+"="+pip.JSON())
	}
	cmd := exec.Command(python, "-u", "-m", "ray._private.workerproc")
	pyPath := j.pyPath
	if cur := os.Getenv("PYTHONPATH"); cur != "" {
		pyPath = strings.Trim(pyPath+":"+cur, ":")
	}
	sysPath, _ := json.Marshal(j.sysPath)
	env = append(env,
		EnvSocket+"="+a.socket,
		EnvWorkerID+"="+w.id,
		EnvNodeID+"="+a.opts.NodeID,
		EnvSysPath+"="+string(sysPath),
		"PYTHONPATH="+pyPath,
		"PYTHONUNBUFFERED=1",
	)
	for k, v := range j.env {
		env = append(env, k+"="+v)
	}
	for k, v := range taskEnv {
		env = append(env, k+"="+v)
	}
	if len(taskEnv) > 0 {
		// Tasks this worker submits inherit its runtime_env, as in Ray.
		raw, _ := json.Marshal(taskEnv)
		env = append(env, EnvTaskEnv+"="+string(raw))
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if a.opts.LogsDir != "" {
		if f, err := os.Create(filepath.Join(a.opts.LogsDir, "worker-"+w.id+".out")); err == nil {
			cmd.Stdout, cmd.Stderr = f, f
			defer f.Close()
		}
	}
	w.cmd = cmd
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("the node is shutting down")
	}
	p.pending[w.id] = w
	p.all[w.id] = w
	p.mu.Unlock()
	if err := cmd.Start(); err != nil {
		p.forget(w)
		return nil, fmt.Errorf("starting a Python worker with %s: %w", python, err)
	}
	p.mu.Lock()
	w.pid, w.started = cmd.Process.Pid, time.Now()
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		w.exitedConn()
		p.forget(w)
		a.failOwed(w)
	}()
	t := time.NewTimer(registerTimeout)
	defer t.Stop()
	select {
	case <-w.connected:
		return w, nil
	case <-w.exited:
		return nil, fmt.Errorf("the Python worker exited before connecting; see %s", filepath.Join(a.opts.LogsDir, "worker-"+w.id+".out"))
	case <-t.C:
		w.kill()
		return nil, fmt.Errorf("the Python worker did not connect within %s", registerTimeout)
	case <-ctx.Done():
		w.kill()
		return nil, ctx.Err()
	}
}

// pipEnv builds (or finds cached) the venv of a runtime_env pip spec;
// pip's output goes to a log file and, on failure, into the error.
func (p *pool) pipEnv(ctx context.Context, spec *pipenv.Spec) (string, error) {
	a := p.a
	if a.opts.PipEnvs == nil {
		return "", errorf(envSetupErrorType, "runtime_env pip: this node has no pip env cache configured")
	}
	var out io.Writer
	if a.opts.LogsDir != "" {
		f, err := os.OpenFile(filepath.Join(a.opts.LogsDir, "runtime_env_setup-pip-"+spec.Hash()+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			defer f.Close()
			out = f
		}
	}
	venv, err := a.opts.PipEnvs.Ensure(ctx, *spec, out)
	if err != nil {
		return "", errorf(envSetupErrorType, "Failed to set up the runtime_env pip %v: %v", spec.Packages, err)
	}
	return venv, nil
}

// rows are the state API's rows of the pool's worker processes.
func (p *pool) rows(nodeID, ip string) []stateapi.Worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]stateapi.Worker, 0, len(p.all))
	for _, w := range p.all {
		if w.pid == 0 {
			continue
		}
		out = append(out, stateapi.Worker{WorkerID: w.id, IsAlive: true, WorkerType: "WORKER", NodeID: nodeID, IP: ip,
			PID: w.pid, StartTimeMs: w.started.UnixMilli()})
	}
	return out
}

func (p *pool) forget(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, w.id)
	delete(p.all, w.id)
}

// registered binds a worker's connection to its process.
func (p *pool) registered(id string, c *corewire.Conn) *worker {
	p.mu.Lock()
	w, ok := p.pending[id]
	delete(p.pending, id)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	w.mu.Lock()
	w.conn = c
	w.mu.Unlock()
	close(w.connected)
	return w
}

func (p *pool) shutdown() {
	p.mu.Lock()
	p.closed = true
	all := make([]*worker, 0, len(p.all))
	for _, w := range p.all {
		all = append(all, w)
	}
	p.mu.Unlock()
	for _, w := range all {
		w.kill()
	}
}

// running returns the workers running the task taskID.
func (p *pool) running(taskID string) []*worker {
	p.mu.Lock()
	all := make([]*worker, 0, len(p.all))
	for _, w := range p.all {
		all = append(all, w)
	}
	p.mu.Unlock()
	var out []*worker
	for _, w := range all {
		if b := w.current(); b != nil && b.TaskID == taskID {
			out = append(out, w)
		}
	}
	return out
}
