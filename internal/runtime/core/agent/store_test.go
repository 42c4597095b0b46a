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
