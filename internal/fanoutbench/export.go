package fanoutbench

import "time"

// This file lends the lean subscriber's wire code and the /proc sampler to
// other load generators (internal/hookbench) without exposing their
// internals.

// ErrStreamEnded is returned by EventStream.Feed when the server ended the
// response body (a zero chunk or the end of Content-Length): for an event
// stream that is a drop.
var ErrStreamEnded = errBodyEnd

// EventStream decodes the body of a text/event-stream HTTP/1.1 response fed
// in place from a connection's read buffer, and hands the data of each event
// to a callback. It allocates nothing per event.
type EventStream struct {
	body   bodyDecoder
	events eventParser
}

// eventFunc adapts a function of the data to eventSink.
type eventFunc func(data []byte)

func (f eventFunc) event(_, data []byte) { f(data) }

// typedEventFunc adapts a function of the type and data to eventSink.
type typedEventFunc func(typ, data []byte)

func (f typedEventFunc) event(typ, data []byte) { f(typ, data) }

// NewEventStream checks a subscribe response head (status line to the blank
// line, inclusive) for a 2xx text/event-stream answer and returns a decoder
// for its body that calls onData with each event's data. The slice passed
// to onData is only valid during the call.
func NewEventStream(head []byte, onData func(data []byte)) (*EventStream, error) {
	mode, length, err := parseResponseHead(head)
	if err != nil {
		return nil, err
	}
	s := &EventStream{}
	s.body.mode, s.body.remaining = mode, length
	s.events.sink = eventFunc(onData)
	s.body.sink = &s.events
	return s, nil
}

// NewTypedEventStream is NewEventStream for callers that also need each
// event's type (the event field; empty for the default "message").
func NewTypedEventStream(head []byte, onEvent func(typ, data []byte)) (*EventStream, error) {
	s, err := NewEventStream(head, nil)
	if err != nil {
		return nil, err
	}
	s.events.sink = typedEventFunc(onEvent)
	return s, nil
}

// LastEventID is the stream's last event ID as a browser keeps it: the id
// field as of the last dispatched event, to send back as Last-Event-ID.
func (s *EventStream) LastEventID() []byte { return s.events.lastID }

// RetryMs is the last retry field the stream carried, in milliseconds; 0
// when none came.
func (s *EventStream) RetryMs() int { return s.events.retryMs }

// ResidentKiB returns the resident memory (VmRSS) of process pid.
func ResidentKiB(pid int) (int64, error) {
	s, _, err := sampleProcess(pid)
	return s.rssKiB, err
}

// Feed consumes the next bytes read from the connection.
func (s *EventStream) Feed(b []byte) error { return s.body.feed(b) }

// ProcessCPU returns the user+system CPU time of pid and its direct
// children, from /proc (10 ms resolution).
func ProcessCPU(pid int) (time.Duration, error) {
	s, err := sampleProcessTree(pid)
	return s.cpu, err
}

// SelfCPU returns this process's user+system CPU time.
func SelfCPU() time.Duration { return selfCPU() }
