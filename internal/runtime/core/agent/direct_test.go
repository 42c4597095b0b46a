package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// peerConn is a connection as the agent sees it once its process said
// hello; the handlers under test never read or write it.
func peerConn(p *peer) *corewire.Conn {
	c := corewire.NewConn(nil, nil)
	c.Value = p
	return c
}

func expectMsg(job string, ids ...string) *corewire.Message {
	return &corewire.Message{Header: corewire.Header{Op: "expect", Body: corewire.JSON(map[string]any{"object_ids": ids, "job": job})}}
}

func putMsg(id, job, value string) *corewire.Message {
	return &corewire.Message{Header: corewire.Header{Op: "put", Body: corewire.JSON(putBody{ObjectID: id, Job: job})}, Parts: [][]byte{[]byte(value)}}
}

// agentErrorOf decodes an agent-made error value, failing t unless it is
// one.
func agentErrorOf(t *testing.T, a *Agent, id string) (typ, msg string) {
	t.Helper()
	data, isErr, ok := a.store.Value(id)
	if !ok || !isErr || len(data) == 0 || data[0] != errJSON {
		t.Fatalf("%s = %q (isErr %v, ok %v), want an error value of the agent's", id, data, isErr, ok)
	}
	var e struct{ Type, Message string }
	if err := json.Unmarshal(data[1:], &e); err != nil {
		t.Fatal(err)
	}
	return e.Type, e.Message
}

// The results a worker process announced (expect) and never put fail with
// OwnerDiedError naming them when the process ends; what it put stays, and
// what it announces after it ended fails at once.
func TestExpectedObjectsFailWhenTheirWorkerEnds(t *testing.T) {
	a := New(Options{NodeID: "n1", SocketDir: t.TempDir(), Logger: logr.Discard()})
	w := &worker{id: "w1", exited: make(chan struct{}), pid: 4242}
	c := peerConn(&peer{worker: w})
	for _, m := range []*corewire.Message{expectMsg("j1", "owed1", "owed2", "paid"), putMsg("paid", "j1", "42")} {
		handler := map[string]func(*corewire.Conn, *corewire.Message) (*corewire.Message, error){"expect": a.expect, "put": a.put}[m.Op]
		if _, err := handler(c, m); err != nil {
			t.Fatal(err)
		}
	}
	// A driver's announcement is not the worker's to fail.
	if _, err := a.expect(peerConn(&peer{job: &job{id: "j1"}}), expectMsg("j1", "drivers")); err != nil {
		t.Fatal(err)
	}
	getting := make(chan error, 1)
	// The bound only keeps a broken build from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { getting <- a.store.WaitAll(ctx, []string{"owed1", "owed2"}) }()

	a.failOwed(w)
	if err := <-getting; err != nil {
		t.Fatalf("a get of the owed objects: %v", err)
	}
	for _, id := range []string{"owed1", "owed2"} {
		typ, msg := agentErrorOf(t, a, id)
		if typ != "OwnerDiedError" || !strings.Contains(msg, id) || !strings.Contains(msg, "owner has exited") || !strings.Contains(msg, "pid 4242") {
			t.Errorf("%s failed as %s %q, want OwnerDiedError naming it, its dead owner and the owner's pid", id, typ, msg)
		}
	}
	if data, isErr, _ := a.store.Value("paid"); isErr || string(data) != "42" {
		t.Errorf("paid = %q, isErr %v; want the value the worker put", data, isErr)
	}
	if a.store.Ready("drivers") {
		t.Error("a driver's announced object failed with a worker's death")
	}
	// Exit and connection end both settle the worker: the second does nothing.
	a.failOwed(w)

	if _, err := a.expect(c, expectMsg("j1", "late")); err != nil {
		t.Fatal(err)
	}
	if typ, _ := agentErrorOf(t, a, "late"); typ != "OwnerDiedError" {
		t.Errorf("announced after its owner ended: %s, want OwnerDiedError", typ)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.owed) != 0 {
		t.Errorf("the ended worker still records %d owed objects", len(w.owed))
	}
}
