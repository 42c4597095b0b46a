// Package jobs is the head's job supervisor and the Jobs REST handlers of
// the dashboard. A submitted job's entrypoint runs as a /bin/sh -c process
// on a node picked by its entrypoint resources (the head by default),
// placed through the control service and run by that node's agent. Job
// records live in the control service's KV (namespace "job"), as in Ray, so
// a persistent store keeps them across head restarts.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

const (
	// ProcessKind is the ProcessSpec kind of job entrypoints.
	ProcessKind = "job"
	kvNamespace = "job"
	kvKeyPrefix = "_ray_internal_job_info_"

	// DefaultStartTimeout matches RAY_JOB_START_TIMEOUT_SECONDS.
	DefaultStartTimeout = 900 * time.Second
	// DefaultLogPollInterval is how often log tails look for new output.
	DefaultLogPollInterval = 250 * time.Millisecond
)

// Default messages per status, as Ray words them.
const (
	msgPending         = "Job has not started yet."
	msgPendingResource = msgPending + " It may be waiting for resources (CPUs, GPUs, memory, custom resources) to become available."
	msgRunning         = "Job is currently running."
	msgStopped         = "Job was intentionally stopped."
	msgSucceeded       = "Job finished successfully."
)

// ErrNotFound is returned for an unknown job id.
var ErrNotFound = errors.New("job not found")

// DuplicateError is a submission whose id already exists.
type DuplicateError struct{ ID string }

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("Job with submission_id %s already exists. %s.", e.ID, dashboard.DuplicateSubmissionIDMessage)
}

// NonTerminalError is a delete of a job that has not finished.
type NonTerminalError struct {
	ID     string
	Status dashboard.JobStatus
}

func (e *NonTerminalError) Error() string {
	return fmt.Sprintf("Attempted to delete job '%s', but it is in a non-terminal state %s.", e.ID, e.Status)
}

// Cluster is what the manager needs from the control service; *gcs.Server
// implements it in the head process.
type Cluster interface {
	PlaceProcess(gcs.Placement) (*gcsv1.Node, error)
	StopProcess(nodeID, processID string, grace time.Duration) error
	OnProcessEvent(kind string, fn gcs.ProcessEventFunc)
	OnNodeEvent(fn gcs.NodeEventFunc)
}

// LogReader reads a node's log file from offset on, through the node's
// agent at agentAddress (http://ip:port).
type LogReader interface {
	ReadLog(ctx context.Context, agentAddress, file string, offset int64) ([]byte, error)
}

// Options configures a Manager.
type Options struct {
	Store   gcs.Storage
	Cluster Cluster
	// GCSAddress is exported to entrypoints as RAY_ADDRESS.
	GCSAddress string
	// AllowDriverOnWorkers lets entrypoints without resource requests run on
	// any node (RAY_JOB_ALLOW_DRIVER_ON_WORKER_NODES=1).
	AllowDriverOnWorkers bool
	StopGracePeriod      time.Duration
	StartTimeout         time.Duration
	LogPollInterval      time.Duration
	Logs                 LogReader
	Clock                clock.WithTicker
	Logger               logr.Logger
}

// Manager owns the job records and drives them through their states.
type Manager struct {
	opts Options
	// mu serialises read-modify-write of records.
	mu   sync.Mutex
	kick chan struct{}
}

// record is what the KV holds for one job.
type record struct {
	dashboard.JobDetails
	EntrypointLabelSelector map[string]string `json:"entrypoint_label_selector,omitempty"`
	StopRequested           bool              `json:"stop_requested,omitempty"`
	LogFile                 string            `json:"log_file,omitempty"`
}

// NewManager returns a Manager and subscribes it to process and node events.
func NewManager(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.StopGracePeriod <= 0 {
		opts.StopGracePeriod = 3 * time.Second
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.LogPollInterval <= 0 {
		opts.LogPollInterval = DefaultLogPollInterval
	}
	if opts.Logs == nil {
		opts.Logs = &HTTPLogReader{Client: &http.Client{Timeout: 10 * time.Second}}
	}
	m := &Manager{opts: opts, kick: make(chan struct{}, 1)}
	opts.Cluster.OnProcessEvent(ProcessKind, m.onProcessEvent)
	opts.Cluster.OnNodeEvent(m.onNodeEvent)
	return m
}

// LogPollInterval is how often tails poll for new output.
func (m *Manager) LogPollInterval() time.Duration { return m.opts.LogPollInterval }

// Run places pending jobs as capacity appears and fails the ones that wait
// longer than the start timeout, until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	t := m.opts.Clock.NewTicker(time.Second)
	defer t.Stop()
	for {
		m.schedulePending(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-m.kick:
		case <-t.C():
		}
	}
}

func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Submit records a new PENDING job and tries to place it right away.
func (m *Manager) Submit(ctx context.Context, req *dashboard.JobSubmitRequest) (string, error) {
	id := req.SubmissionID
	if id == "" {
		id = req.JobID
	}
	if id == "" {
		id = NewSubmissionID()
	}
	rec := &record{
		JobDetails: dashboard.JobDetails{
			Type:                dashboard.JobTypeSubmission,
			SubmissionID:        id,
			Status:              dashboard.JobStatusPending,
			Entrypoint:          req.Entrypoint,
			Message:             msgPending,
			StartTime:           uint64(m.opts.Clock.Now().UnixMilli()),
			Metadata:            req.Metadata,
			RuntimeEnv:          req.RuntimeEnv,
			EntrypointNumCPUs:   req.EntrypointNumCPUs,
			EntrypointNumGPUs:   req.EntrypointNumGPUs,
			EntrypointMemory:    req.EntrypointMemory,
			EntrypointResources: req.EntrypointResources,
		},
		EntrypointLabelSelector: req.EntrypointLabelSelector,
		LogFile:                 "job-driver-" + id + ".log",
	}
	if rec.Metadata == nil {
		rec.Metadata = map[string]string{}
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encoding job %s: %w", id, err)
	}
	m.mu.Lock()
	added, err := m.opts.Store.Put(ctx, kvNamespace, kvKeyPrefix+id, raw, false)
	m.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("storing job %s: %w", id, err)
	}
	if !added {
		return "", &DuplicateError{ID: id}
	}
	m.opts.Logger.Info("Submitted job", "submissionID", id, "entrypoint", req.Entrypoint)
	m.place(ctx, id)
	return id, nil
}

// NewSubmissionID returns an id in Ray's format: "raysubmit_" and 16
// characters of [A-Za-z0-9] without the look-alikes I, l, o, O and 0.
func NewSubmissionID() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz123456789"
	var b strings.Builder
	b.WriteString("raysubmit_")
	for range 16 {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String()
}

// Get returns one job.
func (m *Manager) Get(ctx context.Context, id string) (*dashboard.JobDetails, error) {
	rec, err := m.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &rec.JobDetails, nil
}

// List returns every job, oldest first.
func (m *Manager) List(ctx context.Context) ([]dashboard.JobDetails, error) {
	keys, err := m.opts.Store.Keys(ctx, kvNamespace, kvKeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing jobs: %w", err)
	}
	out := make([]dashboard.JobDetails, 0, len(keys))
	for _, k := range keys {
		rec, err := m.load(ctx, strings.TrimPrefix(k, kvKeyPrefix))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec.JobDetails)
	}
	slices.SortStableFunc(out, func(a, b dashboard.JobDetails) int {
		return int(int64(a.StartTime) - int64(b.StartTime))
	})
	return out, nil
}

// Stop asks a job to stop. It reports false when the job had already
// finished.
func (m *Manager) Stop(ctx context.Context, id string) (bool, error) {
	var nodeID string
	stopped := false
	err := m.update(ctx, id, func(r *record) bool {
		if r.Status.IsTerminal() {
			return false
		}
		stopped = true
		r.StopRequested = true
		if r.DriverNodeID == nil {
			m.finish(r, dashboard.JobStatusStopped, msgStopped, nil, nil)
			return true
		}
		nodeID = *r.DriverNodeID
		return true
	})
	if err != nil || nodeID == "" {
		return stopped, err
	}
	m.opts.Logger.Info("Stopping job", "submissionID", id, "nodeID", nodeID)
	if err := m.opts.Cluster.StopProcess(nodeID, processID(id), m.opts.StopGracePeriod); err != nil {
		// The node is gone, and the job with it.
		_ = m.update(ctx, id, func(r *record) bool {
			if r.Status.IsTerminal() {
				return false
			}
			m.finish(r, dashboard.JobStatusStopped, msgStopped, nil, nil)
			return true
		})
	}
	return true, nil
}

// Delete removes a finished job's record; its log file stays.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.load(ctx, id)
	if err != nil {
		return err
	}
	if !rec.Status.IsTerminal() {
		return &NonTerminalError{ID: id, Status: rec.Status}
	}
	if _, err := m.opts.Store.Delete(ctx, kvNamespace, kvKeyPrefix+id); err != nil {
		return fmt.Errorf("deleting job %s: %w", id, err)
	}
	return nil
}

// Logs returns the job's whole log so far ("" before it has a node).
func (m *Manager) Logs(ctx context.Context, id string) (string, error) {
	rec, err := m.load(ctx, id)
	if err != nil {
		return "", err
	}
	if rec.DriverAgentHTTPAddress == nil {
		return "", nil
	}
	b, err := m.opts.Logs.ReadLog(ctx, *rec.DriverAgentHTTPAddress, rec.LogFile, 0)
	if err != nil {
		return "", fmt.Errorf("reading logs of job %s: %w", id, err)
	}
	return string(b), nil
}

// ReadLogFrom returns the job's log from offset on, and whether the job had
// reached a terminal state before the read (so an empty read means the log
// is complete). located is false while the job has no node yet.
func (m *Manager) ReadLogFrom(ctx context.Context, id string, offset int64) (data []byte, terminal, located bool, err error) {
	rec, err := m.load(ctx, id)
	if err != nil {
		return nil, false, false, err
	}
	terminal = rec.Status.IsTerminal()
	if rec.DriverAgentHTTPAddress == nil {
		return nil, terminal, false, nil
	}
	data, err = m.opts.Logs.ReadLog(ctx, *rec.DriverAgentHTTPAddress, rec.LogFile, offset)
	return data, terminal, true, err
}

func processID(submissionID string) string { return ProcessKind + ":" + submissionID }

func (m *Manager) load(ctx context.Context, id string) (*record, error) {
	raw, ok, err := m.opts.Store.Get(ctx, kvNamespace, kvKeyPrefix+id)
	if err != nil {
		return nil, fmt.Errorf("loading job %s: %w", id, err)
	}
	if !ok {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	rec := &record{}
	if err := json.Unmarshal(raw, rec); err != nil {
		return nil, fmt.Errorf("decoding job %s: %w", id, err)
	}
	return rec, nil
}

// update applies fn to the stored record and writes it back if fn reports a
// change.
func (m *Manager) update(ctx context.Context, id string, fn func(*record) bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.load(ctx, id)
	if err != nil {
		return err
	}
	if !fn(rec) {
		return nil
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding job %s: %w", id, err)
	}
	if _, err := m.opts.Store.Put(ctx, kvNamespace, kvKeyPrefix+id, raw, true); err != nil {
		return fmt.Errorf("storing job %s: %w", id, err)
	}
	return nil
}

// finish moves r to a terminal status; terminal statuses never change.
func (m *Manager) finish(r *record, st dashboard.JobStatus, msg string, errorType *string, exitCode *int) {
	if r.Status.IsTerminal() {
		return
	}
	r.Status = st
	r.Message = msg
	r.ErrorType = errorType
	if exitCode != nil {
		r.DriverExitCode = exitCode
	}
	end := uint64(m.opts.Clock.Now().UnixMilli())
	r.EndTime = &end
	m.opts.Logger.Info("Job finished", "submissionID", r.SubmissionID, "status", st)
}

// place tries to put a pending job on a node.
func (m *Manager) place(ctx context.Context, id string) {
	err := m.update(ctx, id, func(r *record) bool {
		if r.Status != dashboard.JobStatusPending || r.DriverNodeID != nil {
			return false
		}
		spec, err := m.processSpec(r)
		if err != nil {
			m.finish(r, dashboard.JobStatusFailed, fmt.Sprintf("Failed to set up the runtime environment: %v", err), ptr(dashboard.ErrorTypeRuntimeEnvSetup), nil)
			return true
		}
		resourcesRequested := len(spec.Resources) > 0 || len(r.EntrypointLabelSelector) > 0
		node, err := m.opts.Cluster.PlaceProcess(gcs.Placement{
			Spec:          spec,
			HeadOnly:      !resourcesRequested && !m.opts.AllowDriverOnWorkers,
			LabelSelector: r.EntrypointLabelSelector,
		})
		if err != nil {
			if r.Message == msgPendingResource {
				return false
			}
			r.Message = msgPendingResource
			return true
		}
		nodeID := node.NodeId
		addr := fmt.Sprintf("http://%s:%d", node.NodeIpAddress, node.AgentPort)
		r.DriverNodeID = &nodeID
		r.DriverAgentHTTPAddress = &addr
		r.Message = msgPending
		m.opts.Logger.Info("Placed job", "submissionID", id, "nodeID", nodeID, "ip", node.NodeIpAddress)
		return true
	})
	if err != nil {
		m.opts.Logger.Error(err, "Placing job failed", "submissionID", id)
	}
}

func (m *Manager) processSpec(r *record) (*gcsv1.ProcessSpec, error) {
	env := map[string]string{
		"RAY_ADDRESS":           m.opts.GCSAddress,
		"RAY_JOB_SUBMISSION_ID": r.SubmissionID,
		"PYTHONUNBUFFERED":      "1",
	}
	cfg, err := json.Marshal(map[string]any{"runtime_env": r.RuntimeEnv, "metadata": r.Metadata})
	if err != nil {
		return nil, err
	}
	env["RAY_JOB_CONFIG_JSON_ENV_VAR"] = string(cfg)
	workingDir := ""
	if r.RuntimeEnv != nil {
		if vars, ok := r.RuntimeEnv["env_vars"].(map[string]any); ok {
			for k, v := range vars {
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("runtime_env.env_vars[%s] is not a string", k)
				}
				env[k] = s
			}
		}
		if wd, ok := r.RuntimeEnv["working_dir"].(string); ok {
			workingDir = wd
		}
		// The node builds the venv and runs the entrypoint with it first on
		// PATH, so `python script.py` is the venv's interpreter.
		pip, err := pipenv.Parse(r.RuntimeEnv["pip"])
		if err != nil {
			return nil, err
		}
		if !pip.Empty() {
			env[pipenv.SpecEnv] = pip.JSON()
		}
	}
	res := map[string]float64{}
	if r.EntrypointNumCPUs > 0 {
		res["CPU"] = r.EntrypointNumCPUs
	}
	if r.EntrypointNumGPUs > 0 {
		res["GPU"] = r.EntrypointNumGPUs
	}
	if r.EntrypointMemory > 0 {
		res["memory"] = float64(r.EntrypointMemory)
	}
	for k, v := range r.EntrypointResources {
		if v > 0 {
			res[k] = v
		}
	}
	return &gcsv1.ProcessSpec{
		ProcessId:         processID(r.SubmissionID),
		Kind:              ProcessKind,
		ShellCommand:      r.Entrypoint,
		Env:               env,
		WorkingDir:        workingDir,
		LogFile:           r.LogFile,
		Resources:         res,
		StopGracePeriodMs: m.opts.StopGracePeriod.Milliseconds(),
	}, nil
}

func (m *Manager) schedulePending(ctx context.Context) {
	jobs, err := m.List(ctx)
	if err != nil {
		m.opts.Logger.Error(err, "Listing jobs failed")
		return
	}
	now := m.opts.Clock.Now()
	for _, j := range jobs {
		if j.Status != dashboard.JobStatusPending || j.DriverNodeID != nil {
			continue
		}
		if now.Sub(time.UnixMilli(int64(j.StartTime))) > m.opts.StartTimeout {
			_ = m.update(ctx, j.SubmissionID, func(r *record) bool {
				if r.Status != dashboard.JobStatusPending || r.DriverNodeID != nil {
					return false
				}
				m.finish(r, dashboard.JobStatusFailed, fmt.Sprintf(
					"Job supervisor actor failed to start within %.1f seconds. This timeout can be configured by setting the environment variable RAY_JOB_START_TIMEOUT_SECONDS.",
					m.opts.StartTimeout.Seconds()), ptr(dashboard.ErrorTypeSupervisorStartTimeout), nil)
				return true
			})
			continue
		}
		m.place(ctx, j.SubmissionID)
	}
}

func (m *Manager) onProcessEvent(nodeID string, st *gcsv1.ProcessStatus) {
	id, ok := strings.CutPrefix(st.Spec.ProcessId, ProcessKind+":")
	if !ok {
		return
	}
	ctx := context.Background()
	err := m.update(ctx, id, func(r *record) bool {
		if r.Status.IsTerminal() {
			return false
		}
		switch st.State {
		case gcsv1.ProcessState_PROCESS_STATE_RUNNING:
			if r.Status == dashboard.JobStatusRunning {
				return false
			}
			r.Status = dashboard.JobStatusRunning
			r.Message = msgRunning
			if r.DriverNodeID == nil || *r.DriverNodeID != nodeID {
				r.DriverNodeID = &nodeID
			}
			r.DriverInfo = &dashboard.DriverInfo{ID: r.SubmissionID, PID: strconv.Itoa(int(st.Pid))}
			if r.DriverAgentHTTPAddress != nil {
				if u, err := url.Parse(*r.DriverAgentHTTPAddress); err == nil {
					r.DriverInfo.NodeIPAddress = u.Hostname()
				}
			}
			return true
		case gcsv1.ProcessState_PROCESS_STATE_FAILED_TO_START:
			et := dashboard.ErrorTypeEntrypointCommandStart
			if strings.HasPrefix(st.Message, "Runtime env setup failed") {
				et = dashboard.ErrorTypeRuntimeEnvSetup
			}
			m.finish(r, dashboard.JobStatusFailed, st.Message, &et, nil)
			return true
		case gcsv1.ProcessState_PROCESS_STATE_EXITED:
			code := int(st.ExitCode)
			switch {
			case st.Stopped || r.StopRequested:
				m.finish(r, dashboard.JobStatusStopped, msgStopped, nil, &code)
			case code == 0:
				m.finish(r, dashboard.JobStatusSucceeded, msgSucceeded, nil, &code)
			default:
				msg := fmt.Sprintf("Job entrypoint command failed with exit code %d, last available logs (truncated to 20,000 chars):\n%s", code, st.LogTail)
				m.finish(r, dashboard.JobStatusFailed, msg, ptr(dashboard.ErrorTypeEntrypointCommand), &code)
			}
			return true
		}
		return false
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		m.opts.Logger.Error(err, "Recording process event failed", "submissionID", id)
	}
	if st.State != gcsv1.ProcessState_PROCESS_STATE_RUNNING {
		m.wake()
	}
}

func (m *Manager) onNodeEvent(n *gcsv1.Node) {
	if n.State != gcsv1.NodeState_NODE_STATE_DEAD {
		m.wake()
		return
	}
	ctx := context.Background()
	jobs, err := m.List(ctx)
	if err != nil {
		m.opts.Logger.Error(err, "Listing jobs failed")
		return
	}
	for _, j := range jobs {
		if j.Status.IsTerminal() || j.DriverNodeID == nil || *j.DriverNodeID != n.NodeId {
			continue
		}
		_ = m.update(ctx, j.SubmissionID, func(r *record) bool {
			if r.Status.IsTerminal() {
				return false
			}
			if r.StopRequested {
				m.finish(r, dashboard.JobStatusStopped, msgStopped, nil, nil)
				return true
			}
			m.finish(r, dashboard.JobStatusFailed, fmt.Sprintf("Job supervisor actor died: the node %s running the job died (%s).", n.NodeId, n.DeathReason), ptr(dashboard.ErrorTypeSupervisorDied), nil)
			return true
		})
	}
}

func ptr[T any](v T) *T { return &v }

// HTTPLogReader reads logs from node agents over HTTP.
type HTTPLogReader struct {
	Client *http.Client
}

// ReadLog calls GET <agent>/api/local_logs/<file>?offset=N.
func (h *HTTPLogReader) ReadLog(ctx context.Context, agentAddress, file string, offset int64) ([]byte, error) {
	u := fmt.Sprintf("%s/api/local_logs/%s?offset=%d", strings.TrimRight(agentAddress, "/"), url.PathEscape(file), offset)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading %s from agent %s: %w", file, agentAddress, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s from agent %s: %w", file, agentAddress, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading %s from agent %s: HTTP %d: %s", file, agentAddress, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}
