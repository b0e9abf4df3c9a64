// Package sse encodes and decodes the Server-Sent Events wire format
// (text/event-stream, WHATWG HTML "Server-sent events"). It is darktime's
// one event-stream parser: the server's tests, the swarm and the lean
// benchmark clients, and the shadow proxy all read events with it.
//
// The encoder appends to a caller's buffer so a server can encode an event
// once and write the same bytes to every subscriber.
//
// The Decoder is incremental and in place: it is fed bytes as they are
// read, in any split, and hands each dispatched event to a callback as
// slices of its own buffers, following the standard's interpretation
// algorithm to the letter (see Decoder). Stream puts it behind the HTTP/1.1
// body framing of a raw connection; Reader puts it behind an io.Reader and
// returns copies, one event per call.
package sse

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ContentType is the media type of an event stream.
const ContentType = "text/event-stream"

// Event is one server-sent event as the encoder writes it and the Reader
// returns it.
type Event struct {
	// ID is the id field. Encoding, "" writes none (unless HasID); the
	// Reader gives the stream's last event ID, which persists across
	// events.
	ID string
	// Event is the event type. Encoding, "" writes no event line, which
	// a client reads as "message"; the Reader gives "message" then.
	Event string
	Data  []byte // data lines joined with "\n"
	// Retry is a reconnection time in ms: encoding, a retry line when
	// positive; the Reader gives the stream's from its last retry field,
	// 0 when none came.
	Retry int
	// HasID makes the encoder write an id line even for an empty ID,
	// which resets the client's last event ID; the Reader sets it when ID
	// is not empty.
	HasID bool
}

// ErrInvalidField is returned by the encoder for an id or event name that
// would break the framing (it contains CR, LF or, for ids, NUL).
var ErrInvalidField = errors.New("sse: field contains a line break or NUL")

// ValidField reports whether s can be sent as an id or event field.
func ValidField(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}

// AppendEvent appends the wire form of ev, including the terminating blank
// line, to dst. Data is split into one data line per line of the input (LF,
// CRLF and CR all end a line, as a parser will see them), so the receiver
// gets the data back with LF line breaks. It returns ErrInvalidField when
// ID or Event contain a line break.
func AppendEvent(dst []byte, ev Event) ([]byte, error) {
	if !ValidField(ev.ID) || !ValidField(ev.Event) {
		return dst, ErrInvalidField
	}
	if ev.ID != "" || ev.HasID {
		dst = append(dst, "id: "...)
		dst = append(dst, ev.ID...)
		dst = append(dst, '\n')
	}
	dst = AppendBody(dst, ev.Event, ev.Data)
	if ev.Retry > 0 {
		dst = AppendRetry(dst, ev.Retry)
	}
	return append(dst, '\n'), nil
}

// AppendBody appends the event and data lines of an event without the id
// line and without the terminating blank line. A server that assigns ids
// late (per connection, or in a broker) stores this part and frames it with
// AppendIDLine and a final "\n". The event name must be a valid field.
func AppendBody(dst []byte, event string, data []byte) []byte {
	if event != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, event...)
		dst = append(dst, '\n')
	}
	return AppendData(dst, data)
}

// AppendData appends data as "data:" lines. Empty data still produces one
// empty data line so that the event is dispatched.
func AppendData(dst []byte, data []byte) []byte {
	for {
		i := bytes.IndexAny(data, "\r\n")
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			return append(dst, '\n')
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// AppendIDLine appends "id: <id>\n".
func AppendIDLine(dst []byte, id string) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, id...)
	return append(dst, '\n')
}

// AppendRetry appends a "retry:" line (without the blank line).
func AppendRetry(dst []byte, ms int) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, int64(ms), 10)
	return append(dst, '\n')
}

// AppendComment appends a comment block (": text\n\n"), used as keep-alive.
// Line breaks in text are replaced by spaces.
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	if text != "" {
		dst = append(dst, ' ')
		for i := 0; i < len(text); i++ {
			c := text[i]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			dst = append(dst, c)
		}
	}
	return append(dst, '\n', '\n')
}
