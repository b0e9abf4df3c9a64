package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrHeadTooLarge is returned by Handshake when the response head does not
// fit the buffer.
var ErrHeadTooLarge = errors.New("response head larger than the read buffer")

// Handshake is the client side of a subscription over a raw connection:
// it writes req (a whole HTTP/1.1 GET request) to conn and reads the
// response head into buf. buf[:headEnd] is the head, for NewStream, and
// buf[headEnd:n] the body bytes that came with it, to Feed first. req may
// live in buf: it is written before anything is read. The caller sets the
// connection's deadline.
func Handshake(conn io.ReadWriter, req, buf []byte) (headEnd, n int, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, 0, fmt.Errorf("write subscribe request: %w", err)
	}
	for {
		if n == len(buf) {
			return 0, n, fmt.Errorf("%w (%d bytes)", ErrHeadTooLarge, len(buf))
		}
		m, err := conn.Read(buf[n:])
		// The blank line can only end in the bytes just read, or straddle
		// their start.
		from := max(0, n-3)
		n += m
		if i := bytes.Index(buf[from:n], []byte("\r\n\r\n")); i >= 0 {
			return from + i + 4, n, nil
		}
		if err != nil {
			return 0, n, fmt.Errorf("read response head: %w", err)
		}
	}
}
