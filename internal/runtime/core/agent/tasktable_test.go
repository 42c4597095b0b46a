package agent

import (
	"fmt"
	"testing"

	"github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
)

// The table keeps at most its limit of rows, dropping the oldest, and a
// job's rows go with the job without disturbing the order of the rest.
func TestTaskTableBounded(t *testing.T) {
	tt := newTaskTable(3)
	add := func(id, job string) {
		tt.row(id, func() *stateapi.Task { return &stateapi.Task{TaskID: id, JobID: job} })
	}
	add("t1", "a")
	add("t2", "b")
	add("t3", "a")
	if got := tt.row("t1", func() *stateapi.Task { t.Fatal("t1 made again"); return nil }); got.JobID != "a" {
		t.Fatalf("row t1 = %+v, want the existing row of job a", got)
	}
	add("t4", "b")
	if _, ok := tt.rows["t1"]; ok || len(tt.rows) != 3 {
		t.Fatalf("rows = %v, want t1 (the oldest) dropped and three left", tt.rows)
	}
	tt.dropJob("b")
	if len(tt.rows) != 1 || tt.rows["t3"] == nil {
		t.Fatalf("rows after dropping job b = %v, want only t3", tt.rows)
	}
	for i := 5; i < 8; i++ {
		add(fmt.Sprintf("t%d", i), "c")
	}
	if len(tt.rows) != 3 || tt.rows["t3"] != nil || tt.rows["t7"] == nil {
		t.Fatalf("rows = %v, want t5..t7: t3 was the oldest left", tt.rows)
	}
	if len(tt.order) != len(tt.rows) {
		t.Fatalf("order holds %d IDs for %d rows", len(tt.order), len(tt.rows))
	}
}
