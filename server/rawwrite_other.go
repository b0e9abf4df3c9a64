//go:build !unix

package server

import (
	"errors"
	"net"
	"syscall"
)

// rawConnOf returns nil: direct writes are a unix optimisation; elsewhere
// every subscriber has a writer goroutine.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func writeNonblock(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("direct writes are not supported on this platform")
}
