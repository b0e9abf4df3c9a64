package shadow

// Attribution: every missing or extra event gets the cause the evidence
// allows, or none. LEDGER.md has the same rules in the ledger's terms.
//
// Stream edges. The primary's stream opens first (the mirror request is
// sent once the primary answered), its events count from the moment the
// candidate's stream is open, and the user leaves (or the proxy stops)
// while events are on their way. An event published around either moment
// reaches one side and not the other, and says nothing about the
// candidate. Such an event is
//
//   - at the start edge when it comes before the first matched event in
//     its side's order and was delivered before the later of the two opens
//     plus the guard (ledger.edge), the time shifted by the other side's
//     lead at that first match (when the other side was faster, it could
//     have delivered the event before the window opened);
//   - at the end edge when it comes after the last matched event in its
//     side's order and the other side closed before it would have
//     delivered it: delivery time plus the other side's lag at that last
//     match (when it was slower) is past the other side's close minus the
//     guard.
//
// The end rule uses the other side's close, not the earlier of the two: a
// candidate that stays open after the user left (a mirror stays until it
// owes nothing, or settle_ms) and still does not deliver an event has lost
// it. Neither rule can absorb a drop in the middle of a stream (matches
// follow it), nor one after the first guard of a stream (the guard is
// short: the late window by default).
//
// Unmirrored publishes (unmirrored.go) explain missing events the proxy
// itself caused, before the edge rules.
//
// Late settling. An event whose counterpart comes after it settled counts
// as missing (or extra) when it settles and its counterpart as extra (or
// missing) when that settles, as before; a bounded memory of recently
// settled, unexplained identities turns the two into one LateSettled pair.

// rememberMax bounds the identities one stream remembers after they
// settled unmatched; the oldest are forgotten first. Each is also
// forgotten settle_ms after it settled.
const rememberMax = 256

// explain attributes n surplus deliveries (the primary's: missing; the
// candidate's: extra) of an entry settling at now.
func (r *reconciler) explain(id uint64, e pendingEvent, primary bool, n int32, now int64) {
	if e.credit > 0 && e.creditPrimary == primary {
		paired := min(n, e.credit)
		r.delta.LateSettled += int64(paired)
		n -= paired
	}
	if primary && r.skips != nil {
		for n > 0 && r.skips.take(&r.skipNext, max(e.pAt-r.settle, r.cOpen), e.pAt) {
			r.delta.Unmirrored++
			n--
		}
	}
	if n == 0 {
		return
	}
	at, seq := e.cAt, e.cSeq
	if primary {
		at, seq = e.pAt, e.pSeq
	}
	if r.atEdge(primary, seq, at) {
		if primary {
			r.delta.EdgeMissing += int64(n)
		} else {
			r.delta.EdgeExtra += int64(n)
		}
		return
	}
	if now != settleAll {
		r.settled.add(id, primary, n, now)
	}
}

// atEdge reports whether an unmatched delivery (sequence seq in its
// side's order, at unix ns) lies outside the window where both sides were
// open (see above).
func (r *reconciler) atEdge(primary bool, seq uint32, at int64) bool {
	first, last, firstLag, lastLag, otherClose := r.firstC, r.maxC, r.firstCLag, r.lastCLag, r.pClose
	if primary {
		first, last, firstLag, lastLag, otherClose = r.firstP, r.maxP, r.firstPLag, r.lastPLag, r.cClose
	}
	open := max(r.pOpen, r.cOpen)
	if (!r.matchedAny || seq < first) && at+min(firstLag, 0) < open+r.edge {
		return true
	}
	return otherClose != 0 && (!r.matchedAny || seq > last) && at+max(lastLag, 0) >= otherClose-r.edge
}

// recentlySettled remembers, per identity, unexplained deliveries of one
// side that settled without a counterpart: at most max identities, each
// for horizon ns after it settled.
type recentlySettled struct {
	max     int
	horizon int64
	m       map[uint64]settledRecord
	ring    []settledKey // FIFO of additions, len max once allocated
	start   int
	n       int
}

type settledRecord struct {
	n       int32
	primary bool  // a primary surplus (missing), else a candidate one (extra)
	at      int64 // when it settled, unix ns
}

type settledKey struct {
	id uint64
	at int64
}

// add remembers n unmatched deliveries of one side that settled at at.
func (s *recentlySettled) add(id uint64, primary bool, n int32, at int64) {
	if s.max <= 0 {
		return
	}
	if s.m == nil {
		s.m = make(map[uint64]settledRecord)
		s.ring = make([]settledKey, s.max)
	}
	if s.n == s.max {
		s.evict()
	}
	rec := settledRecord{n: n, primary: primary, at: at}
	if old, ok := s.m[id]; ok && old.primary == primary {
		rec.n += old.n
	}
	s.m[id] = rec
	s.ring[(s.start+s.n)%s.max] = settledKey{id: id, at: at}
	s.n++
}

// take returns and forgets the deliveries of the given side remembered for
// id, if they settled less than horizon before now.
func (s *recentlySettled) take(id uint64, primary bool, now int64) int32 {
	rec, ok := s.m[id]
	if !ok || rec.primary != primary || now-rec.at > s.horizon {
		return 0
	}
	delete(s.m, id)
	return rec.n
}

// expire forgets what settled more than horizon before now (settleAll:
// everything).
func (s *recentlySettled) expire(now int64) {
	for s.n > 0 && (now == settleAll || now-s.ring[s.start].at > s.horizon) {
		s.evict()
	}
}

func (s *recentlySettled) evict() {
	k := s.ring[s.start]
	if rec, ok := s.m[k.id]; ok && rec.at == k.at {
		delete(s.m, k.id)
	}
	s.start = (s.start + 1) % s.max
	s.n--
}

func (s *recentlySettled) remembered() int { return len(s.m) }
