package agent

import (
	"bytes"
	"container/list"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// StoreOptions configures a Store.
type StoreOptions struct {
	// Limit is how many bytes of values the store keeps in memory; past it the
	// least recently used values not being read are spilled to SpillDir.
	// Zero means no limit: nothing is ever spilled.
	Limit int64
	// SpillDir receives spilled values, one file each; it is created on the
	// first spill and removed by Close.
	SpillDir string
	Logger   logr.Logger
}

// Where a value lives.
type placement int

const (
	inMemory placement = iota
	// spilling: being written out; still readable from memory meanwhile.
	spilling
	onDisk
)

// object is one entry of the node's object store. An entry exists before
// its value does: getters wait on ready.
type object struct {
	id    string
	ready chan struct{}
	// data is the pickled value, or the pickled exception when isErr; nil
	// once spilled.
	data  []byte
	size  int64
	isErr bool
	job   string
	where placement
	// file holds the value once spilled.
	file string
	// pins counts readers streaming the value; a pinned value is not spilled.
	pins int
	// lru is the entry's element in Store.lru while it is in memory and ready.
	lru *list.Element
	// dropped is set when the object is freed, so that a spill in flight
	// deletes the file it wrote.
	dropped bool
	// waiters are OnReady registrations waiting for this value.
	waiters []*readyWaiter
}

// readyWaiter is one OnReady registration: fn runs when missing reaches
// zero, unless it was cancelled first.
type readyWaiter struct {
	missing int
	fired   bool
	fn      func()
}

// StoreStats are the store's gauges and counters, for metrics and logs.
type StoreStats struct {
	Limit          int64
	MemoryBytes    int64
	MemoryObjects  int
	SpilledBytes   int64
	SpilledObjects int
	// Spills and Restores count values written to and read back from disk
	// since the store started; SpillFailures counts failed writes.
	Spills, Restores, SpillFailures       int64
	SpilledBytesTotal, RestoredBytesTotal int64
}

// Store is the node's object store: values in memory up to a limit, the
// rest spilled to files.
type Store struct {
	opts StoreOptions

	mu   sync.Mutex
	objs map[string]*object
	// lru orders the in-memory, unpinned-or-not, ready values; the front is
	// the most recently used.
	lru   *list.List
	stats StoreStats
	// made records that SpillDir exists; closed that the node stopped.
	made, closed bool
}

// NewStore returns an empty Store.
func NewStore(opts StoreOptions) *Store {
	if opts.Limit < 0 {
		opts.Limit = 0
	}
	return &Store{opts: opts, objs: map[string]*object{}, lru: list.New(), stats: StoreStats{Limit: opts.Limit}}
}

func (s *Store) entry(id string) *object {
	o, ok := s.objs[id]
	if !ok {
		o = &object{id: id, ready: make(chan struct{})}
		s.objs[id] = o
	}
	return o
}

// Put sets an object's value once; later puts of the same id (a retried
// task's second result) are ignored. When the store is over its limit, Put
// spills values before it returns; a value larger than the whole limit goes
// straight to disk, as Ray's fallback allocation accepts it.
func (s *Store) Put(id, job string, data []byte, isErr bool) {
	s.put(id, job, data, isErr, false)
}

// FailPending sets the error value data for id when id has an entry still
// waiting for its value (expected, or waited for), under the entry's job,
// and reports whether it did. An id without an entry (never expected, or
// freed with its job) stays without one, and a value already there stays.
func (s *Store) FailPending(id string, data []byte) bool {
	return s.put(id, "", data, true, true)
}

// put is Put; onlyPending restricts it to entries that exist and wait.
func (s *Store) put(id, job string, data []byte, isErr, onlyPending bool) bool {
	size := int64(len(data))
	s.mu.Lock()
	o, found := s.objs[id]
	if !found {
		if onlyPending {
			s.mu.Unlock()
			return false
		}
		o = s.entry(id)
	}
	select {
	case <-o.ready:
		s.mu.Unlock()
		return false
	default:
	}
	o.isErr, o.size = isErr, size
	if !onlyPending {
		o.job = job
	}
	if s.opts.Limit > 0 && size > s.opts.Limit {
		s.mu.Unlock()
		s.putOnDisk(o, data)
		return true
	}
	o.data, o.where = data, inMemory
	o.lru = s.lru.PushFront(o)
	s.stats.MemoryBytes += size
	s.stats.MemoryObjects++
	close(o.ready)
	due := readyLocked(o)
	s.mu.Unlock()
	for _, fn := range due {
		fn()
	}
	s.spillOverLimit()
	return true
}

// readyLocked counts o's value in for its waiters and returns the
// callbacks that are due; the caller holds mu and runs them after
// releasing it.
func readyLocked(o *object) []func() {
	var due []func()
	for _, w := range o.waiters {
		w.missing--
		if w.missing == 0 && !w.fired {
			w.fired = true
			due = append(due, w.fn)
		}
	}
	o.waiters = nil
	return due
}

// OnReady calls fn once every id has a value: at once, on this goroutine,
// when they all have one, else on the goroutine of the Put that completes
// them, so fn must be quick. cancel stops a call that has not happened and
// reports whether it stopped it. A value dropped before it was stored (its
// job ended) never completes the registration, as a waiting get never ends.
func (s *Store) OnReady(ids []string, fn func()) (cancel func() bool) {
	w := &readyWaiter{fn: fn}
	s.mu.Lock()
	for _, id := range ids {
		o := s.entry(id)
		select {
		case <-o.ready:
		default:
			w.missing++
			o.waiters = append(o.waiters, w)
		}
	}
	now := w.missing == 0
	w.fired = now
	s.mu.Unlock()
	if now {
		fn()
	}
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.fired {
			return false
		}
		w.fired = true
		return true
	}
}

// InMemory reports whether id's value is ready and held in memory (reading
// it needs no disk).
func (s *Store) InMemory(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[id]
	if !ok || o.where == onDisk {
		return false
	}
	select {
	case <-o.ready:
		return true
	default:
		return false
	}
}

// putOnDisk stores a value too large for memory; if the write fails it is
// kept in memory, over the limit, rather than lost.
func (s *Store) putOnDisk(o *object, data []byte) {
	path, err := s.writeFile(o.id, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.stats.SpillFailures++
		s.opts.Logger.Error(err, "Storing an object larger than the object store on disk failed; keeping it in memory",
			"object", o.id, "bytes", o.size, "limit", s.opts.Limit)
		o.data, o.where = data, inMemory
		o.lru = s.lru.PushFront(o)
		s.stats.MemoryBytes += o.size
		s.stats.MemoryObjects++
	} else {
		o.file, o.where = path, onDisk
		s.countSpilled(o.size)
		s.opts.Logger.Info("Stored an object larger than the object store on disk", "object", o.id, "bytes", o.size, "limit", s.opts.Limit)
	}
	if o.dropped {
		// Freed while the file was written (its job ended).
		s.forget(o)
	}
	close(o.ready)
	due := readyLocked(o)
	if len(due) > 0 {
		// mu is held until return: the callbacks run after it.
		go func() {
			for _, fn := range due {
				fn()
			}
		}()
	}
}

// spillOverLimit writes the least recently used values that no reader
// holds to disk until memory is back under the limit. Victims are chosen
// under the lock and written outside it; readers meanwhile still get them
// from memory.
func (s *Store) spillOverLimit() {
	if s.opts.Limit == 0 {
		return
	}
	s.mu.Lock()
	type victim struct {
		o    *object
		data []byte
	}
	var victims []victim
	over := s.stats.MemoryBytes - s.opts.Limit
	for e := s.lru.Back(); e != nil && over > 0; {
		o := e.Value.(*object)
		prev := e.Prev()
		if o.pins == 0 {
			s.lru.Remove(e)
			o.lru = nil
			o.where = spilling
			victims = append(victims, victim{o, o.data})
			over -= o.size
		}
		e = prev
	}
	s.mu.Unlock()
	if len(victims) == 0 {
		return
	}
	start := time.Now()
	var written int64
	var count int
	for _, v := range victims {
		o := v.o
		path, err := s.writeFile(o.id, v.data)
		s.mu.Lock()
		switch {
		case err != nil:
			s.stats.SpillFailures++
			s.opts.Logger.Error(err, "Spilling an object failed; it stays in memory", "object", o.id, "bytes", o.size)
			o.where = inMemory
			if !o.dropped {
				o.lru = s.lru.PushBack(o)
			}
		case o.dropped:
			_ = os.Remove(path)
		default:
			o.file, o.where, o.data = path, onDisk, nil
			s.stats.MemoryBytes -= o.size
			s.stats.MemoryObjects--
			s.countSpilled(o.size)
			written += o.size
			count++
		}
		s.mu.Unlock()
	}
	if count > 0 {
		s.opts.Logger.Info("Spilled objects to disk", "objects", count, "bytes", written,
			"seconds", time.Since(start).Seconds(), "dir", s.opts.SpillDir)
	}
}

// countSpilled records a value now on disk; the caller holds mu.
func (s *Store) countSpilled(size int64) {
	s.stats.SpilledBytes += size
	s.stats.SpilledObjects++
	s.stats.Spills++
	s.stats.SpilledBytesTotal += size
}

// safeName matches object ids usable as file names as they are.
var safeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// writeFile writes one spilled value.
func (s *Store) writeFile(id string, data []byte) (string, error) {
	s.mu.Lock()
	made, closed := s.made, s.closed
	s.mu.Unlock()
	if closed {
		return "", errors.New("the object store is closed")
	}
	if !made {
		if err := os.MkdirAll(s.opts.SpillDir, 0o700); err != nil {
			return "", fmt.Errorf("creating the spill directory: %w", err)
		}
		s.mu.Lock()
		s.made = true
		s.mu.Unlock()
	}
	name := id
	if !safeName.MatchString(name) {
		name = hex.EncodeToString([]byte(id))
	}
	path := filepath.Join(s.opts.SpillDir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("spilling object %s: %w", id, err)
	}
	return path, nil
}

// forget removes a freed object's value; the caller holds mu and has
// deleted it from objs. A value being written out is removed by the writer.
func (s *Store) forget(o *object) {
	o.dropped = true
	o.waiters = nil
	switch o.where {
	case inMemory:
		select {
		case <-o.ready:
			s.stats.MemoryBytes -= o.size
			s.stats.MemoryObjects--
		default:
		}
		if o.lru != nil {
			s.lru.Remove(o.lru)
			o.lru = nil
		}
		o.data = nil
	case spilling:
		s.stats.MemoryBytes -= o.size
		s.stats.MemoryObjects--
	case onDisk:
		if o.file != "" {
			// A reader with the file open keeps reading it after the unlink.
			_ = os.Remove(o.file)
			s.stats.SpilledBytes -= o.size
			s.stats.SpilledObjects--
			o.file = ""
		}
	}
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

// Value returns id's value once ready; a spilled value is read back from
// its file into a buffer of the caller's (the store keeps it on disk).
func (s *Store) Value(id string) (data []byte, isErr, ok bool) {
	r, err := s.Open(id)
	if err != nil {
		return nil, false, false
	}
	defer func() { _ = r.Close() }()
	if r.mem != nil {
		return r.mem, r.IsErr, true
	}
	data = make([]byte, r.Size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, false, false
	}
	return data, r.IsErr, true
}

// errNotReady is Open's error for an id without a value here.
var errNotReady = errors.New("the object has no value on this node")

// ObjectReader streams one value; Close releases it.
type ObjectReader struct {
	io.Reader
	Size  int64
	IsErr bool
	// mem is the value when it is in memory.
	mem     []byte
	file    *os.File
	release func()
}

// Close ends the read: the value may be spilled again.
func (r *ObjectReader) Close() error {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	if r.file != nil {
		return r.file.Close()
	}
	return nil
}

// Open starts reading id's value: from memory, pinned there (not spilled)
// until Close, or from its spill file, which stays readable even if the
// object is freed meanwhile.
func (s *Store) Open(id string) (*ObjectReader, error) {
	s.mu.Lock()
	o, found := s.objs[id]
	if !found {
		s.mu.Unlock()
		return nil, errNotReady
	}
	select {
	case <-o.ready:
	default:
		s.mu.Unlock()
		return nil, errNotReady
	}
	if o.where != onDisk {
		o.pins++
		if o.lru != nil {
			s.lru.MoveToFront(o.lru)
		}
		data := o.data
		s.mu.Unlock()
		return &ObjectReader{Reader: bytes.NewReader(data), Size: int64(len(data)), IsErr: o.isErr, mem: data,
			release: func() { s.unpin(o) }}, nil
	}
	path, size, isErr := o.file, o.size, o.isErr
	s.mu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		// Freed between the lookup and the open.
		return nil, fmt.Errorf("reading spilled object %s: %w", id, err)
	}
	s.mu.Lock()
	s.stats.Restores++
	s.stats.RestoredBytesTotal += size
	s.mu.Unlock()
	return &ObjectReader{Reader: f, Size: size, IsErr: isErr, file: f}, nil
}

func (s *Store) unpin(o *object) {
	s.mu.Lock()
	o.pins--
	s.mu.Unlock()
	// Values held past the limit by readers may go now.
	s.spillOverLimit()
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

// DropJob removes the objects a job created, when its driver exits, and
// deletes their spill files.
func (s *Store) DropJob(job string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.objs {
		if o.job == job {
			delete(s.objs, id)
			s.forget(o)
		}
	}
}

// Close deletes the spill directory, when the node stops.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.objs {
		delete(s.objs, id)
		s.forget(o)
	}
	if s.opts.SpillDir == "" {
		return nil
	}
	s.closed = true
	if err := os.RemoveAll(s.opts.SpillDir); err != nil {
		return fmt.Errorf("removing the spill directory: %w", err)
	}
	return nil
}

// Stats returns the store's gauges and counters.
func (s *Store) Stats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Len is the number of entries, for metrics and tests.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objs)
}

// objectInfo describes one entry for the state API.
type objectInfo struct {
	id      string
	job     string
	size    int
	ready   bool
	spilled bool
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
		out = append(out, objectInfo{id: id, job: o.job, size: int(o.size), ready: ready, spilled: o.where == onDisk})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
