package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const userHZ = 100

// serverCPUSplit is the CPU time (user and system) this process and its
// descendants have used so far, but for the load generator (wrk): the
// proxy and head node here, replica processes, the Go servers and nginx.
// Sampled around a load run, it gives the CPU the serving side spent per
// request, which other work on a shared machine disturbs much less than
// it disturbs QPS. It is split by process: this one ("bench process"),
// those in names by their name there, and every other process by its
// command name, which tells which hop of a path spends the CPU; processes
// of one name add up. ok is false where /proc cannot tell.
func serverCPUSplit(names map[int]string) (split map[string]time.Duration, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	type proc struct {
		ppid  int
		comm  string
		ticks int64
	}
	procs := map[int]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15); comm may hold spaces.
		s := string(raw)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[pid] = proc{ppid: ppid, comm: s[open+1 : end], ticks: ut + st}
	}
	self := os.Getpid()
	if _, found := procs[self]; !found {
		return nil, false
	}
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	split = map[string]time.Duration{}
	for todo := []int{self}; len(todo) > 0; {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		name := procs[pid].comm
		if pid == self {
			name = "bench process"
		} else if n, ok := names[pid]; ok {
			name = n
		}
		if name != "wrk" {
			split[name] += time.Duration(procs[pid].ticks) * time.Second / userHZ
		}
		todo = append(todo, children[pid]...)
	}
	return split, true
}
