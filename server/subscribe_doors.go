package server

import (
	"fmt"
	"net/http"

	"github.com/darktime/darktime/internal/eventid"
)

// parseLastEventID parses a Last-Event-ID and checks the channel names a
// cursor holds: a position in a channel that cannot exist is not an id
// this server gave.
func parseLastEventID(s string) (eventid.ID, eventid.Cursor, error) {
	plain, cursor, err := eventid.ParseLastEventID(s)
	if err != nil {
		return plain, cursor, err
	}
	for name := range cursor {
		if err := validChannel(name); err != nil {
			return eventid.ID{}, nil, fmt.Errorf("cursor names an invalid channel: %w", err)
		}
	}
	return plain, cursor, nil
}

// serveHead answers HEAD /sub/...: the headers a stream would start with,
// no body, no subscriber (it is not counted, nothing is held for it).
func serveHead(w http.ResponseWriter) {
	streamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
}
