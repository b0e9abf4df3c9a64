//go:build unix

package server

import (
	"errors"
	"net"
	"syscall"
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
func writeNonblock(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
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
