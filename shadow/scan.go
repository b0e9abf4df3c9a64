package shadow

import "github.com/darktime/darktime/internal/sse"

// scanner identifies the events of a stream as its bytes pass through the
// proxy: internal/sse's Decoder, fed in place so the primary's stream is
// never copied for the user or delayed, reduces each event to what
// reconciliation needs, its type and a 64-bit identity.
//
// The identity is a hash of the type and the data, or, with byID, of the
// type and the last event ID (the data when the stream has no id yet). The
// type is the one a browser sees: "message" for an event without an event
// field, so that and "event: message" are the same event.
type scanner struct {
	byID bool
	emit func(typ []byte, identity uint64)
	dec  sse.Decoder
}

// scanLimits bound what a scanner buffers per stream: the longest line
// and an event's data. An event past them is left out on that side (it
// will show as missing or extra) and the scanner goes on with the next.
var scanLimits = sse.Limits{MaxLine: 1 << 20, MaxEvent: 4 << 20}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func newScanner(byID bool, emit func(typ []byte, identity uint64)) *scanner {
	s := &scanner{byID: byID, emit: emit}
	s.dec.Reset(scanLimits, s.message)
	return s
}

// Write feeds bytes of the stream; it never fails, so a tee can ignore it.
func (s *scanner) Write(p []byte) (int, error) {
	_ = s.dec.Feed(p) // a broken limit dropped one event; go on
	return len(p), nil
}

func (s *scanner) message(m sse.Message) {
	var body uint64
	if s.byID && len(m.LastEventID) > 0 {
		body = hashBytes(fnvOffset, m.LastEventID)
	} else {
		body = hashBytes(fnvOffset, m.Data)
	}
	s.emit(m.Type, mixIdentity(hashBytes(fnvOffset, m.Type), body))
}

func hashBytes(h uint64, p []byte) uint64 {
	for _, b := range p {
		h = (h ^ uint64(b)) * fnvPrime
	}
	return h
}

func mixIdentity(typ, body uint64) uint64 {
	h := typ*0x9e3779b97f4a7c15 ^ body
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
