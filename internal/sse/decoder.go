package sse

import (
	"bytes"
	"errors"
	"fmt"
)

// Limits bound what a Decoder buffers for a stream. Zero fields mean the
// defaults.
type Limits struct {
	// MaxLine is the longest line accepted, in bytes without its line
	// break; DefaultMaxLine when 0.
	MaxLine int
	// MaxEvent bounds the data buffer of one event (its data lines, each
	// with its LF), in bytes; DefaultMaxEvent when 0.
	MaxEvent int
}

// Default limits: those of darktime's load clients, which hold thousands
// of streams and whose events are a few hundred bytes.
const (
	DefaultMaxLine  = 64 << 10
	DefaultMaxEvent = 1 << 20
)

// MaxRetry caps the reconnection time a retry field sets, in
// milliseconds: no client waits longer than a day to reconnect, and the
// value cannot overflow.
const MaxRetry = 86_400_000

var (
	// ErrLineTooLong reports a line longer than Limits.MaxLine.
	ErrLineTooLong = errors.New("sse: event-stream line too long")
	// ErrEventTooLong reports an event whose data passed Limits.MaxEvent.
	ErrEventTooLong = errors.New("sse: event-stream event too large")
)

// Message is one dispatched event as the Decoder hands it to its callback,
// the fields of the MessageEvent a browser would fire. The slices point
// into the Decoder's buffers (or the bytes being fed): they are valid only
// during the callback and must not be modified.
type Message struct {
	// Type is the event type: the event field's value, "message" when the
	// event had none (or an empty one).
	Type []byte
	// Data is the event's data lines joined with LF.
	Data []byte
	// LastEventID is the stream's last event ID as this dispatch set it
	// (the latest id field, which persists across events).
	LastEventID []byte
}

var messageType = []byte("message")

// Decoder is an incremental, in-place event-stream parser following the
// HTML Living Standard's "event stream interpretation" exactly:
//
//   - lines end in CRLF, LF or CR, also when a CR ends one Feed and its
//     LF starts the next;
//   - one leading U+FEFF BOM (EF BB BF) is stripped, even across Feeds;
//   - a line starting with ':' is a comment;
//   - a line without a colon is a field name with an empty value; one
//     space after the colon is dropped, no more;
//   - data appends the value and an LF to the data buffer; event sets the
//     event type buffer; id sets the last event ID buffer unless the value
//     contains NUL; retry sets the reconnection time when the value is
//     ASCII digits only (capped at MaxRetry); other fields are ignored;
//   - a blank line dispatches: the last event ID is set from its buffer;
//     an empty data buffer dispatches nothing; otherwise the final LF is
//     removed and the event is handed to the callback with type "message"
//     when the event type buffer is empty; both buffers are then cleared.
//
// An event left unfinished at the end of the stream is never dispatched:
// the caller just stops feeding.
//
// Bytes are not UTF-8 decoded: invalid sequences pass through as they
// came, where a browser would replace them with U+FFFD.
//
// Complete lines are parsed in the fed slice itself; only a line split
// across Feeds, the data and event type of the event being assembled, and
// the ids are copied, into buffers that are reused, so a steady stream
// costs no allocation per event.
type Decoder struct {
	onMessage func(Message)
	maxLine   int
	maxEvent  int

	line     []byte // a line split across Feeds
	data     []byte // data buffer
	typ      []byte // event type buffer
	idBuf    []byte // last event ID buffer
	lastID   []byte // last event ID string: idBuf as of the last dispatch
	retryMs  int
	bom      uint8 // bytes of a leading BOM matched so far
	started  bool  // past the point where a BOM may be
	skipLF   bool  // the last Feed ended in CR: a leading LF belongs to it
	idDirty  bool  // idBuf changed since the last dispatch
	dropping bool  // a limit was broken: ignore lines up to the next blank one
	tooLong  bool  // the line being accumulated broke MaxLine: discard it
}

// NewDecoder returns a Decoder that calls onMessage with each dispatched
// event.
func NewDecoder(lim Limits, onMessage func(Message)) *Decoder {
	d := &Decoder{}
	d.Reset(lim, onMessage)
	return d
}

// Reset makes d a decoder of a new stream, as NewDecoder does, keeping its
// buffers.
func (d *Decoder) Reset(lim Limits, onMessage func(Message)) {
	*d = Decoder{
		onMessage: onMessage,
		maxLine:   lim.MaxLine,
		maxEvent:  lim.MaxEvent,
		line:      d.line[:0],
		data:      d.data[:0],
		typ:       d.typ[:0],
		idBuf:     d.idBuf[:0],
		lastID:    d.lastID[:0],
	}
	if d.maxLine <= 0 {
		d.maxLine = DefaultMaxLine
	}
	if d.maxEvent <= 0 {
		d.maxEvent = DefaultMaxEvent
	}
}

// LastEventID is the stream's last event ID string, as of the last
// dispatch: what a browser sends back as Last-Event-ID when it
// reconnects. Valid until the next Feed.
func (d *Decoder) LastEventID() []byte { return d.lastID }

// RetryMs is the reconnection time the stream's last valid retry field
// set, in milliseconds; 0 when none came.
func (d *Decoder) RetryMs() int { return d.retryMs }

// pending reports whether the decoder holds part of a line (or of a BOM)
// that the stream has not ended yet.
func (d *Decoder) pending() bool {
	return len(d.line) > 0 || d.tooLong || (!d.started && d.bom > 0)
}

// Feed consumes the next bytes of the stream, calling the callback for
// each event they complete. It always consumes all of b. When a line or
// an event breaks a limit it returns ErrLineTooLong or ErrEventTooLong
// (wrapped, with the limit): the event being assembled is dropped, lines
// up to the blank line that ends it are ignored, and a caller may go on
// feeding the stream or give it up.
func (d *Decoder) Feed(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if !d.started {
		const bom = "\xEF\xBB\xBF"
		n := 0 // bytes of b that continue the BOM
		for int(d.bom) < len(bom) && n < len(b) && b[n] == bom[d.bom] {
			d.bom++
			n++
		}
		switch {
		case int(d.bom) == len(bom):
			d.started = true
			b = b[n:]
		case n == len(b):
			return nil // all a BOM's prefix so far
		default:
			// Not a BOM: what matched is the start of the first line. The
			// bytes matched in earlier Feeds are replayed from the constant.
			d.started = true
			d.line = append(d.line, bom[:int(d.bom)-n]...)
		}
	}
	if d.skipLF && len(b) > 0 {
		d.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	var err error
	// cr is the index of the next CR in b at or after pos, len(b) when
	// there is none; it is searched again only once passed, so a stream
	// without CRs costs one search per Feed, not one per line.
	pos, cr := 0, len(b)
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		cr = i
	}
	for pos < len(b) {
		if cr < pos {
			cr = len(b)
			if i := bytes.IndexByte(b[pos:], '\r'); i >= 0 {
				cr = pos + i
			}
		}
		end := len(b)
		if i := bytes.IndexByte(b[pos:cr], '\n'); i >= 0 {
			end = pos + i
		} else if cr < len(b) {
			end = cr
		}
		if end == len(b) {
			if e := d.keepPartial(b[pos:]); e != nil && err == nil {
				err = e
			}
			return err
		}
		line := b[pos:end]
		var e error
		switch {
		case len(d.line) == 0 && !d.tooLong && len(line) <= d.maxLine:
			e = d.processLine(line) // the common case: a whole line in b
		case d.tooLong:
			d.tooLong = false // the end of a line already reported and dropped
		case len(d.line)+len(line) > d.maxLine:
			d.drop()
			e = d.lineError()
		default:
			if len(d.line) > 0 {
				d.line = append(d.line, line...)
				line = d.line
			}
			e = d.processLine(line)
		}
		if e != nil && err == nil {
			err = e
		}
		d.line = d.line[:0]
		pos = end + 1
		if b[end] == '\r' {
			if pos == len(b) {
				d.skipLF = true
			} else if b[pos] == '\n' {
				pos++
			}
		}
	}
	return err
}

// keepPartial buffers the start of a line that continues in the next Feed.
func (d *Decoder) keepPartial(part []byte) error {
	if d.tooLong {
		return nil // already reported; discard up to the line end
	}
	if len(d.line)+len(part) > d.maxLine {
		d.line = d.line[:0]
		d.tooLong = true
		d.drop()
		return d.lineError()
	}
	d.line = append(d.line, part...)
	return nil
}

func (d *Decoder) lineError() error {
	return fmt.Errorf("%w: longer than %d bytes", ErrLineTooLong, d.maxLine)
}

// drop abandons the event being assembled after a broken limit.
func (d *Decoder) drop() {
	d.data = d.data[:0]
	d.typ = d.typ[:0]
	d.dropping = true
}

func (d *Decoder) processLine(line []byte) error {
	if len(line) == 0 {
		d.dispatch()
		return nil
	}
	if d.dropping || line[0] == ':' {
		return nil
	}
	// The field name ends at the first colon, or is the whole line. Only
	// "id", "data", "event" and "retry" mean anything, so the colon is
	// looked for where it would end one of them — at 2, 4 or 5, in that
	// order — instead of scanning the line: when the first colon is
	// elsewhere the name is unknown, and a candidate name that holds a
	// colon matches none (the order makes sure a shorter known name is
	// never missed).
	var field, value []byte
	switch {
	case len(line) > 2 && line[2] == ':':
		field, value = line[:2], line[3:]
	case len(line) > 4 && line[4] == ':':
		field, value = line[:4], line[5:]
	case len(line) > 5 && line[5] == ':':
		field, value = line[:5], line[6:]
	case len(line) == 2 || len(line) == 4 || len(line) == 5:
		field = line // a field without a colon: the value is empty
	default:
		return nil
	}
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(field) {
	case "data":
		if len(d.data)+len(value)+1 > d.maxEvent {
			d.drop()
			return fmt.Errorf("%w: data above %d bytes", ErrEventTooLong, d.maxEvent)
		}
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "event":
		d.typ = append(d.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.idBuf = append(d.idBuf[:0], value...)
			d.idDirty = true
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			d.retryMs = ms
		}
	}
	return nil
}

func (d *Decoder) dispatch() {
	if d.idDirty {
		d.lastID = append(d.lastID[:0], d.idBuf...)
		d.idDirty = false
	}
	d.dropping = false
	if len(d.data) == 0 {
		d.typ = d.typ[:0]
		return
	}
	typ := d.typ
	if len(typ) == 0 {
		typ = messageType
	}
	d.onMessage(Message{Type: typ, Data: d.data[:len(d.data)-1], LastEventID: d.lastID})
	d.data = d.data[:0]
	d.typ = d.typ[:0]
}

// parseRetry reads a retry field: ASCII digits only, at least one.
func parseRetry(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	ms := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = min(ms*10+int(c-'0'), MaxRetry)
	}
	return ms, true
}
