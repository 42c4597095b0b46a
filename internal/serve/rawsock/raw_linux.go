package rawsock

import (
	"syscall"
	"unsafe"
)

// rawRead and rawWrite are read(2) and write(2) without the scheduler's
// system-call state: the socket is nonblocking, so they cannot block.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}

func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}

// isStream says whether the socket is a SOCK_STREAM one.
func isStream(rc syscall.RawConn) bool {
	typ := -1
	if err := rc.Control(func(fd uintptr) {
		typ, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE)
	}); err != nil {
		return false
	}
	return typ == syscall.SOCK_STREAM
}
