package sse

import (
	"fmt"
	"strings"

	"github.com/darktime/darktime/internal/httpbody"
)

// ErrStreamEnded is returned by Stream.Feed when the server ended the
// response body (its last chunk, or the end of its Content-Length): for an
// event stream that is a drop.
var ErrStreamEnded = httpbody.ErrBodyEnded

// Stream decodes the body of a text/event-stream HTTP/1.1 response read
// off a raw connection: it strips the body's framing (internal/httpbody)
// and decodes the events (Decoder), both in place in the bytes fed. It
// allocates nothing per event.
type Stream struct {
	body   httpbody.Decoder
	events Decoder
}

// NewStream checks a response head (the status line through the blank
// line) for a 2xx text/event-stream answer and returns a decoder of its
// body that calls onMessage with each event.
func NewStream(head []byte, lim Limits, onMessage func(Message)) (*Stream, error) {
	h, err := httpbody.ParseHead(head)
	if err != nil {
		return nil, err
	}
	if h.Status/100 != 2 {
		return nil, fmt.Errorf("the server answered %q, want a 2xx status", h.StatusLine[9:])
	}
	if !strings.HasPrefix(h.ContentType, ContentType) {
		return nil, fmt.Errorf("the server answered Content-Type %q, want %s", h.ContentType, ContentType)
	}
	s := &Stream{}
	s.events.Reset(lim, onMessage)
	s.body.Reset(h.Framing, h.Length, &s.events)
	return s, nil
}

// Feed consumes the next bytes read from the connection. It returns
// ErrStreamEnded when the body ended, an error wrapping
// httpbody.ErrMalformed for a broken chunked body, or the Decoder's
// ErrLineTooLong or ErrEventTooLong. Any error ends the stream: the rest
// of b may not have been decoded, so feed it no more.
func (s *Stream) Feed(b []byte) error { return s.body.Feed(b) }

// LastEventID is the stream's last event ID (Decoder.LastEventID).
func (s *Stream) LastEventID() []byte { return s.events.LastEventID() }

// RetryMs is the stream's reconnection time (Decoder.RetryMs).
func (s *Stream) RetryMs() int { return s.events.RetryMs() }
