// Package gcfloor keeps the Go collector from running over and over on a
// small heap.
//
// The collector starts a cycle when the heap has grown by GOGC percent of
// what the last cycle left live, and at least to 4 MB. A node agent or a
// replica keeps a few MB live while its proxy and routers allocate about a
// kilobyte per request, so at the default the collector ran several times
// a second under load, each cycle waking a thread per core. Holding a
// block that has no pointers raises the live heap the pacer sees without
// adding marking work, and without memory either: the block's pages are
// never written, so they are never resident. What it costs is garbage:
// between cycles the heap may grow by about the floor before it is
// collected. Unlike a larger GOGC the cost is a constant, not a multiple of
// a live heap that may be gigabytes.
package gcfloor

import (
	"fmt"
	"runtime"
	"strconv"
)

// EnvVar sets the floor in MiB (0 turns it off) for `ray start` and
// `ray serve-replica`.
const EnvVar = "RAYK8S_GC_FLOOR_MB"

// Defaults in MiB: a node agent runs one per pod and allocates on every
// proxied request; a built-in replica allocates less and may run many.
const (
	NodeDefaultMB    = 64
	ReplicaDefaultMB = 16
	maxMB            = 1 << 16
)

// FromEnv is the floor EnvVar asks for, or def when it is unset.
func FromEnv(getenv func(string) string, def int) (int, error) {
	raw := getenv(EnvVar)
	if raw == "" {
		return def, nil
	}
	mb, err := strconv.Atoi(raw)
	if err != nil || mb < 0 || mb > maxMB {
		return 0, fmt.Errorf("%s=%q: want a whole number of MiB from 0 (off) to %d", EnvVar, raw, maxMB)
	}
	return mb, nil
}

// Floor is a held floor; it lasts until Release.
type Floor struct{ block []byte }

// Hold raises the heap the collector paces against by mb MiB (0: nothing
// is held). Call it early: a block the heap takes from pages it already
// used would be zeroed, and so resident.
func Hold(mb int) *Floor {
	if mb <= 0 {
		return &Floor{}
	}
	return &Floor{block: make([]byte, mb<<20)}
}

// Size is the floor in bytes.
func (f *Floor) Size() int { return len(f.block) }

// Release lets the collector take the block back.
func (f *Floor) Release() {
	runtime.KeepAlive(f.block)
	f.block = nil
}
