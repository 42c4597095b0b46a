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
