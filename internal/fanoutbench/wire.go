package fanoutbench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// The subscriber decodes the response body in two streaming layers, both fed
// slices of the connection's read buffer in place: bodyDecoder strips HTTP/1.1
// framing (chunked, Content-Length or close-delimited) and eventParser splits
// the text/event-stream into events. Neither copies more than a partial line
// and the data field of the event being assembled, and both reuse their
// buffers, so the steady state allocates nothing.

// Limits that keep a misbehaving server from growing a subscriber's buffers
// without bound.
const (
	maxLineBytes  = 64 << 10
	maxEventBytes = 1 << 20
)

var (
	errLineTooLong  = errors.New("event-stream line longer than 64 KiB")
	errEventTooLong = errors.New("event-stream event larger than 1 MiB")
	// errBodyEnd reports that the server ended the response body (a zero
	// chunk or the end of Content-Length); for an event stream that is a drop.
	errBodyEnd = errors.New("server ended the event stream")
)

// eventSink receives the type ("" for the default "message") and data of
// each complete event. The slices are only valid during the call.
type eventSink interface {
	event(typ, data []byte)
}

// eventParser splits a text/event-stream into events following the HTML
// Living Standard's interpretation rules: lines end in CRLF, LF or CR; a blank
// line dispatches the event; data lines are joined with "\n"; the id and
// retry fields are kept for a reconnect (Last-Event-ID, the retry hint);
// comments and other fields are ignored. An event without data lines is
// not dispatched.
type eventParser struct {
	sink    eventSink
	line    []byte // a line split across feed calls
	data    []byte // data buffer of the event being assembled
	typ     []byte // event type buffer of the event being assembled
	idBuf   []byte // last event ID buffer (id field of the event being assembled)
	lastID  []byte // last event ID string: idBuf as of the last dispatch
	retryMs int    // last retry field; 0 when none came
	hasData bool
	skipLF  bool // the previous feed ended in '\r': a leading '\n' is part of that line ending
}

// feed consumes the next bytes of the stream.
func (p *eventParser) feed(b []byte) error {
	if p.skipLF && len(b) > 0 {
		p.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	for len(b) > 0 {
		end := lineEnd(b)
		if end < 0 {
			if len(p.line)+len(b) > maxLineBytes {
				return errLineTooLong
			}
			p.line = append(p.line, b...)
			return nil
		}
		line := b[:end]
		if len(p.line) > 0 {
			if len(p.line)+len(line) > maxLineBytes {
				return errLineTooLong
			}
			p.line = append(p.line, line...)
			line = p.line
		}
		if err := p.processLine(line); err != nil {
			return err
		}
		p.line = p.line[:0]
		if b[end] == '\r' {
			if end+1 == len(b) {
				p.skipLF = true
			} else if b[end+1] == '\n' {
				end++
			}
		}
		b = b[end+1:]
	}
	return nil
}

// lineEnd returns the index of the first '\r' or '\n' in b, or -1.
func lineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	head := b
	if lf >= 0 {
		head = b[:lf]
	}
	if cr := bytes.IndexByte(head, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

func (p *eventParser) processLine(line []byte) error {
	if len(line) == 0 {
		// The spec sets the last event ID on every dispatch, even one
		// without data.
		p.lastID = append(p.lastID[:0], p.idBuf...)
		if p.hasData {
			p.sink.event(p.typ, p.data[:len(p.data)-1]) // drop the last data line's "\n"
		}
		p.data = p.data[:0]
		p.typ = p.typ[:0]
		p.hasData = false
		return nil
	}
	if line[0] == ':' {
		return nil // comment, e.g. a keep-alive
	}
	field, value := line, line[len(line):]
	if colon := bytes.IndexByte(line, ':'); colon >= 0 {
		field, value = line[:colon], line[colon+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
	case "event":
		if len(value) <= maxLineBytes {
			p.typ = append(p.typ[:0], value...)
		}
		return nil
	case "id":
		if bytes.IndexByte(value, 0) < 0 { // the spec ignores ids holding NUL
			p.idBuf = append(p.idBuf[:0], value...)
		}
		return nil
	case "retry":
		if ms, ok := parseRetry(value); ok {
			p.retryMs = ms
		}
		return nil
	default:
		return nil // unknown fields are ignored
	}
	if len(p.data)+len(value)+1 > maxEventBytes {
		return errEventTooLong
	}
	p.data = append(p.data, value...)
	p.data = append(p.data, '\n')
	p.hasData = true
	return nil
}

// parseRetry reads a retry field: ASCII digits only, as the spec says;
// values beyond a day are clamped.
func parseRetry(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	ms := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = min(ms*10+int(c-'0'), 86_400_000)
	}
	return ms, true
}

// bodyMode is how the response delimits its body.
type bodyMode uint8

const (
	bodyClose   bodyMode = iota // until the server closes the connection
	bodyChunked                 // Transfer-Encoding: chunked
	bodyLength                  // Content-Length
)

// bodySink receives decoded body bytes.
type bodySink interface {
	feed(b []byte) error
}

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

// bodyDecoder strips HTTP/1.1 body framing and passes the payload on to sink
// without copying.
type bodyDecoder struct {
	sink      bodySink
	mode      bodyMode
	state     uint8
	digits    int   // hex digits seen on the current size line
	remaining int64 // chunk or Content-Length bytes still to come
}

// maxChunkSize keeps the size accumulator from overflowing.
const maxChunkSize = 1 << 40

func (d *bodyDecoder) feed(b []byte) error {
	switch d.mode {
	case bodyClose:
		return d.sink.feed(b)
	case bodyLength:
		if d.remaining == 0 {
			return errBodyEnd
		}
		if int64(len(b)) > d.remaining {
			b = b[:d.remaining]
		}
		d.remaining -= int64(len(b))
		if err := d.sink.feed(b); err != nil {
			return err
		}
		if d.remaining == 0 {
			return errBodyEnd
		}
		return nil
	}
	for len(b) > 0 {
		switch d.state {
		case chunkData:
			n := int64(len(b))
			if n > d.remaining {
				n = d.remaining
			}
			if err := d.sink.feed(b[:n]); err != nil {
				return err
			}
			b = b[n:]
			d.remaining -= n
			if d.remaining == 0 {
				d.state = chunkDataCR
			}
			continue
		case chunkFinished:
			return errBodyEnd
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
					return fmt.Errorf("chunked encoding: bad byte %q in chunk size", c)
				}
				d.remaining = d.remaining<<4 | int64(v)
				d.digits++
				if d.remaining > maxChunkSize {
					return errors.New("chunked encoding: chunk size too large")
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
				return errors.New("chunked encoding: CR without LF after chunk size")
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
				return errors.New("chunked encoding: missing CRLF after chunk data")
			}
		case chunkDataLF:
			if c != '\n' {
				return errors.New("chunked encoding: CR without LF after chunk data")
			}
			d.state = chunkSize
		}
	}
	if d.state == chunkFinished {
		return errBodyEnd
	}
	return nil
}

func (d *bodyDecoder) endSizeLine() error {
	if d.digits == 0 {
		return errors.New("chunked encoding: empty chunk size")
	}
	d.digits = 0
	if d.remaining == 0 {
		d.state = chunkFinished
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

// payloadPrefix and payloadTS frame the fields the subscriber reads back out
// of an event's data; see appendPayload.
const (
	payloadPrefix = `{"seq":`
	payloadTS     = `,"ts":`
)

// appendPayload appends an event body of about size bytes carrying the
// publish sequence number and the intended send time (Unix nanoseconds):
// {"seq":123,"ts":1700000000000000000,"pad":"xxxx"}. The padding makes the
// body exactly size bytes when size leaves room for it.
func appendPayload(b []byte, seq, ts int64, size int) []byte {
	start := len(b)
	b = append(b, payloadPrefix...)
	b = appendInt(b, seq)
	b = append(b, payloadTS...)
	b = appendInt(b, ts)
	const padOpen, padClose = `,"pad":"`, `"}`
	pad := size - (len(b) - start) - len(padOpen) - len(padClose)
	if pad < 0 {
		return append(b, '}')
	}
	b = append(b, padOpen...)
	for range pad {
		b = append(b, 'x')
	}
	return append(b, padClose...)
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var digits [20]byte
	i := len(digits)
	for {
		i--
		digits[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, digits[i:]...)
}

// parsePayload reads seq and ts back out of a body made by appendPayload.
// It accepts only non-negative numbers and ignores what follows ts.
func parsePayload(data []byte) (seq, ts int64, ok bool) {
	if !bytes.HasPrefix(data, []byte(payloadPrefix)) {
		return 0, 0, false
	}
	data = data[len(payloadPrefix):]
	seq, data, ok = parseDigits(data)
	if !ok || !bytes.HasPrefix(data, []byte(payloadTS)) {
		return 0, 0, false
	}
	ts, _, ok = parseDigits(data[len(payloadTS):])
	if !ok {
		return 0, 0, false
	}
	return seq, ts, true
}

// parseDigits parses a run of decimal digits at the start of b, refusing
// values that overflow int64.
func parseDigits(b []byte) (int64, []byte, bool) {
	var v int64
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, b, false
		}
		v = v*10 + d
	}
	if i == 0 {
		return 0, b, false
	}
	return v, b[i:], true
}
