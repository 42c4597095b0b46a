package agent

import (
	"encoding/json"
	"maps"
	"net/http"
	"sort"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
)

// Task states, in Ray's words.
const (
	taskPendingArgs = "PENDING_ARGS_AVAIL"
	taskPendingNode = "PENDING_NODE_ASSIGNMENT"
	taskRunning     = "RUNNING"
	taskFinished    = "FINISHED"
	taskFailed      = "FAILED"
)

// maxTaskRows bounds the state API's task rows per node, as Ray's GCS keeps
// at most 100,000 task events by default: a long-lived driver making actor
// calls must not grow the agent without bound. The oldest rows go first.
const maxTaskRows = 100_000

// taskTable holds the state API's rows of the tasks and actor calls this
// node submitted or ran; a job's rows go with the job. Guarded by the
// agent's tmu.
type taskTable struct {
	rows map[string]*stateapi.Task
	// order is the rows' task IDs, oldest first (dropJob keeps it in step).
	order []string
	limit int
}

func newTaskTable(limit int) *taskTable {
	return &taskTable{rows: map[string]*stateapi.Task{}, limit: limit}
}

// row returns the row of id, made by mk when there is none.
func (tt *taskTable) row(id string, mk func() *stateapi.Task) *stateapi.Task {
	if t, ok := tt.rows[id]; ok {
		return t
	}
	for len(tt.rows) >= tt.limit && len(tt.order) > 0 {
		delete(tt.rows, tt.order[0])
		tt.order = tt.order[1:]
	}
	t := mk()
	tt.rows[id] = t
	tt.order = append(tt.order, id)
	return t
}

// compact drops the IDs of rows already gone from order.
func (tt *taskTable) compact() {
	kept := make([]string, 0, len(tt.rows))
	for _, id := range tt.order {
		if _, ok := tt.rows[id]; ok {
			kept = append(kept, id)
		}
	}
	tt.order = kept
}

func (tt *taskTable) dropJob(jobID string) {
	for id, t := range tt.rows {
		if t.JobID == jobID {
			delete(tt.rows, id)
		}
	}
	tt.compact()
}

func (a *Agent) recordTask(j *job, b *taskBody, state, nodeID string, attempt int, errType string) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	t := a.tasks.row(b.TaskID, func() *stateapi.Task {
		return &stateapi.Task{TaskID: b.TaskID, Name: b.Name, JobID: j.id, Type: "NORMAL_TASK", FuncOrClassName: b.Name,
			Language: "PYTHON", RequiredResources: maps.Clone(b.Resources)}
	})
	t.State, t.AttemptNumber = state, attempt
	if nodeID != "" {
		t.NodeID = nodeID
	}
	if errType != "" {
		t.ErrorType = &errType
	} else {
		t.ErrorType = nil
	}
}

// recordActorCall records an actor call run by a process of this node,
// whichever path it came by (the agent's or direct).
func (a *Agent) recordActorCall(taskID, actorID, name, jobID, state, errType string) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	t := a.tasks.row(taskID, func() *stateapi.Task {
		var actor *string
		if actorID != "" {
			actor = &actorID
		}
		return &stateapi.Task{TaskID: taskID, ActorID: actor, Name: name, JobID: jobID, Type: "ACTOR_TASK", FuncOrClassName: name,
			Language: "PYTHON", RequiredResources: map[string]float64{}, NodeID: a.opts.NodeID}
	})
	t.State = state
	if errType != "" {
		t.ErrorType = &errType
	}
}

// maxDeadActors bounds the DEAD rows a node keeps (Ray's GCS keeps a
// bounded cache of destroyed actors too); the oldest go first.
const maxDeadActors = 10_000

func (a *Agent) recordDeadActor(row stateapi.Actor) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	if len(a.deadActors) >= maxDeadActors {
		// Drop the oldest tenth at once, so a node where actors die all
		// the time does not copy the whole list on every death.
		a.deadActors = append(a.deadActors[:0:0], a.deadActors[len(a.deadActors)-maxDeadActors*9/10:]...)
	}
	a.deadActors = append(a.deadActors, row)
}

func (a *Agent) dropTasks(jobID string) {
	a.tmu.Lock()
	defer a.tmu.Unlock()
	a.tasks.dropJob(jobID)
}

// State is what this node reports to the head's state API.
func (a *Agent) State() stateapi.NodeState {
	st := stateapi.NodeState{Actors: []stateapi.Actor{}, Tasks: []stateapi.Task{}, Objects: []stateapi.Object{}, Drivers: []dashboard.JobDetails{},
		Workers: a.pool.rows(a.opts.NodeID, a.opts.NodeIP)}
	sort.Slice(st.Workers, func(i, j int) bool { return st.Workers[i].WorkerID < st.Workers[j].WorkerID })
	a.tmu.Lock()
	for _, t := range a.tasks.rows {
		st.Tasks = append(st.Tasks, *t)
	}
	st.Actors = append(st.Actors, a.deadActors...)
	a.tmu.Unlock()
	sort.Slice(st.Tasks, func(i, j int) bool { return st.Tasks[i].TaskID < st.Tasks[j].TaskID })

	a.mu.Lock()
	var owned []*actor
	for _, ac := range a.actors {
		if ac.owner {
			owned = append(owned, ac)
		}
	}
	var drivers []*job
	for _, j := range a.jobs {
		if j.conn != nil {
			drivers = append(drivers, j)
		}
	}
	a.mu.Unlock()
	for _, ac := range owned {
		st.Actors = append(st.Actors, ac.stateRow())
	}
	sort.Slice(st.Actors, func(i, j int) bool { return st.Actors[i].ActorID < st.Actors[j].ActorID })
	for _, j := range drivers {
		id := j.id
		st.Drivers = append(st.Drivers, dashboard.JobDetails{
			Type: dashboard.JobTypeDriver, JobID: &id, Status: dashboard.JobStatusRunning,
			StartTime:  uint64(j.started.UnixMilli()),
			DriverInfo: &dashboard.DriverInfo{ID: id, NodeIPAddress: a.opts.NodeIP},
			Metadata:   map[string]string{}, RuntimeEnv: map[string]any{}, DriverNodeID: &a.opts.NodeID,
		})
	}
	sort.Slice(st.Drivers, func(i, j int) bool { return *st.Drivers[i].JobID < *st.Drivers[j].JobID })
	for _, o := range a.store.Objects() {
		status := taskFinished
		if !o.ready {
			status = "PENDING"
		}
		st.Objects = append(st.Objects, stateapi.Object{ObjectID: o.id, ObjectSize: o.size, TaskStatus: status,
			ReferenceType: "LOCAL_REFERENCE", Type: "DRIVER", IP: a.opts.NodeIP, JobID: o.job})
	}
	return st
}

func (ac *actor) stateRow() stateapi.Actor {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	row := stateapi.Actor{ActorID: ac.info.ActorID, ClassName: ac.info.ClassName, JobID: ac.job, Name: ac.info.Name,
		RayNamespace: ac.info.Namespace, IsDetached: ac.detached, NumRestarts: ac.restarts,
		RequiredResources: map[string]float64{}}
	if ac.lease != nil {
		row.NodeID = ac.lease.nodeID
	}
	if ac.w != nil && ac.w.cmd != nil && ac.w.cmd.Process != nil {
		row.PID = ac.w.cmd.Process.Pid
	}
	select {
	case <-ac.ready:
		row.State = "ALIVE"
	default:
		row.State = "PENDING_CREATION"
	}
	if ac.dead {
		row.State = "DEAD"
		reason := ac.reason
		row.DeathCause = &reason
	}
	return row
}

func (a *Agent) serveState(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.State())
}
