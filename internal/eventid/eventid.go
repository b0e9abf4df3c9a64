// Package eventid defines darktime's resumable event ids and the cursors
// that multi-channel subscriptions resume from.
//
// An ID is "<ms>-<seq>": the millisecond the event entered its channel's
// history and a sequence number within that millisecond. It is the form of
// a Redis stream entry id, so the Redis broker uses the ids Redis assigns
// and the in-process broker makes the same kind; ids of one channel grow
// strictly, and ids are comparable across nodes that share a broker.
//
// A connection subscribed to one channel sends plain ids. A connection
// subscribed to several sends a Cursor, "chan=<id>;chan=<id>", holding the
// last position it delivered in each channel, so that a reconnect resumes
// every channel exactly.
package eventid

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ID is a position in a channel's history. The zero ID is before every event.
type ID struct {
	Ms  uint64
	Seq uint64
}

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid event id")

// MaxMs is the largest millisecond an ID may carry: 2^53-1, the largest
// integer a JavaScript number (a browser) or a Lua number (a Redis script)
// holds exactly — far beyond any clock (year 287396), and below the int64
// overflow that made 9223372036854775808-0 look older than every history.
const MaxMs = 1<<53 - 1

// Parse parses "<ms>-<seq>" (a bare "<ms>" means seq 0).
func Parse(s string) (ID, error) {
	if s == "" || len(s) > 41 {
		return ID{}, fmt.Errorf("%w %q: want <ms>-<seq>", ErrSyntax, s)
	}
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil || msPart[0] == '+' {
		return ID{}, fmt.Errorf("%w %q: want <ms>-<seq>", ErrSyntax, s)
	}
	if ms > MaxMs {
		return ID{}, fmt.Errorf("%w %q: the millisecond is beyond %d, not an id a server gave", ErrSyntax, s, uint64(MaxMs))
	}
	var seq uint64
	if hasSeq {
		seq, err = strconv.ParseUint(seqPart, 10, 64)
		if err != nil || seqPart == "" || seqPart[0] == '+' {
			return ID{}, fmt.Errorf("%w %q: want <ms>-<seq>", ErrSyntax, s)
		}
	}
	return ID{Ms: ms, Seq: seq}, nil
}

// String formats the id as "<ms>-<seq>".
func (id ID) String() string {
	return string(id.Append(nil))
}

// Append appends the id's text form to dst.
func (id ID) Append(dst []byte) []byte {
	dst = strconv.AppendUint(dst, id.Ms, 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, id.Seq, 10)
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id.Ms == 0 && id.Seq == 0 }

// Less reports whether id comes before other.
func (id ID) Less(other ID) bool {
	if id.Ms != other.Ms {
		return id.Ms < other.Ms
	}
	return id.Seq < other.Seq
}

// Compare returns -1, 0 or +1.
func (id ID) Compare(other ID) int {
	switch {
	case id.Less(other):
		return -1
	case other.Less(id):
		return 1
	}
	return 0
}

// Next returns the smallest id after id (for exclusive range starts).
func (id ID) Next() ID {
	if id.Seq == ^uint64(0) {
		return ID{Ms: id.Ms + 1}
	}
	return ID{Ms: id.Ms, Seq: id.Seq + 1}
}

// Cursor holds a position per channel.
type Cursor map[string]ID

// ParseLastEventID parses what a client sends back in Last-Event-ID: a
// plain ID, which applies to every channel, or a cursor. Exactly one of the
// results is set on success.
func ParseLastEventID(s string) (ID, Cursor, error) {
	if !strings.Contains(s, "=") {
		id, err := Parse(s)
		return id, nil, err
	}
	c, err := ParseCursor(s)
	return ID{}, c, err
}

// ParseCursor parses "chan=<id>;chan=<id>".
func ParseCursor(s string) (Cursor, error) {
	if len(s) > 64<<10 {
		return nil, fmt.Errorf("%w: cursor longer than 64 KiB", ErrSyntax)
	}
	c := Cursor{}
	for _, part := range strings.Split(s, ";") {
		name, idText, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w %q: want chan=<ms>-<seq>[;chan=<ms>-<seq>...]", ErrSyntax, s)
		}
		id, err := Parse(idText)
		if err != nil {
			return nil, err
		}
		if _, dup := c[name]; dup {
			return nil, fmt.Errorf("%w %q: channel %q named twice", ErrSyntax, s, name)
		}
		c[name] = id
	}
	return c, nil
}

// String formats the cursor with channels in sorted order.
func (c Cursor) String() string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	var b []byte
	for i, n := range names {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, n...)
		b = append(b, '=')
		b = c[n].Append(b)
	}
	return string(b)
}

// Min returns the smallest position in the cursor (the zero ID if empty).
func (c Cursor) Min() ID {
	var min ID
	first := true
	for _, id := range c {
		if first || id.Less(min) {
			min, first = id, false
		}
	}
	return min
}
