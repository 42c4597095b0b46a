package agent

import (
	"context"
	"testing"
	"time"
)

func TestStoreWaitsForValuesAndKeepsTheFirst(t *testing.T) {
	s := NewStore(StoreOptions{})
	done := make(chan error, 1)
	go func() { done <- s.WaitAll(context.Background(), []string{"a", "b"}) }()
	s.Put("a", "job1", []byte("1"), false)
	s.Put("b", "job1", []byte("2"), true)
	s.Put("b", "job1", []byte("again"), false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	data, isErr, ok := s.Value("b")
	if !ok || !isErr || string(data) != "2" {
		t.Fatalf("b = %q, %v, %v; want the first value, an error", data, isErr, ok)
	}
	s.DropJob("job1")
	if _, _, ok := s.Value("a"); ok {
		t.Fatal("a job's objects survived its end")
	}
}

func TestStoreWaitSome(t *testing.T) {
	s := NewStore(StoreOptions{})
	s.Put("x", "", []byte("1"), false)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// Only one of two is ready; asking for two returns what is ready when ctx ends.
	ready := s.WaitSome(ctx, []string{"y", "x"}, 2)
	if len(ready) != 1 || ready[0] != 1 {
		t.Fatalf("ready = %v, want [1]", ready)
	}
	ready = s.WaitSome(context.Background(), []string{"y", "x"}, 1)
	if len(ready) != 1 || ready[0] != 1 {
		t.Fatalf("ready = %v, want [1]", ready)
	}
}

func TestStoreOnReadyRunsOnceEveryValueIsThere(t *testing.T) {
	s := NewStore(StoreOptions{})
	s.Put("a", "job1", []byte("1"), false)
	fired := 0
	s.OnReady([]string{"a"}, func() { fired++ })
	if fired != 1 {
		t.Fatalf("a registration for ready values ran %d times at once, want 1", fired)
	}
	s.OnReady([]string{"a", "b", "c"}, func() { fired++ })
	s.Put("b", "job1", []byte("2"), false)
	if fired != 1 {
		t.Fatal("ran before every value was there")
	}
	s.Put("c", "job1", []byte("3"), true)
	s.Put("c", "job1", []byte("again"), false)
	if fired != 2 {
		t.Fatalf("fired = %d after the last value, want 2", fired)
	}
}

func TestStoreOnReadyCancelAndDrop(t *testing.T) {
	s := NewStore(StoreOptions{})
	s.Expect("x", "job1")
	ran := false
	cancel := s.OnReady([]string{"x"}, func() { ran = true })
	if !cancel() {
		t.Fatal("cancel of a pending registration reported that it had run")
	}
	if cancel() {
		t.Fatal("a second cancel reported stopping it again")
	}
	s.Put("x", "job1", []byte("1"), false)
	if ran {
		t.Fatal("a cancelled registration ran")
	}
	s.Expect("y", "job1")
	cancel = s.OnReady([]string{"y"}, func() { ran = true })
	s.DropJob("job1")
	s.Put("y", "job2", []byte("1"), false)
	if ran {
		t.Fatal("a registration for a value dropped with its job ran for a later value of the same id")
	}
	if !cancel() {
		t.Fatal("the dropped registration could not be cancelled")
	}
	cancel = s.OnReady([]string{"y"}, func() { ran = true })
	if !ran || cancel() {
		t.Fatalf("registration for the new value: ran = %v, cancel after running must report false", ran)
	}
}

// FailPending gives an error only to entries still waiting for a value:
// a waiting get wakes with it, a value already there stays, and an id the
// store never heard of (or freed with its job) is not brought back.
func TestStoreFailPendingOnlyFailsWaitingEntries(t *testing.T) {
	s := NewStore(StoreOptions{})
	s.Expect("waiting", "job1")
	s.Put("there", "job1", []byte("value"), false)
	s.Expect("freed", "job2")
	s.DropJob("job2")
	done := make(chan error, 1)
	// The bound only keeps a broken build from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { done <- s.WaitAll(ctx, []string{"waiting"}) }()

	if !s.FailPending("waiting", []byte("owner died")) {
		t.Error("FailPending(waiting) = false, want true")
	}
	if err := <-done; err != nil {
		t.Fatalf("the get waiting for the failed object: %v", err)
	}
	if data, isErr, ok := s.Value("waiting"); !ok || !isErr || string(data) != "owner died" {
		t.Errorf("waiting = %q, isErr %v, ok %v; want the error value", data, isErr, ok)
	}
	if s.FailPending("there", []byte("owner died")) {
		t.Error("FailPending(there) = true, want false: it has a value")
	}
	if data, isErr, _ := s.Value("there"); isErr || string(data) != "value" {
		t.Errorf("there = %q, isErr %v; want its value kept", data, isErr)
	}
	for _, id := range []string{"freed", "unknown"} {
		if s.FailPending(id, []byte("owner died")) || s.Known(id) {
			t.Errorf("FailPending(%s) made an entry for an object the store does not expect", id)
		}
	}
	// The failed entry keeps its job: it goes when the job ends.
	s.DropJob("job1")
	if s.Known("waiting") {
		t.Error("the failed object outlived its job")
	}
}
