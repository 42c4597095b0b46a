package proxy

import (
	"regexp"
	"sync"
	"testing"

	"github.com/go-logr/logr"
)

// Generated request IDs are version 4 UUIDs and do not repeat, from one
// goroutine or many.
func TestRequestIDsAreDistinctV4UUIDs(t *testing.T) {
	p := New(nil, logr.Discard(), nil)
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				id := p.newRequestID()
				mu.Lock()
				if !uuid4.MatchString(id) || seen[id] {
					t.Errorf("request ID %q: not a v4 UUID, or seen before", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
