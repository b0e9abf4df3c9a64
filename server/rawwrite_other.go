//go:build !unix

package server

import (
	"errors"
	"net"
)

// fdOf reports no descriptor: direct writes are a unix optimisation;
// elsewhere every subscriber has a writer goroutine.
func fdOf(net.Conn) (int, bool) { return 0, false }

func writeNonblock(int, []byte) (int, error) {
	return 0, errors.New("direct writes are not supported on this platform")
}
