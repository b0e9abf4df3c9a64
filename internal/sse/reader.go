package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong is returned when a line exceeds the Reader's limit.
var ErrLineTooLong = errors.New("sse: line too long")

// DefaultMaxLine bounds a single line (and so an event's data line).
const DefaultMaxLine = 1 << 20

// Reader parses an event stream incrementally.
type Reader struct {
	br          *bufio.Reader
	maxLine     int
	lastID      string
	skipLF      bool // the previous line ended in CR: a following LF belongs to it
	started     bool // the optional BOM has been handled
	line        []byte
	data        []byte
	event       string
	retry       int
	hasData     bool
	pendingID   string
	pendingHave bool
}

// NewReader returns a Reader over r. maxLine <= 0 means DefaultMaxLine.
func NewReader(r io.Reader, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 4096)
	}
	return &Reader{br: br, maxLine: maxLine}
}

// LastEventID is the stream's last event id buffer, as a browser keeps it
// to send back in Last-Event-ID when it reconnects.
func (r *Reader) LastEventID() string { return r.lastID }

// Next returns the next dispatched event. Comments and events without data
// are consumed silently (an id-only block still updates LastEventID). The
// returned Data is valid until the next call. At the end of the stream it
// returns io.EOF; an incomplete final event is discarded, as the
// specification says.
func (r *Reader) Next() (Event, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			ev, ok := r.dispatch()
			if ok {
				return ev, nil
			}
			continue
		}
		r.field(line)
	}
}

func (r *Reader) dispatch() (Event, bool) {
	if r.pendingHave {
		r.lastID = r.pendingID
	}
	ev := Event{ID: r.lastID, Event: r.event, Retry: r.retry, HasID: r.pendingHave}
	ok := r.hasData
	if ok {
		data := r.data
		if len(data) > 0 && data[len(data)-1] == '\n' {
			data = data[:len(data)-1]
		}
		ev.Data = data
	}
	r.data = r.data[:0]
	r.event = ""
	r.retry = 0
	r.hasData = false
	r.pendingHave = false
	r.pendingID = ""
	return ev, ok
}

func (r *Reader) field(line []byte) {
	if line[0] == ':' {
		return // comment
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		r.hasData = true
	case "event":
		r.event = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.pendingID = string(value)
			r.pendingHave = true
		}
	case "retry":
		if n, ok := digits(value); ok {
			r.retry = n
		}
	}
}

func digits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// readLine returns the next line without its terminator.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			if err == io.EOF && len(r.line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if r.skipLF {
			r.skipLF = false
			if b == '\n' {
				continue
			}
		}
		if !r.started {
			r.started = true
			if b == 0xEF {
				// Possible UTF-8 BOM: EF BB BF.
				rest, err := r.br.Peek(2)
				if err == nil && rest[0] == 0xBB && rest[1] == 0xBF {
					_, _ = r.br.Discard(2)
					continue
				}
			}
		}
		switch b {
		case '\n':
			return r.line, nil
		case '\r':
			r.skipLF = true
			return r.line, nil
		}
		if len(r.line) >= r.maxLine {
			return nil, fmt.Errorf("%w (limit %d bytes)", ErrLineTooLong, r.maxLine)
		}
		r.line = append(r.line, b)
	}
}
