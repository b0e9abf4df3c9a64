//go:build unix

package server

import (
	"net"
	"syscall"
	"unsafe"
)

// fdOf returns the file descriptor of a plain TCP connection, for direct
// non-blocking writes from the fan-out goroutine; ok is false for any
// other connection.
//
// The descriptor is used without Go's poller (no fd lock, no poll
// descriptor reset per write): the subscriber writes to it only while it
// holds s.mu in a state before stateClosed, and the connection is closed
// only after the state became stateClosed under s.mu (finish), so the
// number cannot be closed, or reused by another connection, under a write.
func fdOf(c net.Conn) (fd int, ok bool) {
	tc, isTCP := c.(*net.TCPConn)
	if !isTCP {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return 0, false
	}
	return fd, true
}

// writeNonblock writes as much of p as the socket takes now, without
// parking the goroutine: the fan-out never waits for one slow client.
//
// Go's sockets are non-blocking, so write(2) returns at once (EAGAIN when
// it is full). It is issued with RawSyscall, without telling the Go
// scheduler: a scheduler that sees the goroutine in a syscall hands its P
// to another thread, and at one write per delivery that handoff (futex
// wake-ups, a spinning thread) cost more CPU than the writes themselves.
func writeNonblock(fd int, p []byte) (int, error) {
	for {
		n, err := rawWrite(uintptr(fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, nil
		case err != nil:
			return 0, err
		}
		return n, nil
	}
}

func rawWrite(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
