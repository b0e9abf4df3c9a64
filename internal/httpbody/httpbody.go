// Package httpbody strips HTTP/1.1 response body framing — the chunked
// transfer coding, a Content-Length, or a body that runs until the server
// closes the connection — from bytes read off a raw connection.
//
// It is for clients that read their sockets themselves (darktime's load
// generators hold thousands of connections with one read buffer each and
// no net/http): the Decoder is fed the read buffer in place, any split,
// and passes the payload on without copying it.
package httpbody

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Framing is how a response delimits its body.
type Framing uint8

const (
	UntilClose    Framing = iota // the body ends when the server closes the connection
	Chunked                      // Transfer-Encoding: chunked
	ContentLength                // Content-Length bytes
)

func (f Framing) String() string {
	switch f {
	case UntilClose:
		return "until-close"
	case Chunked:
		return "chunked"
	case ContentLength:
		return "content-length"
	}
	return "Framing(" + strconv.Itoa(int(f)) + ")"
}

// ErrBodyEnded is returned by Decoder.Feed when the body ended in the
// bytes fed (the last chunk, or the last of Content-Length): the bytes
// before the end were passed on, the rest were not.
var ErrBodyEnded = errors.New("the server ended the response body")

// ErrMalformed wraps every error about a body that breaks the chunked
// coding.
var ErrMalformed = errors.New("malformed chunked body")

// Sink receives the payload of a body. Feed's slice is only valid during
// the call; an error stops the Decoder's Feed, which returns it.
type Sink interface {
	Feed(b []byte) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(b []byte) error

// Feed calls f(b).
func (f SinkFunc) Feed(b []byte) error { return f(b) }

// chunked decoder states.
const (
	chunkSize     = iota // hex digits of the size line
	chunkSizeExt         // chunk extension, skipped up to LF
	chunkSizeLF          // CR seen after the size, LF expected
	chunkData            // payload, remaining bytes left
	chunkDataCR          // CRLF after the payload
	chunkDataLF          // CR seen after the payload, LF expected
	chunkFinished        // zero-size chunk seen
)

// maxChunkSize keeps the size accumulator from overflowing.
const maxChunkSize = 1 << 40

// Decoder strips one response body's framing. Use NewDecoder, or Reset a
// Decoder held by value.
type Decoder struct {
	sink      Sink
	framing   Framing
	state     uint8
	digits    int   // hex digits seen on the current size line
	remaining int64 // chunk or Content-Length bytes still to come
}

// NewDecoder returns a Decoder of a body framed as f that passes the
// payload to sink; length is the Content-Length (ignored otherwise).
func NewDecoder(f Framing, length int64, sink Sink) *Decoder {
	d := &Decoder{}
	d.Reset(f, length, sink)
	return d
}

// Reset makes d a decoder of a new body, as NewDecoder does.
func (d *Decoder) Reset(f Framing, length int64, sink Sink) {
	*d = Decoder{sink: sink, framing: f}
	if f == ContentLength {
		d.remaining = max(length, 0)
	}
}

// Feed consumes the next bytes read from the connection. It returns
// ErrBodyEnded once the body is over, an error wrapping ErrMalformed for a
// broken chunked coding, or the sink's error.
func (d *Decoder) Feed(b []byte) error {
	switch d.framing {
	case UntilClose:
		return d.sink.Feed(b)
	case ContentLength:
		if d.remaining == 0 {
			return ErrBodyEnded
		}
		if int64(len(b)) > d.remaining {
			b = b[:d.remaining]
		}
		d.remaining -= int64(len(b))
		if err := d.sink.Feed(b); err != nil {
			return err
		}
		if d.remaining == 0 {
			return ErrBodyEnded
		}
		return nil
	}
	for len(b) > 0 {
		switch d.state {
		case chunkData:
			n := min(int64(len(b)), d.remaining)
			if err := d.sink.Feed(b[:n]); err != nil {
				return err
			}
			b = b[n:]
			d.remaining -= n
			if d.remaining == 0 {
				d.state = chunkDataCR
			}
			continue
		case chunkFinished:
			return ErrBodyEnded
		}
		c := b[0]
		b = b[1:]
		switch d.state {
		case chunkSize:
			switch {
			case c == '\r':
				d.state = chunkSizeLF
			case c == '\n':
				if err := d.endSizeLine(); err != nil {
					return err
				}
			case c == ';' || c == ' ' || c == '\t':
				d.state = chunkSizeExt
			default:
				v, ok := hexValue(c)
				if !ok {
					return fmt.Errorf("%w: byte %q in a chunk size", ErrMalformed, c)
				}
				d.remaining = d.remaining<<4 | int64(v)
				d.digits++
				if d.remaining > maxChunkSize {
					return fmt.Errorf("%w: chunk size above %d bytes", ErrMalformed, int64(maxChunkSize))
				}
			}
		case chunkSizeExt:
			if c == '\n' {
				if err := d.endSizeLine(); err != nil {
					return err
				}
			}
		case chunkSizeLF:
			if c != '\n' {
				return fmt.Errorf("%w: CR without LF after a chunk size", ErrMalformed)
			}
			if err := d.endSizeLine(); err != nil {
				return err
			}
		case chunkDataCR:
			switch c {
			case '\r':
				d.state = chunkDataLF
			case '\n':
				d.state = chunkSize
			default:
				return fmt.Errorf("%w: no CRLF after chunk data", ErrMalformed)
			}
		case chunkDataLF:
			if c != '\n' {
				return fmt.Errorf("%w: CR without LF after chunk data", ErrMalformed)
			}
			d.state = chunkSize
		}
	}
	if d.state == chunkFinished {
		return ErrBodyEnded
	}
	return nil
}

func (d *Decoder) endSizeLine() error {
	if d.digits == 0 {
		return fmt.Errorf("%w: empty chunk size", ErrMalformed)
	}
	d.digits = 0
	if d.remaining == 0 {
		d.state = chunkFinished // the trailer section is not read: the body is over
		return nil
	}
	d.state = chunkData
	return nil
}

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Head is what a client needs from a response head.
type Head struct {
	Status      int    // status code
	StatusLine  string // the first line, for messages
	ContentType string // the Content-Type field value, "" when absent
	Framing     Framing
	Length      int64 // Content-Length when Framing is ContentLength
}

// ParseHead reads a response head: the status line through the blank
// line (the terminating CRLF CRLF may be included or not). Transfer-Encoding
// chunked wins over Content-Length, as RFC 9112 says.
func ParseHead(head []byte) (Head, error) {
	lines := bytes.Split(bytes.TrimSuffix(head, []byte("\r\n\r\n")), []byte("\r\n"))
	status := lines[0]
	if !bytes.HasPrefix(status, []byte("HTTP/1.")) || len(status) < 12 || status[8] != ' ' {
		return Head{}, fmt.Errorf("bad response status line %q", status)
	}
	code, err := strconv.Atoi(string(status[9:12]))
	if err != nil || code < 100 {
		return Head{}, fmt.Errorf("bad response status line %q", status)
	}
	h := Head{Status: code, StatusLine: string(status), Length: -1}
	for _, line := range lines[1:] {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch string(bytes.ToLower(bytes.TrimSpace(name))) {
		case "transfer-encoding":
			if bytes.Contains(bytes.ToLower(value), []byte("chunked")) {
				h.Framing = Chunked
			}
		case "content-length":
			n, perr := strconv.ParseInt(string(value), 10, 64)
			if perr != nil || n < 0 {
				return Head{}, fmt.Errorf("bad Content-Length %q", value)
			}
			h.Length = n
		case "content-type":
			h.ContentType = string(value)
		}
	}
	switch {
	case h.Framing == Chunked:
		h.Length = 0
	case h.Length >= 0:
		h.Framing = ContentLength
	default:
		h.Length = 0
	}
	return h, nil
}
