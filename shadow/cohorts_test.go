package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/shadow/judge"
	"github.com/darktime/darktime/shadow/ledgerfile"
)

// hub is a tiny broker the test publishes to once; every hubServer
// streams its channels, as a primary and a candidate sharing one broker
// would.
type hub struct {
	mu   sync.Mutex
	seq  int
	last time.Time
	subs map[chan hubEvent]string // channel of each subscriber
}

type hubEvent struct {
	seq  int
	data string
	at   time.Time
}

func newHub() *hub { return &hub{subs: map[chan hubEvent]string{}} }

// publish sends data to every subscriber of channel; it returns the
// event's sequence number.
func (h *hub) publish(channel, data string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev := hubEvent{seq: h.seq, data: data, at: time.Now()}
	h.last = ev.at
	for ch, c := range h.subs {
		if c == channel {
			select {
			case ch <- ev:
			default:
				panic("hub subscriber fell behind")
			}
		}
	}
	return h.seq
}

// hubServer serves GET /sub/CHANNEL as an event stream of the hub's
// events, optionally dropping those whose sequence number drop says, and
// delaying every event by delay.
type hubServer struct {
	h      *hub
	drop   func(seq int) bool
	delay  time.Duration
	opened atomic.Int64 // streams opened
	active atomic.Int64 // open now
}

func (s *hubServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	channel, ok := strings.CutPrefix(r.URL.Path, "/sub/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	ch := make(chan hubEvent, 10000)
	s.h.mu.Lock()
	s.h.subs[ch] = channel
	s.h.mu.Unlock()
	defer func() {
		s.h.mu.Lock()
		delete(s.h.subs, ch)
		s.h.mu.Unlock()
	}()
	s.opened.Add(1)
	s.active.Add(1)
	defer s.active.Add(-1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": hello\n\n")
	w.(http.Flusher).Flush()
	// The delay counts from when this stream had the event (a busy
	// machine makes that later than the publish for every server alike).
	queue := make(chan hubEvent, 10000)
	go func() {
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-ch:
				ev.at = time.Now()
				queue <- ev
			}
		}
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-queue:
			if s.drop != nil && s.drop(ev.seq) {
				continue
			}
			if wait := time.Until(ev.at.Add(s.delay)); wait > 0 {
				select {
				case <-time.After(wait):
				case <-r.Context().Done():
					return
				}
			}
			_, _ = fmt.Fprintf(w, "id: %d\ndata: %s\n\n", ev.seq, ev.data)
			w.(http.Flusher).Flush()
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v: %s", url, err, body)
		}
	}
	return resp.StatusCode
}

func postJSON(t *testing.T, url, body string, v any) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v: %s", url, err, data)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Logf("POST %s %s: %d %s", url, body, resp.StatusCode, data)
	}
	return resp.StatusCode
}

func cohortsOf(t *testing.T, admin, query string) ledgerfile.Cohorts {
	t.Helper()
	var c ledgerfile.Cohorts
	if st := getJSON(t, admin+"/_darktime/cohorts"+query, &c); st != http.StatusOK {
		t.Fatalf("GET cohorts%s: %d", query, st)
	}
	return c
}

func median(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c[len(c)/2]
}

// cohortConfig selects half the users (query parameter user) on /sub/.
func cohortConfig(primary, candidate string, mode Mode) Config {
	return Config{
		Primary: primary, Candidate: candidate, Mode: mode, Percent: 50,
		Key:    KeyConfig{From: KeyQuery, Name: "user", Salt: "cohorts"},
		Ledger: LedgerConfig{Settle: 500 * time.Millisecond, Late: 200 * time.Millisecond, Edge: 100 * time.Millisecond},
	}
}

// usersOf returns n users of each side of a 50% selection.
func usersOf(n int) (selectedUsers, others []int) {
	for u := 0; len(selectedUsers) < n || len(others) < n; u++ {
		if selected(Bucket("cohorts", fmt.Sprint(u)), 5000) {
			if len(selectedUsers) < n {
				selectedUsers = append(selectedUsers, u)
			}
		} else if len(others) < n {
			others = append(others, u)
		}
	}
	return selectedUsers, others
}

// runCohorts subscribes users of both cohorts on two channels through the
// proxy, publishes events on the hub once every stream is open, reads
// them all and returns the cohorts once the settle window has passed.
func runCohorts(t *testing.T, mode Mode, cand *hubServer, h *hub, prim *hubServer, events int) ledgerfile.Cohorts {
	t.Helper()
	p, url, admin := startProxy(t, cohortConfig(serve(t, prim), serve(t, cand), mode))
	sel, others := usersOf(6)
	var streams []*stream
	for i, u := range append(append([]int{}, sel...), others...) {
		streams = append(streams, subscribe(t, fmt.Sprintf("%s/sub/ch%d?user=%d", url, i%2, u), nil))
	}
	// Every stream open (and mirrored) on its server, past the edge.
	waitFor(t, 5*time.Second, "streams open", func() bool {
		if mode == ModeMirror {
			return prim.active.Load() == 12 && cand.active.Load() == 6 && p.nstreams.Load() == 6
		}
		return prim.active.Load() == 6 && cand.active.Load() == 6
	})
	time.Sleep(150 * time.Millisecond)
	// At a pace, so that the delays measured are the servers' and not a
	// burst's queue on a busy machine.
	tick := time.NewTicker(3 * time.Millisecond)
	defer tick.Stop()
	for i := range events {
		<-tick.C
		h.publish(fmt.Sprintf("ch%d", i%2), fmt.Sprintf("ch%d event %d", i%2, i))
	}
	for i, s := range streams {
		want := events / 2
		if cand.drop != nil && (mode == ModeDivert && i < len(sel)) {
			continue // the candidate's users miss some
		}
		for range want {
			s.next(10 * time.Second)
		}
	}
	time.Sleep(cand.delay)
	// Settled: nothing owed for longer than the settle window.
	var c ledgerfile.Cohorts
	waitFor(t, 10*time.Second, "the cohorts to settle", func() bool {
		c = cohortsOf(t, admin, "")
		tot := targetOf(p.Report(), "candidate").Totals
		return c.Primary.Events == int64(events/2*6) && tot.PendingPrimary == 0 && tot.PendingCandidate == 0 &&
			time.Since(h.lastAt()) > 3*p.Config().Ledger.Settle
	})
	return c
}

// lastAt is when the hub last published.
func (h *hub) lastAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// TestCohortEvidence: in divert and in mirror mode, an identical
// candidate shows no unexplained event and the primary's delays; one that
// drops 1% of the events shows them unexplained; one that delays every
// event by 40 ms shows candidate delays 40 ms above the primary's.
//
// It runs alone (not parallel): its proxies would load two cores enough
// to make the package's timing-bound tests miss their windows, and its
// delays are measures.
func TestCohortEvidence(t *testing.T) {
	tstest.Long(t, "six proxies, 400 events each at a pace")
	const events = 400
	dropped := func(seq int) bool { return seq%100 == 50 } // 1%: 4 of 400, 2 per channel
	for _, mode := range []Mode{ModeDivert, ModeMirror} {
		t.Run(string(mode)+"/identical", func(t *testing.T) {
			h := newHub()
			c := runCohorts(t, mode, &hubServer{h: h}, h, &hubServer{h: h}, events)
			if c.Candidate.Unexplained != 0 || c.Candidate.Duplicated != 0 {
				t.Errorf("identical candidate: %+v", c.Candidate)
			}
			checkShape(t, c, mode)
			if ch := verdictCheck(c, "delivery"); ch.Decision == judge.Rollback {
				t.Errorf("the judge rolls an identical candidate back: %+v", ch)
			}
		})
		t.Run(string(mode)+"/drops", func(t *testing.T) {
			h := newHub()
			c := runCohorts(t, mode, &hubServer{h: h, drop: dropped}, h, &hubServer{h: h}, events)
			// 6 candidate streams, 3 per channel, each missing 2 events.
			if c.Candidate.Unexplained != 12 {
				t.Errorf("candidate dropping 1%%: unexplained %d, want 12 (%+v)", c.Candidate.Unexplained, c.Candidate)
			}
			if c.Primary.Unexplained != 0 {
				t.Errorf("primary unexplained %d", c.Primary.Unexplained)
			}
			if ch := verdictCheck(c, "delivery"); ch.Decision != judge.Rollback {
				t.Errorf("the judge keeps a candidate that drops 1%%: %+v", ch)
			}
		})
		t.Run(string(mode)+"/delays", func(t *testing.T) {
			h := newHub()
			c := runCohorts(t, mode, &hubServer{h: h, delay: 40 * time.Millisecond}, h, &hubServer{h: h}, events)
			dc, dp := median(c.Candidate.DelayMS), median(c.Primary.DelayMS)
			t.Logf("%s: median delay candidate %.1f ms, primary %.1f ms (%d and %d samples)", mode, dc, dp, len(c.Candidate.DelayMS), len(c.Primary.DelayMS))
			if d := dc - dp; d < 30 || d > 80 {
				t.Errorf("candidate delayed 40 ms: medians %.1f − %.1f = %.1f ms", dc, dp, d)
			}
			if c.Candidate.Unexplained != 0 {
				t.Errorf("slow candidate unexplained %d", c.Candidate.Unexplained)
			}
			if ch := verdictCheck(c, "delay"); ch.Decision != judge.Rollback {
				t.Errorf("the judge keeps a candidate 40 ms slower: %+v", ch)
			}
		})
	}
}

// verdictCheck is the judge's check of that name on the evidence, with
// thresholds small enough for this test's 1200 events.
func verdictCheck(c ledgerfile.Cohorts, name string) judge.Check {
	v := judge.Judge(c.Judge(), judge.Thresholds{MinEvents: 1000, MinSamples: 200, MinTailSamples: 1000})
	for _, ch := range v.Checks {
		if ch.Name == name {
			return ch
		}
	}
	return judge.Check{Name: name + " (missing)"}
}

func checkShape(t *testing.T, c ledgerfile.Cohorts, mode Mode) {
	t.Helper()
	want := int64(400 / 2 * 6)
	if c.Primary.Streams != 6 || c.Candidate.Streams != 6 || c.Primary.DelaySamples != want || int64(len(c.Primary.DelayMS)) != want ||
		c.Primary.FirstEventSamples != 6 || c.Candidate.FirstEventSamples != 6 || c.Candidate.Events != want || c.Candidate.DelaySamples != want {
		t.Errorf("%s: primary %+v\ncandidate %+v", mode, brief(c.Primary), brief(c.Candidate))
	}
	if c.Primary.Errors != 0 || c.Candidate.Errors != 0 || c.Baseline != nil || c.Epoch != 0 {
		t.Errorf("%s: errors %d %d, baseline %v, epoch %d", mode, c.Primary.Errors, c.Candidate.Errors, c.Baseline, c.Epoch)
	}
}

func brief(s ledgerfile.CohortStats) ledgerfile.CohortStats {
	s.DelayMS, s.FirstEventMS = []float64{float64(len(s.DelayMS))}, []float64{float64(len(s.FirstEventMS))}
	return s
}

// TestControlCohort: the control cohort is as large as the candidate's
// share, from the other end of the bucket space, and every unselected
// user from 50% on.
func TestControlCohort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bp, first, size int
	}{
		{bp: 1, first: 9999, size: 1},
		{bp: 500, first: 9500, size: 500},
		{bp: 4999, first: 5001, size: 4999},
		{bp: 5000, first: 5000, size: 5000},
		{bp: 8000, first: 8000, size: 2000},
		{bp: 10000, first: 10000, size: 0},
	} {
		size, first := 0, Buckets
		for b := range Buckets {
			if inControl(b, tc.bp) {
				size++
				first = min(first, b)
				if selected(b, tc.bp) {
					t.Fatalf("bp %d: bucket %d is selected and control", tc.bp, b)
				}
			}
		}
		if size != tc.size || first != tc.first {
			t.Errorf("bp %d: control of %d buckets from %d, want %d from %d", tc.bp, size, first, tc.size, tc.first)
		}
	}
}

// TestReservoir: Algorithm R keeps ReservoirSize values, a uniform
// sample of all it saw.
func TestReservoir(t *testing.T) {
	t.Parallel()
	c := newCohortAcc(1)
	for i := range 5 * ledgerfile.ReservoirSize {
		c.addDelay(int64(i%5) * 1e6) // 0..4 ms, a fifth each
	}
	s := c.stats(ledgerfile.DelayFromSighting)
	if len(s.DelayMS) != ledgerfile.ReservoirSize || s.DelaySamples != 5*ledgerfile.ReservoirSize {
		t.Fatalf("%d samples of %d", len(s.DelayMS), s.DelaySamples)
	}
	var n [5]int
	for _, v := range s.DelayMS {
		n[int(v)]++
	}
	for v, k := range n {
		if k < 1800 || k > 2200 {
			t.Errorf("%d ms: %d of %d samples, want about 2000", v, k, len(s.DelayMS))
		}
	}
}

// TestDivertReconciliationRules drives a channel's reference log by hand
// (settle 500 ms, edge 100 ms): what a reference saw while the diverted
// stream was open and past its edges, and it never got, is missing; what
// it got and no reference saw is extra; an event it got first waits and
// has delay 0.
func TestDivertReconciliationRules(t *testing.T) {
	t.Parallel()
	p, _, _ := startProxy(t, cohortConfig("http://127.0.0.1:1", "http://127.0.0.1:2", ModeDivert))
	// An hour ahead: the proxy's own sweep (on the real clock) settles
	// nothing of this.
	base := time.Now().Add(time.Hour).UnixNano()
	ms := func(n int) int64 { return base + int64(n)*int64(time.Millisecond) }
	ref := p.tracker.open(cohortPrimary, "/sub/r", ms(0), ms(0), false)
	div := p.tracker.open(cohortCandidate, "/sub/r", ms(0), ms(0), true)
	const A, B, C, D, E, F, G = 1, 2, 3, 4, 5, 6, 7
	ref.event(A, ms(50)) // within the start edge: not owed
	ref.event(B, ms(200))
	div.event(B, ms(240)) // 40 ms late
	ref.event(C, ms(300)) // never delivered: missing
	div.event(D, ms(400)) // no reference ever: extra
	div.event(E, ms(450))
	ref.event(E, ms(460)) // the candidate was first: delay 0
	div.event(B, ms(470)) // a second delivery
	ref.event(G, ms(700)) // never delivered: missing
	ref.event(F, ms(950)) // within the end edge: not owed
	div.close(ms(1000))
	p.tracker.sweep(ms(2000))
	c := p.Cohorts().Candidate
	if c.Unexplained != 3 || c.Duplicated != 1 || c.Events != 3 || !slices.Equal(c.DelayMS, []float64{40, 0}) || c.FirstEventSamples != 1 {
		t.Errorf("candidate: unexplained %d (want 3: C, D, G), duplicated %d, events %d, delays %v", c.Unexplained, c.Duplicated, c.Events, c.DelayMS)
	}
	if pr := p.Cohorts().Primary; pr.Events != 6 || pr.DelaySamples != 6 || pr.Unexplained != 0 {
		t.Errorf("primary: %+v", brief(pr))
	}
	// A stream whose channel has no reference open: its events are
	// neither delayed nor extra.
	ref.close(ms(2000))
	lone := p.tracker.open(cohortCandidate, "/sub/r", ms(2100), ms(2100), true)
	lone.event(99, ms(2300))
	p.tracker.sweep(ms(4000))
	if c := p.Cohorts().Candidate; c.Unexplained != 3 || c.Events != 4 {
		t.Errorf("without a reference: unexplained %d, events %d", c.Unexplained, c.Events)
	}
}

// BenchmarkCohortEvent is the cost of observing one event on a channel
// with two reference streams and two diverted streams: what a scanned
// stream pays beyond the scan.
func BenchmarkCohortEvent(b *testing.B) {
	p, err := New(cohortConfig("http://127.0.0.1:1", "http://127.0.0.1:2", ModeDivert))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	now := time.Now().UnixNano()
	refs := []*cstream{p.tracker.open(cohortPrimary, "/sub/b", now, now, false), p.tracker.open(cohortPrimary, "/sub/b", now, now, false)}
	divs := []*cstream{p.tracker.open(cohortCandidate, "/sub/b", now, now, true), p.tracker.open(cohortCandidate, "/sub/b", now, now, true)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id, at := uint64(i), now+int64(i)*1000
		for _, cs := range refs {
			cs.event(id, at)
		}
		for _, cs := range divs {
			cs.event(id, at+500)
		}
		if i%4096 == 0 {
			p.tracker.sweep(at)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4), "ns/sighting")
}

// TestTrackerBounds: past maxChannels channels a stream is not observed
// (counted), and a channel forgets its sightings after the settle window.
func TestTrackerBounds(t *testing.T) {
	t.Parallel()
	p, _, _ := startProxy(t, cohortConfig("http://127.0.0.1:1", "http://127.0.0.1:2", ModeDivert))
	base := time.Now().Add(time.Hour).UnixNano()
	for i := range maxChannels {
		if p.tracker.open(cohortPrimary, fmt.Sprintf("/sub/%d", i), base, base, false) == nil {
			t.Fatalf("channel %d refused", i)
		}
	}
	over := p.tracker.open(cohortCandidate, "/sub/one-too-many", base, base, true)
	over.event(1, base) // a nil stream observes nothing, and does not fail
	over.close(base)
	if over != nil || !strings.Contains(metricsText(t, p), "darktime_shadow_cohort_channels_full_total{} 1") {
		t.Errorf("the channel past the bound was tracked (%v)", over != nil)
	}
	cs := p.tracker.open(cohortPrimary, "/sub/0", base, base, false)
	for i := range 100 {
		cs.event(uint64(i), base+int64(i))
	}
	p.tracker.sweep(base + int64(time.Second)) // settle 500 ms
	ch := p.tracker.chans["/sub/0"]
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if len(ch.first) != 0 || len(ch.order) != 0 {
		t.Errorf("the channel still holds %d sightings", len(ch.first))
	}
}
