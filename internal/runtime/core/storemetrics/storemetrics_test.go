package storemetrics

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rayk8s/rayk8s/internal/runtime/core/agent"
)

func TestCollectorReportsSpilledObjects(t *testing.T) {
	store := agent.NewStore(agent.StoreOptions{Limit: 100, SpillDir: filepath.Join(t.TempDir(), "spill"), Logger: logr.Discard()})
	t.Cleanup(func() { _ = store.Close() })
	store.Put("a", "j", make([]byte, 80), false)
	store.Put("b", "j", make([]byte, 70), false) // a spills
	if _, _, ok := store.Value("a"); !ok {
		t.Fatal("a is gone")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(New(store.Stats))
	want := `
# HELP ray_object_store_memory Bytes of objects in the node's object store by where they are (labels: Location=MMAP_SHM for memory, SPILLED for disk).
# TYPE ray_object_store_memory gauge
ray_object_store_memory{Location="MMAP_SHM"} 70
ray_object_store_memory{Location="SPILLED"} 80
# HELP ray_object_store_available_memory Bytes the node's object store can still hold in memory before it spills.
# TYPE ray_object_store_available_memory gauge
ray_object_store_available_memory 30
# HELP ray_spill_manager_objects Objects currently spilled to disk on this node (labels: Type=Spilled).
# TYPE ray_spill_manager_objects gauge
ray_spill_manager_objects{Type="Spilled"} 1
# HELP ray_spill_manager_request_total Objects spilled, restored (read back from disk) and failed spills since the node started (labels: Type).
# TYPE ray_spill_manager_request_total counter
ray_spill_manager_request_total{Type="Failed"} 0
ray_spill_manager_request_total{Type="Restored"} 1
ray_spill_manager_request_total{Type="Spilled"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"ray_object_store_memory", "ray_object_store_available_memory", "ray_spill_manager_objects", "ray_spill_manager_request_total"); err != nil {
		t.Fatal(err)
	}
}
