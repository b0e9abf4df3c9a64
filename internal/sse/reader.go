package sse

import (
	"io"
)

// readerMaxLine is the Reader's line limit when NewReader is given none.
const readerMaxLine = 1 << 20

// readerMaxEvent bounds one event's data for a Reader.
const readerMaxEvent = 16 << 20

// Reader is a Decoder over an io.Reader that returns one event per call,
// for code that can afford a copy per event (tests, examples).
type Reader struct {
	r      io.Reader
	dec    Decoder
	buf    []byte
	queue  []Event // decoded, not yet returned
	next   int     // index in queue of the next event to return
	data   []byte  // backing store of the queued events' Data
	err    error   // what ends the stream once queue is drained
	lastID string
}

// NewReader returns a Reader over r. maxLine <= 0 means 1 MiB.
func NewReader(r io.Reader, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = readerMaxLine
	}
	rd := &Reader{r: r, buf: make([]byte, 4096)}
	rd.dec.Reset(Limits{MaxLine: maxLine, MaxEvent: max(readerMaxEvent, 2*maxLine)}, rd.queueMessage)
	return rd
}

// LastEventID is the stream's last event ID as of the last event Next
// returned (or of the end of the stream), as a browser keeps it to send
// back in Last-Event-ID when it reconnects.
func (r *Reader) LastEventID() string { return r.lastID }

// Next returns the next dispatched event. Comments and events without data
// are consumed silently (an id-only block still updates LastEventID).
// ID is the last event ID, Event the type ("message" when the event had
// none), Retry the stream's reconnection time so far and HasID whether ID
// is set. The returned Data is valid until the next call. At the end of
// the stream it returns io.EOF, or io.ErrUnexpectedEOF when it ended in
// the middle of a line; an incomplete final event is discarded, as the
// specification says. A line or event beyond the limits returns an error
// wrapping ErrLineTooLong or ErrEventTooLong.
func (r *Reader) Next() (Event, error) {
	for r.next == len(r.queue) {
		if r.err != nil {
			r.lastID = string(r.dec.LastEventID())
			return Event{}, r.err
		}
		r.queue, r.next, r.data = r.queue[:0], 0, r.data[:0]
		n, err := r.r.Read(r.buf)
		if n > 0 {
			if ferr := r.dec.Feed(r.buf[:n]); ferr != nil {
				r.err = ferr
			}
		}
		if err != nil && r.err == nil {
			r.err = err
			if err == io.EOF && r.dec.pending() {
				r.err = io.ErrUnexpectedEOF
			}
		}
	}
	ev := r.queue[r.next]
	r.next++
	r.lastID = ev.ID
	return ev, nil
}

// queueMessage copies a decoded event for Next; the Data of the events of
// one Feed share r.data, which is reset only when they have all been
// returned.
func (r *Reader) queueMessage(m Message) {
	start := len(r.data)
	r.data = append(r.data, m.Data...)
	r.queue = append(r.queue, Event{
		ID:    string(m.LastEventID),
		Event: string(m.Type),
		Data:  r.data[start:len(r.data):len(r.data)],
		Retry: r.dec.RetryMs(),
		HasID: len(m.LastEventID) > 0,
	})
}
