package gcs

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"

	"github.com/rayk8s/rayk8s/internal/testsupport/redisproc"
)

// storageContract is the behaviour every Storage implementation promises. Each case gets an
// empty storage.
var storageContract = []struct {
	name string
	run  func(t *testing.T, st Storage)
}{
	{"a missing key is not found", func(t *testing.T, st Storage) {
		v, ok, err := st.Get(ctx(), "ns", "k")
		if err != nil || ok || v != nil {
			t.Fatalf("Get of a missing key = %q, %v, %v; want nil, false, nil", v, ok, err)
		}
	}},
	{"put of a new key adds it", func(t *testing.T, st Storage) {
		mustPut(t, st, "ns", "k", "v1", false, true)
		mustGet(t, st, "ns", "k", "v1")
	}},
	{"put without overwrite keeps the old value", func(t *testing.T, st Storage) {
		mustPut(t, st, "ns", "k", "v1", false, true)
		mustPut(t, st, "ns", "k", "v2", false, false)
		mustGet(t, st, "ns", "k", "v1")
	}},
	{"put with overwrite replaces the value and reports the key as not new", func(t *testing.T, st Storage) {
		mustPut(t, st, "ns", "k", "v1", true, true)
		mustPut(t, st, "ns", "k", "v2", true, false)
		mustGet(t, st, "ns", "k", "v2")
	}},
	{"delete removes a key once", func(t *testing.T, st Storage) {
		mustPut(t, st, "ns", "k", "v", false, true)
		if deleted, err := st.Delete(ctx(), "ns", "k"); err != nil || !deleted {
			t.Fatalf("Delete = %v, %v; want true", deleted, err)
		}
		if _, ok, _ := st.Get(ctx(), "ns", "k"); ok {
			t.Fatal("key still found after Delete")
		}
		if deleted, err := st.Delete(ctx(), "ns", "k"); err != nil || deleted {
			t.Fatalf("second Delete = %v, %v; want false", deleted, err)
		}
	}},
	{"keys lists one namespace's keys with the prefix, sorted", func(t *testing.T, st Storage) {
		for _, k := range []string{"job:b", "job:a", "other", "job:c"} {
			mustPut(t, st, "ns", k, "v", false, true)
		}
		mustPut(t, st, "ns2", "job:z", "v", false, true)
		keys, err := st.Keys(ctx(), "ns", "job:")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"job:a", "job:b", "job:c"}; !slices.Equal(keys, want) {
			t.Fatalf("Keys = %q, want %q", keys, want)
		}
		all, err := st.Keys(ctx(), "ns", "")
		if err != nil || len(all) != 4 {
			t.Fatalf("Keys with no prefix = %q, %v; want the 4 keys of ns", all, err)
		}
		none, err := st.Keys(ctx(), "empty", "")
		if err != nil || len(none) != 0 {
			t.Fatalf("Keys of an empty namespace = %q, %v; want none", none, err)
		}
	}},
	{"namespaces keep the same key apart", func(t *testing.T, st Storage) {
		mustPut(t, st, "a", "k", "in a", false, true)
		mustPut(t, st, "b", "k", "in b", false, true)
		mustGet(t, st, "a", "k", "in a")
		mustGet(t, st, "b", "k", "in b")
		if deleted, _ := st.Delete(ctx(), "a", "k"); !deleted {
			t.Fatal("Delete in a failed")
		}
		mustGet(t, st, "b", "k", "in b")
	}},
	{"namespace names with separators and escapes do not collide", func(t *testing.T, st Storage) {
		names := []string{"x@y", "x%40y", "x", "@rayk8s_nodes", "%", ""}
		for _, ns := range names {
			mustPut(t, st, ns, "k", "value of "+ns, false, true)
		}
		for _, ns := range names {
			mustGet(t, st, ns, "k", "value of "+ns)
			if keys, err := st.Keys(ctx(), ns, ""); err != nil || !slices.Equal(keys, []string{"k"}) {
				t.Errorf("Keys(%q) = %q, %v; want [k]", ns, keys, err)
			}
		}
	}},
	{"binary and empty values round-trip", func(t *testing.T, st Storage) {
		bin := []byte{0, 1, 2, 0xff, '\r', '\n', 0}
		if _, err := st.Put(ctx(), "ns", "bin", bin, true); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := st.Get(ctx(), "ns", "bin"); err != nil || !ok || !bytes.Equal(v, bin) {
			t.Fatalf("Get(bin) = %v, %v, %v; want %v", v, ok, err, bin)
		}
		big := bytes.Repeat([]byte("package-bytes-"), 600_000) // ~8 MiB, a working_dir zip
		if _, err := st.Put(ctx(), "ns", "big", big, true); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := st.Get(ctx(), "ns", "big"); err != nil || !ok || !bytes.Equal(v, big) {
			t.Fatalf("Get(big) = %d bytes, %v, %v; want %d bytes back", len(v), ok, err, len(big))
		}
		mustPut(t, st, "ns", "empty", "", true, true)
		if v, ok, err := st.Get(ctx(), "ns", "empty"); err != nil || !ok || len(v) != 0 {
			t.Fatalf("Get(empty) = %q, %v, %v; want an empty, found value", v, ok, err)
		}
	}},
	{"values handed out and taken in are copies", func(t *testing.T, st Storage) {
		in := []byte("abc")
		if _, err := st.Put(ctx(), "ns", "k", in, true); err != nil {
			t.Fatal(err)
		}
		in[0] = 'X'
		v, _, _ := st.Get(ctx(), "ns", "k")
		v[1] = 'Y'
		mustGet(t, st, "ns", "k", "abc")
	}},
}

func ctx() context.Context { return context.Background() }

func mustPut(t *testing.T, st Storage, ns, k, v string, overwrite, wantAdded bool) {
	t.Helper()
	added, err := st.Put(ctx(), ns, k, []byte(v), overwrite)
	if err != nil {
		t.Fatalf("Put(%s/%s): %v", ns, k, err)
	}
	if added != wantAdded {
		t.Fatalf("Put(%s/%s, overwrite=%v) added = %v, want %v", ns, k, overwrite, added, wantAdded)
	}
}

func mustGet(t *testing.T, st Storage, ns, k, want string) {
	t.Helper()
	v, ok, err := st.Get(ctx(), ns, k)
	if err != nil || !ok || string(v) != want {
		t.Fatalf("Get(%s/%s) = %q, %v, %v; want %q", ns, k, v, ok, err, want)
	}
}

// TestStorageContract runs the contract against MemoryStorage and against RedisStorage on a
// real redis-server (skipped only where redis-server is not installed).
func TestStorageContract(t *testing.T) {
	impls := []struct {
		name string
		// setup runs once per implementation and returns how to open an empty storage.
		setup func(t *testing.T) func(t *testing.T) Storage
	}{
		{"memory", func(*testing.T) func(*testing.T) Storage {
			return func(*testing.T) Storage { return NewMemoryStorage() }
		}},
		{"redis", func(t *testing.T) func(*testing.T) Storage {
			srv := redisproc.Start(t, redisproc.Options{})
			var n atomic.Int32
			// Every case gets a cluster namespace of its own, so it starts empty.
			return func(t *testing.T) Storage {
				return openRedis(t, srv.Addr(), fmt.Sprintf("case%d", n.Add(1)))
			}
		}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			open := impl.setup(t)
			for _, c := range storageContract {
				t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
			}
		})
	}
}

func openRedis(t *testing.T, addr, namespace string) *RedisStorage {
	t.Helper()
	st, err := NewRedisStorage(ctx(), StorageConfig{RedisAddress: addr, Namespace: namespace, ConnectRetries: 1}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
