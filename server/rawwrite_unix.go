//go:build unix

package server

import (
	"errors"
	"net"
	"syscall"
	"unsafe"
)

// rawConnOf returns the syscall.RawConn of a plain TCP connection, which
// allows non-blocking writes from the fan-out goroutine.
func rawConnOf(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeNonblock writes as much of p as the socket takes now, without
// parking the goroutine: the fan-out never waits for one slow client.
//
// The socket is non-blocking, so write(2) returns at once (EAGAIN when it is
// full). That is why it is issued with RawSyscall, without telling the Go
// scheduler: a scheduler that sees the goroutine in a syscall hands its P
// to another thread, and at one write per delivery that handoff (futex
// wake-ups, a spinning thread) cost more CPU than the writes themselves.
func writeNonblock(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = rawWrite(fd, p)
			if werr != syscall.EINTR {
				return true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	if errors.Is(werr, syscall.EAGAIN) {
		return n, nil
	}
	return n, werr
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
