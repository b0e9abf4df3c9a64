package shadow

import (
	"testing"
	"time"
)

func msAt(n int) int64 { return int64(n) * int64(time.Millisecond) }

// attributed is the part of a tally the attribution tests look at.
type attributed struct {
	Missing, Extra, EdgeMissing, EdgeExtra, LateSettled, Matched, Duplicated, Reordered int64
}

func attributionOf(t tally) attributed {
	return attributed{t.Missing, t.Extra, t.EdgeMissing, t.EdgeExtra, t.LateSettled, t.Matched, t.Duplicated, t.Reordered}
}

// TestReconcilerEdges checks the edge rules on a fake clock: what happens
// around the opens and closes is an edge, a drop in the middle, a drop
// after the first guard of a stream and a drop the candidate had every
// chance to deliver are not.
func TestReconcilerEdges(t *testing.T) {
	t.Parallel()
	const settle, late, edge = time.Second, 100 * time.Millisecond, 100 * time.Millisecond
	type ev struct {
		primary bool
		id      uint64
		at      int // ms
	}
	cases := []struct {
		name           string
		pOpen, cOpen   int
		pClose, cClose int // 0: still open when everything settles
		events         []ev
		want           attributed
	}{{
		name: "both edges and the middle", pOpen: 0, cOpen: 500, pClose: 900, cClose: 2500,
		events: []ev{
			{false, 1, 505},                 // the primary delivered it before the mirror was live
			{true, 2, 510},                  // published before the candidate subscribed
			{true, 3, 520}, {false, 3, 530}, // the first match
			{true, 4, 700},                  // dropped in the middle
			{true, 5, 800}, {false, 5, 805}, // the last match
			{true, 6, 850},   // the candidate stayed open 1.6 s longer and never delivered it
			{false, 7, 950},  // after the user left
			{false, 8, 1400}, // while the mirror drained
		},
		want: attributed{Missing: 3, Extra: 3, EdgeMissing: 1, EdgeExtra: 3, Matched: 2},
	}, {
		// The primary has been open for 5 s; the candidate drops the first
		// event published after it opened (delivered after the guard): a
		// loss. One within the guard is an edge.
		name: "first event after a late open", pOpen: 0, cOpen: 5000,
		events: []ev{
			{true, 1, 5050},
			{true, 2, 5300},
			{true, 3, 5400}, {false, 3, 5401},
		},
		want: attributed{Missing: 2, EdgeMissing: 1, Matched: 1},
	}, {
		// A candidate 400 ms behind: what it delivers in its first 400 ms
		// + guard before the first match the primary delivered before the
		// mirror was live.
		name: "a lagging candidate's start", pOpen: 0, cOpen: 1000,
		events: []ev{
			{true, 10, 1010},
			{false, 9, 1300}, {false, 8, 1390},
			{false, 10, 1410},
			{false, 11, 1700}, // after the first match: invented
		},
		want: attributed{Extra: 3, EdgeExtra: 2, Matched: 1},
	}, {
		// The proxy stops: both sides close at once, and the last events
		// the primary delivered were still on their way to the candidate.
		name: "shutdown", pOpen: 0, cOpen: 10, pClose: 3000, cClose: 3000,
		events: []ev{
			{true, 1, 2000}, {false, 1, 2030},
			{true, 2, 2950},
			{true, 3, 2990},
			{false, 4, 2995}, // the primary's copy was on its way
		},
		want: attributed{Missing: 2, Extra: 1, EdgeMissing: 2, EdgeExtra: 1, Matched: 1},
	}, {
		// Nothing but edges are absorbed: a candidate that ends its stream
		// early is counted under streams.failed; what the primary
		// delivered well before that is missing.
		name: "candidate ended early", pOpen: 0, cOpen: 10, cClose: 1500,
		events: []ev{
			{true, 1, 100}, {false, 1, 110},
			{true, 2, 1000},
			{true, 3, 1450},
		},
		want: attributed{Missing: 2, EdgeMissing: 1, Matched: 1},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReconciler(settle, late, edge, 100)
			r.opened(true, msAt(tc.pOpen))
			r.opened(false, msAt(tc.cOpen))
			for _, e := range tc.events {
				if e.primary {
					r.primary(e.id, msAt(e.at))
				} else {
					r.candidate(e.id, msAt(e.at))
				}
			}
			if tc.pClose != 0 {
				r.closed(true, msAt(tc.pClose))
			}
			if tc.cClose != 0 {
				r.closed(false, msAt(tc.cClose))
			}
			r.settleUntil(settleAll)
			got, _ := r.take()
			if a := attributionOf(got); a != tc.want {
				t.Fatalf("got  %+v\nwant %+v", a, tc.want)
			}
		})
	}
}

// TestReconcilerLateSettled: a counterpart that arrives after its event
// settled pairs with it (late_settled) while both counters keep it.
func TestReconcilerLateSettled(t *testing.T) {
	t.Parallel()
	r := newReconciler(time.Second, 100*time.Millisecond, 100*time.Millisecond, 100)
	r.opened(true, 0)
	r.opened(false, 0)
	r.primary(1, msAt(1000)) // matched before and after: the middle of the stream
	r.candidate(1, msAt(1001))
	r.primary(2, msAt(1100))   // the candidate delivers it 1.5 s later
	r.candidate(3, msAt(1200)) // the primary delivers it 1.4 s later
	r.primary(4, msAt(1300))
	r.candidate(4, msAt(1301))
	r.settleUntil(msAt(2300) - int64(time.Second)) // 2 and 3 settle unmatched
	r.candidate(2, msAt(2600))
	r.primary(3, msAt(2600))
	r.primary(5, msAt(2700))
	r.candidate(5, msAt(2701))
	r.settleUntil(settleAll)
	got, _ := r.take()
	want := attributed{Missing: 2, Extra: 2, LateSettled: 2, Matched: 3}
	if a := attributionOf(got); a != want {
		t.Fatalf("got  %+v\nwant %+v", a, want)
	}
}

// TestRecentlySettledBound: the memory of settled identities keeps at
// most rememberMax of them, forgets the oldest first, forgets everything
// settle_ms after it settled, and pairs nothing it forgot.
func TestRecentlySettledBound(t *testing.T) {
	t.Parallel()
	const settle = time.Second
	r := newReconciler(settle, 100*time.Millisecond, 100*time.Millisecond, 1<<20)
	r.opened(true, 0)
	r.opened(false, 0)
	const n = 4 * rememberMax
	for i := range n { // every one missing, all after the start guard
		r.primary(uint64(i+1), msAt(500)+int64(i))
	}
	r.settleUntil(msAt(600)) // now = 1.6 s: all settled
	if got, _ := r.take(); got.Missing != n || got.EdgeMissing != 0 {
		t.Fatalf("settled %+v", got)
	}
	if m := r.settled.remembered(); m != rememberMax || len(r.settled.ring) != rememberMax {
		t.Fatalf("remembers %d identities in a ring of %d, want %d", m, len(r.settled.ring), rememberMax)
	}
	// The newest is paired, the oldest was forgotten.
	r.candidate(n, msAt(1700))
	r.candidate(1, msAt(1700))
	r.settleUntil(msAt(1700))
	if got, _ := r.take(); got.Extra != 2 || got.LateSettled != 1 {
		t.Fatalf("late counterparts %+v, want 2 extra of which 1 late_settled", got)
	}
	// Id 1's extra is remembered now; a settle_ms after it settled it is
	// forgotten, and its counterpart pairs with nothing.
	if m := r.settled.remembered(); m != 1 {
		t.Fatalf("remembers %d identities, want 1", m)
	}
	r.settleUntil(msAt(3800) - int64(settle))
	if m := r.settled.remembered(); m != 0 {
		t.Fatalf("remembers %d identities after the horizon", m)
	}
	r.primary(1, msAt(3800))
	r.settleUntil(settleAll)
	if got, _ := r.take(); got.Missing != 1 || got.LateSettled != 0 {
		t.Fatalf("after the horizon %+v", got)
	}
	// Churn keeps it bounded: identities settling for a long time.
	for round := range 50 {
		base := msAt(10000 + round*100)
		for i := range 50 {
			r.primary(uint64(1e6+round*50+i), base+int64(i))
		}
		r.settleUntil(base + msAt(100) - int64(settle))
		if m := r.settled.remembered(); m > rememberMax {
			t.Fatalf("round %d: remembers %d", round, m)
		}
	}
}

// TestReconcilerUnmirrored: a missing event takes as its cause a publish
// on its channel the proxy did not send the candidate, at most once, only
// when the primary delivered it within settle_ms after the publish and
// after the candidate's stream opened.
func TestReconcilerUnmirrored(t *testing.T) {
	t.Parallel()
	const settle = time.Second
	log := &skipLog{within: int64(settle)}
	log.add(msAt(1000))
	log.add(msAt(1200))
	log.add(msAt(1900)) // before the second stream's candidate opened
	r := newReconciler(settle, 100*time.Millisecond, 100*time.Millisecond, 100)
	r.skips = log
	r.opened(true, 0)
	r.opened(false, 0)
	r.primary(100, msAt(500))
	r.candidate(100, msAt(501))
	r.primary(1, msAt(1005)) // the publish at 1.0 s
	r.primary(2, msAt(1100)) // a loss: no unused publish before it
	r.primary(3, msAt(1210)) // the publish at 1.2 s
	r.primary(101, msAt(1500))
	r.candidate(101, msAt(1501))
	r.settleUntil(settleAll)
	got, _ := r.take()
	if got.Missing != 3 || got.Unmirrored != 2 || got.EdgeMissing != 0 {
		t.Fatalf("first stream %+v, want 3 missing of which 2 unmirrored", got)
	}

	r2 := newReconciler(settle, 100*time.Millisecond, 100*time.Millisecond, 100)
	r2.skips = log
	r2.opened(true, 0)
	r2.opened(false, msAt(2000))
	r2.primary(1, msAt(2150))
	r2.primary(2, msAt(3500)) // more than settle_ms after every publish
	r2.settleUntil(settleAll)
	if got, _ := r2.take(); got.Missing != 2 || got.Unmirrored != 0 {
		t.Fatalf("second stream %+v, want 2 unexplained missing", got)
	}

	// The log is bounded by count and time.
	big := &skipLog{within: int64(settle)}
	for i := range 3 * skipLogMax {
		big.add(msAt(10000) + int64(i))
	}
	if len(big.times) > skipLogMax {
		t.Fatalf("log holds %d", len(big.times))
	}
	big.add(msAt(20000))
	if len(big.times) != 1 {
		t.Fatalf("log holds %d after settle_ms", len(big.times))
	}
}
