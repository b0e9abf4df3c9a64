package shadow

import (
	"math"
	"sync"
	"time"
)

// tally is what one stream (or one scope) found, in the ledger's terms.
type tally struct {
	Primary    int64 // +1: events the primary delivered
	Candidate  int64 // -1: events the candidate delivered
	Matched    int64 // candidate events with a primary counterpart
	Missing    int64 // primary events the candidate never delivered within the settle window
	Extra      int64 // candidate events the primary never delivered within the settle window
	Duplicated int64 // candidate events delivered more often than the primary delivered them
	Late       int64 // matched events the candidate delivered more than Late after the primary
	Reordered  int64 // matched events the candidate delivered out of the primary's order
	// The explained part of Missing and Extra (see attribution.go):
	EdgeMissing int64 // missing events outside the window where both streams were open
	EdgeExtra   int64 // extra events outside that window
	LateSettled int64 // pairs: a missing (or extra) whose counterpart came after it settled
	Unmirrored  int64 // missing events of publishes the proxy did not send the candidate
	DelaySum    time.Duration
	DelayMax    time.Duration
}

// pendingEvent is one identity waiting for its counterpart.
type pendingEvent struct {
	p, c       int32 // deliveries by the primary and the candidate
	pAt, cAt   int64 // first delivery on each side, unix ns
	pSeq, cSeq uint32
	born       int64 // when the entry was created: it settles Settle later
	// credit is how many deliveries of this identity the other side made
	// that had already settled unmatched when this entry was created: a
	// surplus of this entry on the creating side pairs with them
	// (LateSettled) instead of being a new difference.
	credit        int32
	creditPrimary bool // the credit pairs with a primary surplus (missing), else a candidate one (extra)
}

// reconciler keeps the +1/-1 ledger of one mirrored stream: the primary's
// events against one candidate's (or baseline's). The proxy's copy loop
// calls primary, the mirror's reader calls candidate, and the sweeper
// calls settle and take; each call holds the lock for a map operation.
type reconciler struct {
	mu         sync.Mutex
	settle     int64 // ns
	late       time.Duration
	edge       int64 // ns: the guard of the stream edges
	maxPending int
	events     map[uint64]pendingEvent
	order      []orderEntry // entries in creation order, for settling
	head       int
	pSeq, cSeq uint32
	// Out-of-order detection, streaming: a new match (p, c) is reordered
	// when it crosses an earlier one — the match with the highest primary
	// sequence had a lower candidate sequence, or the reverse.
	maxP, cAtMaxP, maxC, pAtMaxC uint32
	matchedAny                   bool
	overflow                     bool
	// The window both sides are compared in: each side's open and close
	// (unix ns, 0 while unknown), the first match in each side's order,
	// and the other side's lag at the first and last match in each side's
	// order (its delivery time minus this side's).
	pOpen, cOpen, pClose, cClose int64
	firstP, firstC               uint32
	firstPLag, firstCLag         int64
	lastPLag, lastCLag           int64
	settled                      recentlySettled
	skips                        *skipLog // unmirrored publishes on the stream's label (nil: none)
	skipNext                     uint64   // the first of them this stream has not used
	delta                        tally    // not yet taken into the ledgers
}

type orderEntry struct {
	id   uint64
	born int64
}

func newReconciler(settle, late, edge time.Duration, maxPending int) *reconciler {
	return &reconciler{
		settle: int64(settle), late: late, edge: int64(edge), maxPending: maxPending,
		events:  make(map[uint64]pendingEvent),
		settled: recentlySettled{max: rememberMax, horizon: int64(settle)},
	}
}

// opened records when one side's stream opened (the primary: its answer
// reached the proxy; the candidate: it answered and the mirror went
// live); the first call counts.
func (r *reconciler) opened(primary bool, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	setOnce(r.pick(primary, &r.pOpen, &r.cOpen), at)
}

// closed records when one side's stream ended; the first call counts.
func (r *reconciler) closed(primary bool, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	setOnce(r.pick(primary, &r.pClose, &r.cClose), at)
}

func (r *reconciler) pick(primary bool, p, c *int64) *int64 {
	if primary {
		return p
	}
	return c
}

func setOnce(v *int64, at int64) {
	if *v == 0 {
		*v = at
	}
}

// primary records that the primary delivered an event at now (unix ns).
func (r *reconciler) primary(id uint64, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overflow {
		return
	}
	r.pSeq++
	r.delta.Primary++
	e, ok := r.events[id]
	if !ok {
		e.born = now
		if !r.track(id, now) {
			return
		}
		// The counterpart of candidate deliveries that settled as extra?
		if n := r.settled.take(id, false, now); n > 0 {
			e.credit, e.creditPrimary = n, true
		}
	}
	e.p++
	if e.p == 1 {
		e.pAt, e.pSeq = now, r.pSeq
	}
	if e.p <= e.c { // the candidate delivered it first
		r.match(e.pSeq, e.cSeq, time.Duration(e.cAt-now))
	}
	r.events[id] = e
}

// candidate records that the candidate delivered an event at now.
func (r *reconciler) candidate(id uint64, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overflow {
		return
	}
	r.cSeq++
	r.delta.Candidate++
	e, ok := r.events[id]
	if !ok {
		e.born = now
		if !r.track(id, now) {
			return
		}
		// The counterpart of primary deliveries that settled as missing?
		if n := r.settled.take(id, true, now); n > 0 {
			e.credit, e.creditPrimary = n, false
		}
	}
	e.c++
	if e.c == 1 {
		e.cAt, e.cSeq = now, r.cSeq
	}
	if e.c <= e.p {
		r.match(e.pSeq, e.cSeq, time.Duration(now-e.pAt))
	}
	r.events[id] = e
}

// track queues a new entry for settling; false when the stream has too
// many pending events and stops being reconciled.
func (r *reconciler) track(id uint64, now int64) bool {
	if len(r.events) >= r.maxPending {
		r.overflow = true
		return false
	}
	if r.head > 1024 && r.head*2 > len(r.order) {
		r.order = append(r.order[:0], r.order[r.head:]...)
		r.head = 0
	}
	r.order = append(r.order, orderEntry{id: id, born: now})
	return true
}

// match counts a matched event; delay is the candidate's delivery time
// minus the primary's.
func (r *reconciler) match(pSeq, cSeq uint32, delay time.Duration) {
	d := &r.delta
	d.Matched++
	d.DelaySum += delay
	d.DelayMax = max(d.DelayMax, delay)
	if delay > r.late {
		d.Late++
	}
	if !r.matchedAny || pSeq < r.firstP {
		r.firstP, r.firstPLag = pSeq, int64(delay)
	}
	if !r.matchedAny || cSeq < r.firstC {
		r.firstC, r.firstCLag = cSeq, -int64(delay)
	}
	if r.matchedAny && ((pSeq < r.maxP && cSeq > r.cAtMaxP) || (cSeq < r.maxC && pSeq > r.pAtMaxC)) {
		d.Reordered++
	}
	r.matchedAny = true
	if pSeq > r.maxP {
		r.maxP, r.cAtMaxP, r.lastPLag = pSeq, cSeq, int64(delay)
	}
	if cSeq > r.maxC {
		r.maxC, r.pAtMaxC, r.lastCLag = cSeq, pSeq, -int64(delay)
	}
}

// settleAll is the cutoff that settles every entry: the end of a stream.
const settleAll = math.MaxInt64

// settleUntil closes every entry born at or before cutoff (unix ns; the
// sweeper passes now - settle): what one side still owes is missing or
// extra, and each such difference is explained where the evidence allows
// (explain). settleUntil(settleAll) closes everything, at the end of a
// stream, when nothing needs to be remembered any more.
func (r *reconciler) settleUntil(cutoff int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := int64(settleAll)
	if cutoff < settleAll-r.settle {
		now = cutoff + r.settle
	}
	for r.head < len(r.order) && r.order[r.head].born <= cutoff {
		o := r.order[r.head]
		r.head++
		e, ok := r.events[o.id]
		if !ok || e.born != o.born { // gone, or a newer entry of the same identity
			continue
		}
		id := o.id
		delete(r.events, id)
		// Surplus candidate deliveries of an event the primary delivered
		// are duplicates, of one it never delivered extras.
		switch n := e.p - e.c; {
		case n > 0:
			r.delta.Missing += int64(n)
			r.explain(id, e, true, n, now)
		case n < 0 && e.p > 0:
			r.delta.Duplicated += int64(-n)
		case n < 0:
			r.delta.Extra += int64(-n)
			r.explain(id, e, false, -n, now)
		}
	}
	if r.head == len(r.order) {
		r.order, r.head = r.order[:0], 0
	}
	r.settled.expire(now)
}

// owed reports whether the primary delivered events the candidate has not
// (yet): a finished stream keeps its mirror open while it owes some.
func (r *reconciler) owed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.p > e.c {
			return true
		}
	}
	return false
}

// take returns what changed since the last take.
func (r *reconciler) take() (t tally, overflow bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, r.delta = r.delta, tally{}
	return t, r.overflow
}
