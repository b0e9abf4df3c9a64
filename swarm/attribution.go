package swarm

import (
	"slices"
	"time"

	"github.com/darktime/darktime/internal/ledger"
)

// The swarm's ledger credits every delivery a successful publish owed a
// subscribed session and debits every owed event received. Attribution
// says, for every difference, why: each session remembers the ranges its
// stream skipped (gaps) with what the client knew when the gap opened —
// a darktime.missed notice had announced it, it came right after a
// reconnect, or nothing — and the publisher remembers what each failed
// publish's answer proved. At the end every lost delivery is one seq of
// one gap (or of the session's tail) and every extra one is a received
// seq whose publish failed, so the causes add up to the ledger exactly.

// gap is a range [from, to) of seqs a session's stream skipped.
type gap struct {
	from, to int64
	cause    lossCause
	// stream is the session's connection the gap opened on (0: the first).
	stream int
	// announcedAfter, when not negative, is the seq of the stream's last
	// event when a darktime.missed notice came while the gap was open:
	// its seqs the server may have ordered after that event were announced.
	announcedAfter int64
	// annLast and annFirst, when annFirst is not negative, are the events
	// around a darktime.missed notice earlier on the gap's stream
	// (chanState): its seqs the server may have ordered between them —
	// not before annLast, not after annFirst — were announced.
	annLast, annFirst int64
	// streamCause and streamAt are the chanState's when the gap opened: a
	// seq of the gap whose publish was sent before streamAt is lost for
	// streamCause, not silently.
	streamCause lossCause
	streamAt    int64
}

// lossCause is what the client knew when a gap opened.
type lossCause uint8

const (
	// lossSilent: nothing announced or explains the gap.
	lossSilent lossCause = iota
	// lossAnnounced: a darktime.missed notice for the channel came first.
	lossAnnounced
	// lossNotResumed: the first event after a reconnect that sent
	// Last-Event-ID was a live one past a gap (the target did not replay).
	lossNotResumed
	// lossNoID: the first event after a reconnect that had no id to send
	// (the stream carried no id: field) was past a gap.
	lossNoID
	// lossTail: owed after the session's last event and never received.
	lossTail
	// lossGaveUp: owed after the client gave up, because the target
	// answered a reconnect with an error (as a browser gives up).
	lossGaveUp
	// lossServerCut: owed after the end of a stream the server had ended
	// itself (the client was still reading what came before), when the
	// session ended before the client could come back and resume.
	lossServerCut
	// lossInFlight: owed after the session's last event when the run (or
	// the client) ended while the stream was still flowing: the hang-up
	// gave up reading after HangupTimeout.
	lossInFlight
	// lossReconnecting: owed since a stream the swarm cut itself (a
	// storm), when the run ended while the client waited to reconnect.
	lossReconnecting
	// lossReconnectFailed: owed since the client's stream ended, when the
	// run ended while its reconnects were failing (errors it counted).
	lossReconnectFailed
)

// Loss causes as they appear in Attribution.Lost.
var lossCauseNames = [...]string{
	lossSilent:     "silent_gap",
	lossAnnounced:  "announced",
	lossNotResumed: "not_resumed",
	lossNoID:       "no_id",
	lossTail:       "tail",
	lossGaveUp:     "gave_up",
	lossServerCut:  "cut_by_server",
	lossInFlight:   "in_flight_at_end",

	lossReconnecting:    "reconnecting_at_end",
	lossReconnectFailed: "reconnect_failed",
}

// Extra causes as they appear in Attribution.Extra, by the failed
// publish's state.
var extraCauseNames = map[pubState]string{
	pubPending: "publish_unanswered",
	pubNotSent: "publish_not_sent",
	pubRefused: "publish_refused",
	pubUnknown: "publish_outcome_unknown",
}

// resumeKind is how a client came back after its stream ended.
type resumeKind uint8

const (
	resumeNone   resumeKind = iota
	resumeWithID            // reconnected with Last-Event-ID
	resumeNoID              // reconnected with no id to send
)

// openGap records that the stream skipped [st.high+1, seq) and why.
func (c *client) openGap(st *chanState, seq int64) {
	cause := lossSilent
	switch {
	case st.announced:
		cause = lossAnnounced
	case st.resume == resumeNoID:
		cause = lossNoID
	case st.resume == resumeWithID && !c.r.pubs.answeredBefore(st.ch, seq, st.resumeAt):
		cause = lossNotResumed
	}
	if cause == lossNotResumed {
		st.streamCause = lossNotResumed
	}
	g := gap{from: st.high + 1, to: seq, cause: cause, stream: c.streamNo, announcedAfter: -1, annLast: -1, annFirst: -1,
		streamCause: st.streamCause, streamAt: st.streamAt}
	if st.annStream == c.streamNo && st.annFirst >= 0 {
		g.annLast, g.annFirst = st.annLast, st.annFirst
	}
	st.gaps = append(st.gaps, g)
}

// firstAfterResume accounts the first event of a channel after a
// reconnect; gapped says it came past a gap.
func (c *client) firstAfterResume(st *chanState, seq int64, gapped bool) {
	switch {
	case c.r.pubs.answeredBefore(st.ch, seq, st.resumeAt):
		c.r.tally(func(a *Attribution) { a.Resumes.Replayed++ })
	case gapped && !st.announced && st.resume == resumeWithID:
		c.r.tally(func(a *Attribution) { a.Resumes.Gapped++ })
	}
	st.resume = resumeNone
}

// tailOf is why seq, owed after the session's last event, never came:
// the session's tail cause, except that an unexplained tail seq published
// less than the stream's lag (+10 %, +10 ms) before the session ended was
// still on its way (in flight at the end: the stream ran that far behind).
func tailOf(s *session, pl *publishLog, seq int64) lossCause {
	if s.tail != lossTail || s.lag <= 0 {
		return s.tail
	}
	ts := pl.ts[s.ch]
	// The lag is what the stream showed until its last event; the events
	// after it wait a little longer still (their delay grows with the
	// queue they sit in): a tenth more, and 10 ms of scheduling.
	if seq < int64(len(ts)) && ts[seq] != 0 && s.endedAt-ts[seq] < s.lag+s.lag/10+int64(10*time.Millisecond) {
		return lossInFlight
	}
	return s.tail
}

// skippedIn reports whether seq lies in one of the gaps and did not
// arrive later (fills).
func skippedIn(gaps []gap, fills []int64, seq int64) bool {
	for _, g := range gaps {
		if seq >= g.from && seq < g.to {
			return !slices.Contains(fills, seq)
		}
	}
	return false
}

// tally changes the run's attribution counters.
func (r *run) tally(f func(*Attribution)) {
	r.mu.Lock()
	f(&r.attr)
	r.mu.Unlock()
}

// attribute turns the sessions' gaps and the publish outcomes into the
// ledger's lost and extra counts and the Attribution. Called once, after
// creditLedger, with the clients stopped.
func (r *run) attribute() Attribution {
	r.mu.Lock()
	sessions := r.sessions
	a := r.attr
	r.mu.Unlock()
	a.Lost, a.Extra = map[string]int64{}, map[string]int64{}
	pl := r.pubs
	pl.mu.Lock()
	defer pl.mu.Unlock()
	// failed lists, per channel, the seqs whose publish failed, in order.
	failed := map[int][]int64{}
	for ch, st := range pl.status {
		for seq, s := range st {
			if s != pubOK {
				failed[ch] = append(failed[ch], int64(seq))
			}
		}
	}
	lose := func(s *session, seq int64, cause lossCause) {
		if !pl.ok(s.ch, seq) {
			return // not owed
		}
		a.Lost[lossCauseNames[cause]]++
		a.Count(r.asg.names[s.ch], true, lossCauseNames[cause])
		r.ledger.Apply(r.asg.names[s.ch], time.Unix(0, pl.ts[s.ch][seq]), ledger.Counts{Lost: 1})
	}
	for i := range sessions {
		s := &sessions[i]
		// A heavily reordered stream has many fills: look them up in a set.
		filled := func(seq int64) bool { return slices.Contains(s.fills, seq) }
		if len(s.fills) > 32 {
			set := make(map[int64]struct{}, len(s.fills))
			for _, f := range s.fills {
				set[f] = struct{}{}
			}
			filled = func(seq int64) bool { _, ok := set[seq]; return ok }
		}
		for _, g := range s.gaps {
			for seq := max(g.from, s.first); seq < min(g.to, s.end); seq++ {
				if filled(seq) {
					continue
				}
				cause := g.cause
				// Published before the stream was open, to a target seen
				// not to resume (or with no id to resume from).
				if cause == lossSilent && g.streamCause != lossSilent && pl.sentBeforeLocked(s.ch, seq, g.streamAt) {
					cause = g.streamCause
				}
				if cause == lossSilent && g.announcedAfter >= 0 && !pl.orderedBeforeLocked(s.ch, seq, g.announcedAfter) {
					cause = lossAnnounced
				}
				// A hole among the history replayed after a notice: the
				// seq may have been in the part the notice said is gone.
				if cause == lossSilent && g.annFirst >= 0 && !pl.orderedBeforeLocked(s.ch, g.annFirst, seq) &&
					(g.annLast < 0 || !pl.orderedBeforeLocked(s.ch, seq, g.annLast)) {
					cause = lossAnnounced
				}
				// On the session's last stream, a seq whose publish was in
				// flight together with the stream's last event may have
				// been ordered after it by the server: it belongs to the
				// stream's tail, not to a gap the server had to fill.
				if cause == lossSilent && g.stream == s.lastStream && !pl.orderedBeforeLocked(s.ch, seq, s.high) {
					cause = tailOf(s, pl, seq)
				}
				lose(s, seq, cause)
			}
		}
		for seq := max(s.high+1, s.first); seq < s.end; seq++ {
			lose(s, seq, tailOf(s, pl, seq))
		}
		// Received: [first, min(end, high+1)) but the gaps, plus fills.
		list := failed[s.ch]
		lo, _ := slices.BinarySearch(list, s.first)
		for _, seq := range list[lo:] {
			if seq >= min(s.end, s.high+1) {
				break
			}
			if skippedIn(s.gaps, s.fills, seq) {
				continue
			}
			st := pl.status[s.ch][seq]
			a.Extra[extraCauseNames[st]]++
			a.Count(r.asg.names[s.ch], false, extraCauseNames[st])
			r.ledger.Apply(r.asg.names[s.ch], time.Unix(0, pl.ts[s.ch][seq]), ledger.Counts{Extra: 1})
		}
	}
	t := r.ledger.Totals()
	a.Residual = t.Credit - t.Debit - (t.Lost - t.Extra - t.Duplicated)
	return a
}
