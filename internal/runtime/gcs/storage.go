package gcs

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Storage is where the control service keeps its tables and the internal KV:
// MemoryStorage by default, RedisStorage when the head runs with GCS fault
// tolerance so that a restarted head keeps its state. A write returns only
// once the store has taken it.
type Storage interface {
	Get(ctx context.Context, namespace, key string) (value []byte, found bool, err error)
	// Put stores value. When the key exists and overwrite is false the old
	// value is kept. added reports whether the key was new.
	Put(ctx context.Context, namespace, key string, value []byte, overwrite bool) (added bool, err error)
	Delete(ctx context.Context, namespace, key string) (deleted bool, err error)
	// Keys returns the keys of namespace starting with prefix, sorted.
	Keys(ctx context.Context, namespace, prefix string) ([]string, error)
}

// HealthChecker is implemented by a Storage that can become unreachable; the
// head reports itself unhealthy while CheckHealth fails.
type HealthChecker interface {
	CheckHealth(ctx context.Context) error
}

// MemoryStorage is a Storage that lives and dies with the process.
type MemoryStorage struct {
	mu   sync.RWMutex
	data map[string]map[string][]byte
}

var _ Storage = (*MemoryStorage)(nil)

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{data: map[string]map[string][]byte{}}
}

func (m *MemoryStorage) Get(_ context.Context, namespace, key string) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.data[namespace][key]
	if !ok {
		return nil, false, nil
	}
	return slices.Clone(v), true, nil
}

func (m *MemoryStorage) Put(_ context.Context, namespace, key string, value []byte, overwrite bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ns, ok := m.data[namespace]
	if !ok {
		ns = map[string][]byte{}
		m.data[namespace] = ns
	}
	_, exists := ns[key]
	if exists && !overwrite {
		return false, nil
	}
	ns[key] = slices.Clone(value)
	return !exists, nil
}

func (m *MemoryStorage) Delete(_ context.Context, namespace, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[namespace][key]; !ok {
		return false, nil
	}
	delete(m.data[namespace], key)
	return true, nil
}

func (m *MemoryStorage) Keys(_ context.Context, namespace, prefix string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var keys []string
	for k := range m.data[namespace] {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}
