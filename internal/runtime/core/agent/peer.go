package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
	"github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// HTTPPath prefixes the agent-to-agent calls on the node agent's HTTP port:
// POST HTTPPath+<op>, request and response bodies one corewire message
// each. They carry work to the node a lease landed on and objects to the
// nodes that need them.
const HTTPPath = "/api/rayk8s/core/"

// objRef names an object and the node whose store holds it.
type objRef struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
}

// jobInfo is what another node needs to run a job's work.
type jobInfo struct {
	ID        string            `json:"id"`
	Namespace string            `json:"namespace"`
	Env       map[string]string `json:"env"`
	SysPath   []string          `json:"sys_path"`
	PyPath    string            `json:"py_path"`
	Pip       *pipenv.Spec      `json:"pip,omitempty"`
	// DriverNode is the node whose agent the driver is connected to.
	DriverNode string `json:"driver_node"`
}

func (j *job) info() jobInfo {
	return jobInfo{ID: j.id, Namespace: j.namespace, Env: j.env, SysPath: j.sysPath, PyPath: j.pyPath, Pip: j.pip, DriverNode: j.driverNode}
}

// peers resolves node ids to their agents' addresses.
type peers struct {
	a      *Agent
	client *http.Client
	mu     sync.Mutex
	addrs  map[string]string
}

func (p *peers) addr(ctx context.Context, nodeID string) (string, error) {
	p.mu.Lock()
	addr, ok := p.addrs[nodeID]
	p.mu.Unlock()
	if ok {
		return addr, nil
	}
	resp, err := p.a.nodes.ListNodes(ctx, &gcsv1.ListNodesRequest{})
	if err != nil {
		return "", fmt.Errorf("listing nodes: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range resp.Nodes {
		if n.State == gcsv1.NodeState_NODE_STATE_ALIVE {
			p.addrs[n.NodeId] = net.JoinHostPort(n.NodeIpAddress, strconv.Itoa(int(n.AgentPort)))
		}
	}
	if addr, ok := p.addrs[nodeID]; ok {
		return addr, nil
	}
	return "", fmt.Errorf("node %s is not alive", nodeID)
}

// callPeer sends m to nodeID's agent and returns its reply; an error reply
// is a *corewire.RemoteError.
func (a *Agent) callPeer(ctx context.Context, nodeID string, m *corewire.Message) (*corewire.Message, error) {
	addr, err := a.peers.addr(ctx, nodeID)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	op := m.Op
	if err := corewire.Write(&body, m); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+HTTPPath+op, &body)
	if err != nil {
		return nil, err
	}
	resp, err := a.peers.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling %s on node %s: %w", op, nodeID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("calling %s on node %s: HTTP %d", op, nodeID, resp.StatusCode)
	}
	reply, err := corewire.Read(bufio.NewReader(resp.Body))
	if err != nil {
		return nil, fmt.Errorf("reading the reply of %s from node %s: %w", op, nodeID, err)
	}
	if reply.Error != "" {
		return reply, &corewire.RemoteError{Type: reply.ErrorType, Message: reply.Error}
	}
	return reply, nil
}

// Handler serves the agent-to-agent calls under HTTPPath.
func (a *Agent) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			switch r.URL.Path {
			case HTTPPath + objectDataOp:
				a.serveObjectData(w, r)
				return
			case stateapi.AgentPath:
				a.serveState(w)
				return
			}
		}
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		m, err := corewire.Read(bufio.NewReader(r.Body))
		if err != nil {
			http.Error(w, "bad message: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.Op = strings.TrimPrefix(r.URL.Path, HTTPPath)
		reply, err := a.handlePeer(r.Context(), m)
		if reply == nil {
			reply = &corewire.Message{}
		}
		reply.Reply = true
		if err != nil {
			reply.Error = err.Error()
			var re *corewire.RemoteError
			if errors.As(err, &re) {
				reply.ErrorType = re.Type
			}
			reply.Parts = nil
		}
		_ = corewire.Write(w, reply)
	})
}

func (a *Agent) handlePeer(ctx context.Context, m *corewire.Message) (*corewire.Message, error) {
	switch m.Op {
	case "execute_task":
		return a.executeForPeer(ctx, m)
	case "start_actor":
		return a.startActorForPeer(m)
	case "actor_call":
		return a.actorCall(m)
	case "kill_actor":
		return a.killActor(m)
	case "job_end":
		return a.jobEnd(m)
	case "cancel":
		return a.cancel(nil, m)
	case "interrupt_task":
		return a.interruptForPeer(m)
	case "cancel_actor_call":
		return a.cancelActorCall(m)
	case "group_removed":
		return a.groupRemoved(m)
	case "log":
		a.forwardLog(m)
		return nil, nil
	}
	// Only a node running another version of the ray binary sends a peer call this agent lacks.
	return nil, errorf("RaySystemError", "the node agent does not know the peer call %q: the cluster's nodes run different versions of ray", m.Op)
}

// ensure makes r's value available in the local store, fetching it from
// its owner's node when another node holds it.
func (a *Agent) ensure(ctx context.Context, jobID string, r objRef) error {
	if r.Owner == "" || r.Owner == a.opts.NodeID || a.store.Ready(r.ID) {
		return a.store.WaitAll(ctx, []string{r.ID})
	}
	data, isErr, err := a.fetchObject(ctx, r.Owner, r.ID)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var re *corewire.RemoteError
		if errors.As(err, &re) && re.Type != "" && re.Type != "ObjectLostError" {
			a.store.Put(r.ID, jobID, agentError(re.Type, re.Message), true)
			return nil
		}
		if a.nodeDead(ctx, r.Owner) {
			// Ray's OwnerDiedError: the value lived with its owner, and the
			// owner's node is gone.
			a.store.Put(r.ID, jobID, agentError("OwnerDiedError", fmt.Sprintf("Failed to retrieve object %s. The object's owner has exited: node %s, which held it, is dead.", r.ID, r.Owner)), true)
			return nil
		}
		a.store.Put(r.ID, jobID, agentError("ObjectLostError", fmt.Sprintf("Failed to retrieve object %s from node %s: %v", r.ID, r.Owner, err)), true)
		return nil
	}
	a.store.Put(r.ID, jobID, data, isErr)
	return nil
}

// ensureAll is ensure for every ref, concurrently.
func (a *Agent) ensureAll(ctx context.Context, jobID string, refs []objRef) error {
	if len(refs) == 1 {
		return a.ensure(ctx, jobID, refs[0])
	}
	errs := make(chan error, len(refs))
	for _, r := range refs {
		go func() { errs <- a.ensure(ctx, jobID, r) }()
	}
	var first error
	for range refs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// inline appends the values of refs (ready locally) to parts, with their
// error flags, so that another node can run work that takes them.
func (a *Agent) inline(refs []objRef, parts [][]byte) ([][]byte, []bool) {
	errs := make([]bool, len(refs))
	for i, r := range refs {
		data, isErr, _ := a.store.Value(r.ID)
		parts = append(parts, data)
		errs[i] = isErr
	}
	return parts, errs
}

// adopt stores inlined values sent by another node.
func (a *Agent) adopt(jobID string, refs []objRef, errs []bool, parts [][]byte) error {
	if len(parts) != len(refs) || len(errs) != len(refs) {
		return errorf("ValueError", "expected %d inlined arguments, got %d", len(refs), len(parts))
	}
	for i, r := range refs {
		a.store.Put(r.ID, jobID, parts[i], errs[i])
	}
	return nil
}

// ensureJob returns the job, recording it when another node's driver owns it.
func (a *Agent) ensureJob(info jobInfo) *job {
	a.mu.Lock()
	defer a.mu.Unlock()
	if j, ok := a.jobs[info.ID]; ok {
		return j
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{id: info.ID, namespace: info.Namespace, env: info.Env, pip: info.Pip, sysPath: info.SysPath, pyPath: info.PyPath, driverNode: info.DriverNode, ctx: ctx, cancel: cancel, peers: map[string]bool{}}
	a.jobs[info.ID] = j
	return j
}

// usePeer records that nodeID runs some of j's work: it hears of j's end.
func (j *job) usePeer(nodeID string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.peers[nodeID] = true
}

func (a *Agent) jobEnd(m *corewire.Message) (*corewire.Message, error) {
	var b struct {
		Job string `json:"job"`
	}
	if err := m.Decode(&b); err != nil {
		return nil, err
	}
	a.mu.Lock()
	j, ok := a.jobs[b.Job]
	a.mu.Unlock()
	if ok {
		a.endJob(j)
	}
	return nil, nil
}

// logLines is a batch of a worker's output lines for its job's driver.
type logLines struct {
	Job    string   `json:"job"`
	Name   string   `json:"name"`
	PID    int      `json:"pid"`
	IP     string   `json:"ip"`
	Stderr bool     `json:"stderr"`
	Lines  []string `json:"lines"`
	// flushed, on a marker queued by flushLogs, is closed when everything
	// queued before it was sent.
	flushed chan struct{}
}

// logFlushTimeout bounds how long a driver's goodbye waits for the output
// queued before it.
const logFlushTimeout = 2 * time.Second

// flushLogs returns once the output queued so far was handed to the
// drivers (or after logFlushTimeout).
func (a *Agent) flushLogs() {
	marker := logLines{flushed: make(chan struct{})}
	timeout := time.NewTimer(logFlushTimeout)
	defer timeout.Stop()
	select {
	case a.logs <- marker:
	case <-timeout.C:
		return
	}
	select {
	case <-marker.flushed:
	case <-timeout.C:
	}
}

// forwardLog hands worker output to the job's driver: directly when it is
// connected here, else through the agent of the driver's node. One
// goroutine sends them, so lines keep their order.
func (a *Agent) forwardLog(m *corewire.Message) {
	var b logLines
	if err := m.Decode(&b); err != nil {
		return
	}
	if b.IP == "" {
		b.IP = a.opts.NodeIP
	}
	select {
	case a.logs <- b:
	default:
		// A driver that cannot keep up loses lines rather than stalling workers.
	}
}

func (a *Agent) runLogForwarder(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-a.logs:
			if b.flushed != nil {
				close(b.flushed)
				continue
			}
			j, ok := a.jobOf(b.Job)
			if !ok {
				continue
			}
			if j.conn != nil {
				_ = j.conn.Notify("log", b)
				continue
			}
			if j.driverNode == "" || j.driverNode == a.opts.NodeID {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = a.callPeer(cctx, j.driverNode, &corewire.Message{Header: corewire.Header{Op: "log", Body: corewire.JSON(b)}})
			cancel()
		}
	}
}

// nodeDead reports whether the head's node table has nodeID as dead.
func (a *Agent) nodeDead(ctx context.Context, nodeID string) bool {
	resp, err := a.nodes.ListNodes(ctx, &gcsv1.ListNodesRequest{})
	if err != nil {
		return false
	}
	for _, n := range resp.Nodes {
		if n.NodeId == nodeID {
			return n.State == gcsv1.NodeState_NODE_STATE_DEAD
		}
	}
	return false
}
