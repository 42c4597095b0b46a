// Package rawsock reads and writes connected sockets with raw system
// calls instead of the net package's.
//
// The net package enters the Go scheduler's system-call state for every
// read and write, even on a nonblocking socket that cannot block. After a
// moment in which all of a process's Ps were idle, the first such entry
// wakes the runtime's monitor thread (sysmon) from its deep sleep and
// restarts its 20 µs polling; a server whose Ps go idle between bursts of
// requests therefore keeps sysmon polling. Each poll is a timer sleep,
// which on a virtual machine costs exits to the hypervisor: under the
// serve benchmark's load, sysmon took a tenth of a core in the proxy's
// process and a sixth in a Go replica's (docs/performance.md).
//
// A read or write on a nonblocking socket returns at once, so it needs no
// hand-off of its P to another thread, which is all the system-call state
// is for. The runtime's poller still parks a goroutine whose socket is not
// ready, and deadlines and Close behave as on the net.Conn wrapped.
//
// Like the node runtime that uses it, the package builds on Linux only.
package rawsock
