package shadow

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// The publish clock (LEDGER.md, "Cohorts"): when the proxy itself relays
// a single-event publish to a world — the primary through the reverse
// proxy, the candidate and the baseline through their mirror lanes — it
// notes when it sent it there, under the identity the event it makes will
// have on that world's streams. An event that arrives on a stream of a
// world the proxy sent its publish to has a delay from that send: the
// server's own publish-to-delivery time, in every world alike, where the
// first reference sighting would charge a mirrored world with the mirror's
// lag (lane queueing, the order hold, the mirrored request itself).
//
// A publish becomes an event as the reference server (server/publish.go),
// nchan and push-stream make it: its body is the data and its type is the
// event query parameter, else the X-EventSource-Event header, else
// "message". A JSON batch (Content-Type application/json) holds several
// events the proxy does not unpack; it has no send time, nor has anything
// in identity mode id (each world numbers its events its own way).

// maxSends bounds the sends remembered per world over a settle window
// (repeated identities included); beyond it sends are not remembered
// (counted), and their events take their delay from the first sighting.
const maxSends = 100000

// publishClock is the sends of the three worlds (by cohortRole).
type publishClock struct {
	worlds [3]sendLog
	full   func() // counts a send not remembered
}

// sendLog is one world's sends of the last settle window. Every event of
// an observed stream looks its send up (a read lock); with no publish
// through the proxy, kept says so without the lock.
type sendLog struct {
	mu    sync.RWMutex
	at    map[uint64]sendMark
	order []sighting // every send, oldest first, for pruning
	kept  atomic.Int64
}

// sendMark is what is known of an identity's sends: when it was sent,
// and whether it was sent more than once in the window (which send an
// event came from is then unknown: it has no send time).
type sendMark struct {
	at, last int64
	again    bool
}

// sent records that the publish of identity id left for world at at.
func (c *publishClock) sent(world cohortRole, id uint64, at int64) {
	l := &c.worlds[world]
	l.mu.Lock()
	m, ok := l.at[id]
	switch {
	case ok && len(l.order) >= maxSends:
		// Full: no time for it any more (which send is unknown), and
		// nothing kept of this one.
		m.again = true
		l.at[id] = m
		l.mu.Unlock()
		c.full()
		return
	case ok:
		m.again, m.last = true, at
	case len(l.order) >= maxSends:
		l.mu.Unlock()
		c.full()
		return
	default:
		if l.at == nil {
			l.at = map[uint64]sendMark{}
		}
		m = sendMark{at: at, last: at}
	}
	l.at[id] = m
	l.order = append(l.order, sighting{id, at})
	l.kept.Store(int64(len(l.at)))
	l.mu.Unlock()
}

// sendTime is when the publish of id left for world; false when the proxy
// sent it no such publish in the window, or sent it more than one.
func (c *publishClock) sendTime(world cohortRole, id uint64) (int64, bool) {
	l := &c.worlds[world]
	if l.kept.Load() == 0 {
		return 0, false
	}
	l.mu.RLock()
	m, ok := l.at[id]
	l.mu.RUnlock()
	if !ok || m.again {
		return 0, false
	}
	return m.at, true
}

// prune forgets the sends older than the settle window: their events
// have settled.
func (c *publishClock) prune(now, settle int64) {
	for w := range c.worlds {
		l := &c.worlds[w]
		l.mu.Lock()
		i := 0
		for ; i < len(l.order) && now-l.order[i].at > settle; i++ {
			if s := l.order[i]; l.at[s.id].last == s.at {
				delete(l.at, s.id)
			}
		}
		if i > 0 {
			l.order = append(l.order[:0], l.order[i:]...)
			l.kept.Store(int64(len(l.at)))
		}
		l.mu.Unlock()
	}
}

// clockedPublish reports whether a request the proxy relays is a publish
// the clock can time: identity data, a POST or PUT, not a JSON batch.
func clockedPublish(identity string, r *http.Request) bool {
	if identity != IdentityData || r.Method != http.MethodPost && r.Method != http.MethodPut {
		return false
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return !strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

// publishIdentity is the scanner's identity (scan.go) of the event a
// single-event publish with this query, these headers and this body makes:
// the type is ?event=, else X-EventSource-Event, else "message"; the data
// is the body with every line break (CRLF, CR, LF) as LF, as the server's
// data lines give it back (internal/sse.AppendData), a trailing one
// included.
func publishIdentity(rawQuery string, h http.Header, body []byte) uint64 {
	typ, _ := queryValue(rawQuery, "event")
	if typ == "" {
		typ = h.Get("X-EventSource-Event")
	}
	if typ == "" {
		typ = "message"
	}
	return mixIdentity(hashBytes(fnvOffset, []byte(typ)), hashData(body))
}

// hashData is hashBytes(fnvOffset, the body with its line breaks as LF),
// without the copy.
func hashData(p []byte) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(p); i++ {
		b := p[i]
		if b == '\r' {
			b = '\n'
			if i+1 < len(p) && p[i+1] == '\n' {
				i++
			}
		}
		h = (h ^ uint64(b)) * fnvPrime
	}
	return h
}
