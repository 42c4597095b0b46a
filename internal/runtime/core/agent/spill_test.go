package agent

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-logr/logr"
)

// value is a distinct, recognisable payload of n bytes.
func value(i, n int) []byte {
	return bytes.Repeat([]byte{byte('a' + i%26)}, n)
}

func spillFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestStoreSpillsPastItsLimitAndRestores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill")
	const limit, size = 1000, 300
	s := NewStore(StoreOptions{Limit: limit, SpillDir: dir, Logger: logr.Discard()})
	for i := range 10 {
		s.Put(fmt.Sprintf("obj%d", i), "job1", value(i, size), false)
		if st := s.Stats(); st.MemoryBytes > limit {
			t.Fatalf("after put %d memory holds %d bytes, over the %d limit", i, st.MemoryBytes, limit)
		}
	}
	st := s.Stats()
	// 3 values of 300 fit in 1000 bytes; the other 7 are on disk.
	if st.MemoryObjects != 3 || st.SpilledObjects != 7 || st.SpilledBytes != 7*size {
		t.Fatalf("stats = %+v; want 3 in memory, 7 spilled", st)
	}
	if files := spillFiles(t, dir); len(files) != 7 {
		t.Fatalf("spill dir holds %v; want 7 files", files)
	}
	// The oldest went first.
	if _, err := os.Stat(filepath.Join(dir, "obj0")); err != nil {
		t.Fatalf("the least recently used object was not spilled: %v", err)
	}
	for i := range 10 {
		data, isErr, ok := s.Value(fmt.Sprintf("obj%d", i))
		if !ok || isErr || !bytes.Equal(data, value(i, size)) {
			t.Fatalf("obj%d read back %d bytes (ok %v, isErr %v); want the value put", i, len(data), ok, isErr)
		}
	}
	if s.Stats().Restores != 7 {
		t.Fatalf("restores = %d, want 7", s.Stats().Restores)
	}
	s.DropJob("job1")
	if files := spillFiles(t, dir); len(files) != 0 {
		t.Fatalf("freed objects left spill files %v", files)
	}
	if st := s.Stats(); st.MemoryBytes != 0 || st.SpilledBytes != 0 || st.SpilledObjects != 0 || st.MemoryObjects != 0 {
		t.Fatalf("stats after free = %+v; want nothing held", st)
	}
}

func TestStoreKeepsErrorFlagAndAcceptsObjectsLargerThanTheLimit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill")
	s := NewStore(StoreOptions{Limit: 100, SpillDir: dir, Logger: logr.Discard()})
	big := value(1, 250)
	s.Put("big", "job1", big, true)
	if st := s.Stats(); st.MemoryBytes != 0 || st.SpilledObjects != 1 {
		t.Fatalf("stats = %+v; want the large object on disk only", st)
	}
	data, isErr, ok := s.Value("big")
	if !ok || !isErr || !bytes.Equal(data, big) {
		t.Fatalf("big read back %d bytes (ok %v, isErr %v)", len(data), ok, isErr)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Close left the spill directory: %v", err)
	}
}

func TestStoreDoesNotSpillAValueBeingRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill")
	s := NewStore(StoreOptions{Limit: 100, SpillDir: dir, Logger: logr.Discard()})
	s.Put("a", "j", value(0, 60), false)
	r, err := s.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	s.Put("b", "j", value(1, 60), false)
	// a is pinned by the reader, so b (the only other candidate) went.
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("a pinned value was spilled: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); err != nil {
		t.Fatalf("b was not spilled: %v", err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, value(0, 60)) {
		t.Fatalf("reading a: %d bytes, %v", len(got), err)
	}
	_ = r.Close()
	// A spilled value being streamed survives its object being freed.
	rb, err := s.Open("b")
	if err != nil {
		t.Fatal(err)
	}
	s.DropJob("j")
	if files := spillFiles(t, dir); len(files) != 0 {
		t.Fatalf("free left spill files %v", files)
	}
	got, err = io.ReadAll(rb)
	if err != nil || !bytes.Equal(got, value(1, 60)) {
		t.Fatalf("reading b after its free: %d bytes, %v", len(got), err)
	}
	_ = rb.Close()
}

func TestStoreConcurrentGetsDuringSpills(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill")
	const limit, size, n = 4096, 512, 64
	s := NewStore(StoreOptions{Limit: limit, SpillDir: dir, Logger: logr.Discard()})
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				id := fmt.Sprintf("o%d", i)
				s.Put(id, "j", value(i, size), false)
				// Read back this and earlier values while other writers spill.
				for k := w; k <= i; k += 4 {
					data, _, ok := s.Value(fmt.Sprintf("o%d", k))
					if !ok || !bytes.Equal(data, value(k, size)) {
						errs <- fmt.Errorf("o%d read back wrong (ok %v, %d bytes)", k, ok, len(data))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.spillOverLimit()
	st := s.Stats()
	if st.MemoryBytes > limit || st.SpilledObjects == 0 || st.MemoryObjects+st.SpilledObjects != n {
		t.Fatalf("stats = %+v; want memory under %d, all %d objects kept", st, limit, n)
	}
	if files := spillFiles(t, dir); len(files) != st.SpilledObjects {
		t.Fatalf("spill dir holds %d files, stats say %d spilled", len(files), st.SpilledObjects)
	}
	s.DropJob("j")
	if files := spillFiles(t, dir); len(files) != 0 {
		t.Fatalf("free left spill files %v", files)
	}
}
