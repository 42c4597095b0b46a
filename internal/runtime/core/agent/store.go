package agent

import (
	"context"
	"sort"
	"sync"
)

// object is one entry of the node's object store. An entry exists before
// its value does: getters wait on ready.
type object struct {
	ready chan struct{}
	// data is the pickled value, or the pickled exception when isErr.
	data  []byte
	isErr bool
	job   string
}

// Store is the node's in-memory object store.
type Store struct {
	mu   sync.Mutex
	objs map[string]*object
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{objs: map[string]*object{}} }

func (s *Store) entry(id string) *object {
	o, ok := s.objs[id]
	if !ok {
		o = &object{ready: make(chan struct{})}
		s.objs[id] = o
	}
	return o
}

// Put sets an object's value once; later puts of the same id (a retried
// task's second result) are ignored.
func (s *Store) Put(id, job string, data []byte, isErr bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.entry(id)
	select {
	case <-o.ready:
		return
	default:
	}
	o.data, o.isErr, o.job = data, isErr, job
	close(o.ready)
}

// Expect records that id will get a value (a submitted task's or actor
// call's return), so that a get of it waits instead of finding it unknown.
func (s *Store) Expect(id, job string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.entry(id)
	if o.job == "" {
		o.job = job
	}
}

// Known reports whether id has an entry: a value, or one expected or
// waited for.
func (s *Store) Known(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objs[id]
	return ok
}

// Ready reports whether id has a value.
func (s *Store) Ready(id string) bool {
	s.mu.Lock()
	o, ok := s.objs[id]
	s.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-o.ready:
		return true
	default:
		return false
	}
}

// Value returns id's value once ready.
func (s *Store) Value(id string) (data []byte, isErr, ok bool) {
	s.mu.Lock()
	o, found := s.objs[id]
	s.mu.Unlock()
	if !found {
		return nil, false, false
	}
	select {
	case <-o.ready:
		return o.data, o.isErr, true
	default:
		return nil, false, false
	}
}

// readyChan is closed when id has a value.
func (s *Store) readyChan(id string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entry(id).ready
}

// WaitAll blocks until every id has a value or ctx ends.
func (s *Store) WaitAll(ctx context.Context, ids []string) error {
	for _, id := range ids {
		select {
		case <-s.readyChan(id):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// WaitSome blocks until at least n of ids have values or ctx ends, and
// returns the indexes of the ready ones, in ids' order.
func (s *Store) WaitSome(ctx context.Context, ids []string, n int) []int {
	chans := make([]<-chan struct{}, len(ids))
	for i, id := range ids {
		chans[i] = s.readyChan(id)
	}
	anyReady := make(chan struct{}, len(ids))
	stop := make(chan struct{})
	defer close(stop)
	for _, ch := range chans {
		go func() {
			select {
			case <-ch:
				anyReady <- struct{}{}
			case <-stop:
			}
		}()
	}
	count := 0
	for count < n {
		select {
		case <-anyReady:
			count++
		case <-ctx.Done():
			count = n
		}
	}
	var ready []int
	for i, ch := range chans {
		select {
		case <-ch:
			ready = append(ready, i)
		default:
		}
	}
	return ready
}

// DropJob removes the objects a job created, when its driver exits.
func (s *Store) DropJob(job string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.objs {
		if o.job == job {
			delete(s.objs, id)
		}
	}
}

// Len is the number of entries, for metrics and tests.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objs)
}

// objectInfo describes one entry for the state API.
type objectInfo struct {
	id    string
	job   string
	size  int
	ready bool
}

// Objects lists the entries, sorted by id.
func (s *Store) Objects() []objectInfo {
	s.mu.Lock()
	out := make([]objectInfo, 0, len(s.objs))
	for id, o := range s.objs {
		ready := false
		select {
		case <-o.ready:
			ready = true
		default:
		}
		out = append(out, objectInfo{id: id, job: o.job, size: len(o.data), ready: ready})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
