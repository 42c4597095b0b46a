package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/runtime/core/corewire"
)

// directRoute gives a caller the actor's socket only when switching to it
// cannot reorder the caller's calls or lose the agent's retries.
func TestDirectRouteOnlyWhenNothingOfTheAgentsIsInFlight(t *testing.T) {
	a := New(Options{NodeID: "n1", SocketDir: t.TempDir(), Logger: logr.Discard()})
	live := &worker{exited: make(chan struct{})}
	fresh := func() *actor {
		ac := a.newActor(actorInfo{ActorID: "a1"}, "j1", true, "")
		ac.live, ac.direct = live, "/run/actor-1.sock"
		return ac
	}
	cases := []struct {
		name   string
		change func(*actor)
		want   directRoute
	}{
		{"live and idle", func(*actor) {}, directRoute{Socket: "/run/actor-1.sock"}},
		{"a call of the agent's running", func(ac *actor) { ac.inflight = 1 }, directRoute{}},
		{"a call queued", func(ac *actor) { ac.queue = []*actorCall{{}} }, directRoute{}},
		{"a call being sent", func(ac *actor) { ac.sending = true }, directRoute{}},
		{"still constructing", func(ac *actor) { ac.live = nil }, directRoute{}},
		{"dead", func(ac *actor) { ac.dead = true }, directRoute{Final: true}},
		{"on another node", func(ac *actor) { ac.target = "n2" }, directRoute{Final: true}},
		{"restartable", func(ac *actor) { ac.info.MaxRestarts = -1 }, directRoute{Final: true}},
		{"retries its calls", func(ac *actor) { ac.info.MaxTaskRetries = 2 }, directRoute{Final: true}},
		{"serves no socket", func(ac *actor) { ac.direct = "" }, directRoute{Final: true}},
	}
	for _, c := range cases {
		ac := fresh()
		c.change(ac)
		if got := ac.directRoute(); got != c.want {
			t.Errorf("%s: route = %+v, want %+v", c.name, got, c.want)
		}
	}
	ac := fresh()
	close(live.exited)
	if got := ac.directRoute(); got != (directRoute{}) {
		t.Errorf("process exited, restart pending: route = %+v, want ask again later", got)
	}
}

// An exited actor process's socket file is removed, but nothing outside
// the agent's socket directory is.
func TestRemoveDirectSocketStaysInTheSocketDir(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	a := New(Options{NodeID: "n1", SocketDir: dir, Logger: logr.Discard()})
	inside, outside := filepath.Join(dir, "actor-1.sock"), filepath.Join(other, "actor-1.sock")
	for _, p := range []string{inside, outside} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a.removeDirectSocket(inside)
	a.removeDirectSocket(outside)
	if _, err := os.Stat(inside); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v), want it removed", inside, err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("%s: %v, want it left alone", outside, err)
	}
}

// Finished direct calls an actor's process reports become the state API's
// ACTOR_TASK rows, and go with their job.
func TestDirectDoneRecordsActorTasks(t *testing.T) {
	a := New(Options{NodeID: "n1", SocketDir: t.TempDir(), Logger: logr.Discard()})
	m := &corewire.Message{Header: corewire.Header{Op: "direct_done", Body: corewire.JSON(map[string]any{"calls": []directCall{
		{TaskID: "t1", Name: "Counter.add", Job: "j1"},
		{TaskID: "t2", Name: "Counter.boom", Job: "j1", ErrorType: "TASK_EXECUTION_EXCEPTION"},
	}})}}
	if _, err := a.directDone(m); err != nil {
		t.Fatal(err)
	}
	rows := a.State().Tasks
	if len(rows) != 2 || rows[0].TaskID != "t1" || rows[0].State != taskFinished || rows[0].Type != "ACTOR_TASK" ||
		rows[0].NodeID != "n1" || rows[1].State != taskFailed || rows[1].ErrorType == nil || *rows[1].ErrorType != "TASK_EXECUTION_EXCEPTION" {
		t.Fatalf("tasks = %+v, want t1 FINISHED and t2 FAILED, both ACTOR_TASK on n1", rows)
	}
	a.dropTasks("j1")
	if rows := a.State().Tasks; len(rows) != 0 {
		t.Errorf("after the job ended: tasks = %+v, want none", rows)
	}
}
